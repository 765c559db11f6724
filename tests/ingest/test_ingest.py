"""Ingest over good and bad files, on local disk and S3, into SQLite and PostgreSQL catalogs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Tree
from images import Sample, bad_samples, good_samples, rgb_jpeg, rgb_png
from visionloop.catalog import Catalog
from visionloop.core.media import Split
from visionloop.ingest import IngestOptions, ingest
from visionloop.storage import Filesystem


def _write_all(tree: Tree, samples: list[Sample]) -> dict[str, str]:
    """Write samples and return their sha256 by URI, to prove later that nothing changed."""
    return {tree.write(s.name, s.data): hashlib.sha256(s.data).hexdigest() for s in samples}


def test_good_files_are_added_with_oriented_sizes_and_bad_ones_rejected(catalog: Catalog, tree: Tree) -> None:
    good, bad = good_samples(), bad_samples()
    before = _write_all(tree, good + bad)
    listing_before = tree.listing()

    report = ingest(catalog, tree.filesystem)

    assert report.seen == len(good) + len(bad)
    assert (report.added, report.unchanged, report.rejected) == (len(good), 0, len(bad))
    assert report.added + report.unchanged + report.rejected == report.seen

    items = {item.uri: item for item in catalog.iter_items()}
    for sample in good:
        item = items[tree.uri(sample.name)]
        assert (item.width, item.height) == sample.size, sample.name
        assert item.sha256 == before[tree.uri(sample.name)]
        assert item.source == "ingest"
        assert item.split in {s.value for s in Split}

    reasons = {rejection.path: rejection.reason for rejection in report.rejections}
    assert len(reasons) == len(bad)
    for sample in bad:
        assert sample.reason is not None
        assert sample.reason in reasons[tree.uri(sample.name)], (sample.name, reasons[tree.uri(sample.name)])

    # Source files are byte-identical and untouched (same fingerprints: size and mtime/etag).
    for uri, digest in before.items():
        assert hashlib.sha256(tree.filesystem.read_bytes(uri)).hexdigest() == digest
    assert tree.listing() == listing_before


def test_rescan_of_an_unchanged_tree_reads_no_file(
    catalog: Catalog, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = good_samples(), bad_samples()
    _write_all(tree, good + bad)
    ingest(catalog, tree.filesystem)

    def no_reads(*_args: object, **_kwargs: object) -> bytes:
        raise AssertionError("an unchanged file was read during a re-scan")

    monkeypatch.setattr(Filesystem, "read_bytes", no_reads)
    again = ingest(catalog, tree.filesystem)
    assert (again.seen, again.added, again.unchanged, again.rejected) == (
        len(good) + len(bad),
        0,
        len(good),
        len(bad),
    )
    assert {r.path for r in again.rejections} == {tree.uri(s.name) for s in bad}
    assert catalog.count_items() == len(good)


def test_changed_file_becomes_a_new_item_and_the_old_one_is_retired(catalog: Catalog, tree: Tree) -> None:
    tree.write("a.jpg", rgb_jpeg(seed=1))
    ingest(catalog, tree.filesystem)
    [old] = list(catalog.iter_items())

    tree.write("a.jpg", rgb_jpeg(seed=2, width=80))
    if tree.filesystem.protocol == "file":  # same-second rewrites must still change the fingerprint
        os.utime(tree.uri("a.jpg"), ns=(1, 1))
    report = ingest(catalog, tree.filesystem)

    assert (report.added, report.unchanged) == (1, 0)
    [new] = list(catalog.iter_items())
    assert new.id != old.id and new.width == 80
    assert catalog.get_item(old.id).status == "replaced"


def test_content_duplicates_make_one_item(catalog: Catalog, tree: Tree) -> None:
    data = rgb_png(seed=3)
    tree.write("one/x.png", data)
    tree.write("two/y.png", data)
    tree.write("two/z.png", rgb_png(seed=4))

    report = ingest(catalog, tree.filesystem)

    assert (report.seen, report.added, report.unchanged, report.duplicates) == (3, 2, 1, 1)
    assert catalog.count_items() == 2


def test_deleted_file_moves_its_item_to_a_duplicate_or_marks_it_missing(catalog: Catalog, tree: Tree) -> None:
    shared, alone = rgb_png(seed=5), rgb_png(seed=6)
    tree.write("a/first.png", shared)
    tree.write("b/second.png", shared)
    tree.write("c/alone.png", alone)
    ingest(catalog, tree.filesystem)

    tree.remove("a/first.png")
    tree.remove("c/alone.png")
    report = ingest(catalog, tree.filesystem)

    assert report.missing == 2
    active = list(catalog.iter_items())
    assert [item.uri for item in active] == [tree.uri("b/second.png")]
    [gone] = list(catalog.iter_items(status="missing"))
    assert gone.uri == tree.uri("c/alone.png")


def test_fixed_split_and_stable_auto_split(catalog: Catalog, tree: Tree) -> None:
    for i in range(6):
        tree.write(f"val/{i}.png", rgb_png(seed=100 + i))
    ingest(catalog, tree.filesystem, IngestOptions(split="val"))
    assert {item.split for item in catalog.iter_items()} == {"val"}

    for i in range(40):
        tree.write(f"auto/{i}.png", rgb_png(seed=200 + i))
    ingest(catalog, tree.filesystem)
    splits = [item.split for item in catalog.iter_items() if "/auto/" in item.uri]
    assert set(splits) <= {"train", "val", "test"} and splits.count("train") > splits.count("test")


def test_pixel_limit_is_configurable(catalog: Catalog, tree: Tree) -> None:
    tree.write("big.png", rgb_png(100, 100, seed=7))
    tree.write("small.png", rgb_png(10, 10, seed=8))
    report = ingest(catalog, tree.filesystem, IngestOptions(max_pixels=5_000))
    assert (report.added, report.rejected) == (1, 1)
    assert "decompression bomb" in report.rejections[0].reason
    assert "5000" in report.rejections[0].reason


def test_exclude_patterns_skip_files(catalog: Catalog, tree: Tree) -> None:
    tree.write("keep.png", rgb_png(seed=9))
    tree.write("thumbs/skip.png", rgb_png(seed=10))
    tree.write("notes.txt", b"hello")
    everything = ingest(catalog, tree.filesystem)
    assert (everything.seen, everything.added) == (3, 2)
    report = ingest(catalog, tree.filesystem, IngestOptions(exclude=("thumbs/*", "*.txt")))
    assert (report.seen, report.unchanged, report.missing) == (1, 1, 0)  # excluded is not missing
    assert catalog.count_items() == 2 and len(list(catalog.iter_items())) == 2


def test_copy_puts_bytes_in_project_storage(catalog: Catalog, tree: Tree, tmp_path: Path) -> None:
    data = rgb_jpeg(seed=11)
    tree.write("photo.jpg", data)
    storage = Filesystem(str(tmp_path / "storage"))
    ingest(catalog, tree.filesystem, IngestOptions(copy_to=storage))
    [item] = list(catalog.iter_items())
    assert item.uri.startswith(str(tmp_path / "storage" / "media"))
    assert Path(item.uri).read_bytes() == data
    assert tree.read("photo.jpg") == data


def test_copy_removes_what_a_killed_copy_left_half_written(catalog: Catalog, tmp_path: Path) -> None:
    """An ingest killed between writing a copy and renaming it leaves ``.tmp-<pid>-*``; the next
    ingest into that storage removes it (its writer is gone) and copies the image again."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "photo.png").write_bytes(rgb_png(seed=4))
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    media = tmp_path / "storage" / "media" / "ab"
    media.mkdir(parents=True)
    (media / f".tmp-{int(gone.stdout)}-x7").write_bytes(b"half a copy")
    ingest(catalog, Filesystem(str(source)), IngestOptions(copy_to=Filesystem(str(tmp_path / "storage"))))
    assert not list((tmp_path / "storage").rglob(".tmp-*"))
    [item] = list(catalog.iter_items())
    assert Path(item.uri).read_bytes() == rgb_png(seed=4)


