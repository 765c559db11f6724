"""Pipelines: the loop's steps wired together (train, pre-label, select, label, auto-label)."""
