"""Tests of the edge runtime (a package, so its conftest does not shadow tests/conftest.py)."""