def test_capture_source_is_recorded(catalog: Catalog, tree: Tree) -> None:
    from visionloop.core.media import ItemSource

    tree.write("frame.jpg", rgb_jpeg(seed=12))
    ingest(catalog, tree.filesystem, IngestOptions(source=ItemSource.CAPTURE))
    assert [item.source for item in catalog.iter_items()] == ["capture"]


def test_captures_leave_the_prediction_sidecars_out(catalog: Catalog, tree: Tree) -> None:
    """The edge runtime's capture prefix holds images and ``*.prediction.json`` sidecars; only
    the images become items, and the sidecars are not reported as rejected noise."""
    from visionloop.core.media import ItemSource

    tree.write("images/2026-01-02/103000-cam-0a1b2c3d.jpg", rgb_jpeg(seed=14))
    tree.write("predictions/2026-01-02/103000-cam-0a1b2c3d.prediction.json", b'{"version": 1}')
    report = ingest(catalog, tree.filesystem, IngestOptions(source=ItemSource.CAPTURE))
    assert (report.seen, report.added, report.rejected) == (1, 1, 0)
    assert [item.source for item in catalog.iter_items()] == ["capture"]
    plain = ingest(catalog, tree.filesystem)  # not as captures: the sidecar is just a bad file
    assert (plain.seen, plain.unchanged, plain.rejected) == (2, 1, 1)


