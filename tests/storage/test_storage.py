"""Storage: checked paths, atomic writes, listings on disk and in S3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Tree
from visionloop.core.errors import StorageError, UnsafePathError
from visionloop.storage import (
    Filesystem,
    atomic_write_local,
    join_under,
    remove_temporaries,
    safe_relative_path,
)


@pytest.mark.parametrize(
    "name",
    [
        "../etc/passwd",
        "a/../../b",
        "/etc/passwd",
        "%2e%2e/secret",
        "%252e%252e/secret",
        "a\\..\\b",
        "C:/windows",
        "",
        "a\x00b",
        ".",
    ],
)
def test_unsafe_relative_paths_are_refused(name: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_relative_path(name)


def test_safe_paths_are_normalised_under_root() -> None:
    assert safe_relative_path("a/./b//c.png") == "a/b/c.png"
    assert join_under("s3://bucket/prefix", "media/x.png") == "s3://bucket/prefix/media/x.png"
    assert join_under("/root/dir/", "file") == "/root/dir/file"


def test_writes_are_atomic_and_leave_no_temporary_files(tree: Tree) -> None:
    uri = tree.filesystem.write_bytes("out/blob.bin", b"first")
    tree.filesystem.write_bytes("out/blob.bin", b"second")
    assert tree.filesystem.read_bytes(uri) == b"second"
    assert list(tree.listing()) == [uri]
    with pytest.raises(UnsafePathError):
        tree.filesystem.write_bytes("../escape.bin", b"x")


def test_listing_is_recursive_and_fingerprints_change_with_content(tree: Tree) -> None:
    tree.write("a.txt", b"1")
    tree.write("deep/er/b.txt", b"22")
    before = tree.listing()
    assert sorted(before) == [tree.uri("a.txt"), tree.uri("deep/er/b.txt")]
    tree.write("a.txt", b"333")
    assert tree.listing()[tree.uri("a.txt")] != before[tree.uri("a.txt")]


def test_missing_locations_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no such file"):
        list(Filesystem(str(tmp_path / "absent")).list_files())
    with pytest.raises(StorageError, match="file not found"):
        Filesystem(str(tmp_path)).read_bytes(str(tmp_path / "absent.png"))


def test_temporaries_of_killed_writers_are_removed_and_others_kept(tmp_path: Path) -> None:
    """A writer killed between write and rename leaves ``.tmp-<pid>-*``; a sweep removes those of
    processes that are gone, never one a live process is still writing."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    (tmp_path / "deep").mkdir()
    dead = tmp_path / "deep" / f".tmp-{int(gone.stdout)}-a1"
    live = tmp_path / f".tmp-{os.getpid()}-b2"
    foreign = tmp_path / ".tmp-unnamed"
    for path in (dead, live, foreign):
        path.write_bytes(b"half")
    assert remove_temporaries(str(tmp_path)) == [str(dead)]
    assert live.exists() and foreign.exists()


def test_atomic_writes_name_their_temporary_by_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def replace(source: str, target: str) -> None:
        seen.append(os.path.basename(source))
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_local(str(tmp_path / "file.bin"), b"data")
    assert seen[0].startswith(f".tmp-{os.getpid()}-")
    assert not list(tmp_path.iterdir()), "a failed write removes its temporary file"
