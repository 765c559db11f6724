"""Counts the hardening tests report (inputs tried, kills survived, routes checked...), printed
at the end of the run, so a reader of ``make test`` sees how much was tried, not only that it passed.

Tests call :func:`tally` with what they actually did; a test that tried nothing adds nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["TALLY", "tally"]

TALLY: Counter[str] = Counter()


def tally(what: str, count: int = 1) -> None:
    """Add ``count`` to the figure named ``what`` (e.g. ``"bad inputs refused"``)."""
    TALLY[what] += count


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLY:
        return
    terminalreporter.section("hardening: what was tried")
    width = max(len(name) for name in TALLY)
    for name, count in sorted(TALLY.items()):
        terminalreporter.write_line(f"{name:<{width}}  {count:>8,}")