def test_ingest_is_recorded_as_a_run(catalog: Catalog, tree: Tree) -> None:
    tree.write("a.png", rgb_png(seed=13))
    tree.write("b.txt", b"not an image")
    report = ingest(catalog, tree.filesystem)
    run = catalog.get_run(report.run_id or "")
    assert run.kind == "ingest" and run.status == "succeeded"
    assert run.outputs is not None and run.outputs["added"] == 1 and run.outputs["rejected"] == 1


def test_symbolic_links_are_not_followed_by_default(catalog: Catalog, tmp_path: Path) -> None:
    root = tmp_path / "links"
    root.mkdir()
    outside = tmp_path / "outside.png"
    outside.write_bytes(rgb_png(seed=14))
    (root / "link.png").symlink_to(outside)
    (root / "real.png").write_bytes(rgb_png(seed=15))

    report = ingest(catalog, Filesystem(str(root)))
    assert (report.added, report.rejected) == (1, 1)
    assert "symbolic link" in report.rejections[0].reason

    followed = ingest(catalog, Filesystem(str(root)), IngestOptions(follow_links=True))
    assert followed.added == 1


def test_missing_source_is_a_clear_error(catalog: Catalog, tmp_path: Path) -> None:
    from visionloop.core.errors import StorageError

    with pytest.raises(StorageError, match="no such file or directory"):
        ingest(catalog, Filesystem(str(tmp_path / "nope")))
    [run] = catalog.list_runs(kind="ingest")
    assert run.status == "failed" and run.error is not None


def test_files_over_the_size_limit_are_rejected_unread(catalog: Catalog, tree: Tree) -> None:
    tree.write("big.png", rgb_png(64, 64, seed=16))
    tree.write("small.png", b"\x89PNG\r\n\x1a\n")
    report = ingest(catalog, tree.filesystem, IngestOptions(max_file_bytes=100))
    reasons = {r.path: r.reason for r in report.rejections}
    assert "file too large" in reasons[tree.uri("big.png")] and "limit of 100" in reasons[tree.uri("big.png")]
    assert "truncated" in reasons[tree.uri("small.png")] or "unreadable" in reasons[tree.uri("small.png")]
