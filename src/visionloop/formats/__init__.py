"""Interchange formats: pure load/save pairs per format, registered by name."""
