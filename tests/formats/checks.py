"""Assertions every format's tests share: counts that add up, and malformed input handled."""

from __future__ import annotations

import os
from pathlib import Path

from visionloop.core.errors import VisionloopError
from visionloop.formats.model import ImportResult
from visionloop.formats.registry import FormatSpec, LoadOptions


def check_counts(result: ImportResult) -> None:
    """imported + rejected == records, and every rejection names file, locator and reason."""
    assert result.imported >= 0 and result.imported + len(result.rejections) == result.records
    for rejection in result.rejections:
        assert rejection.file and rejection.locator and rejection.reason, rejection


def tree_state(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of everything under ``folder`` (links not followed)."""
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


def load_malformed(spec: FormatSpec, path: Path, options: LoadOptions, watch: Path) -> ImportResult | None:
    """Load one malformed input the way every format must take it.

    Either a :class:`VisionloopError` whose message names ``path`` (only for an unusable path
    argument; returns None) or a result whose counts add up; and nothing under ``watch`` or in
    the working folder is written or changed either way.
    """
    before, cwd_before = tree_state(watch), sorted(os.listdir(Path.cwd()))
    try:
        result: ImportResult | None = spec.load(path, options)
    except VisionloopError as exc:
        assert str(path) in str(exc), (path, exc)
        result = None
    assert tree_state(watch) == before, f"{path.name}: the loader changed files"
    assert sorted(os.listdir(Path.cwd())) == cwd_before, (
        f"{path.name}: the loader wrote to the working folder"
    )
    if result is not None:
        check_counts(result)
    return result
