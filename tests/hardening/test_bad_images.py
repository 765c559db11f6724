"""Every corpus image through every reader of images: the probe and ``visionloop ingest`` (bad
ones rejected with their name and reason, odd ones accepted, a re-run changes nothing), and
the decoders models and ``visionloop prelabel`` use (an error string, never a crash)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hardening.bounds import Bounds
from hardening.corpus_images import LIMIT, OVER_TEST_LIMIT_ONLY, image_corpus, write_images
from hardening_tally import tally
from visionloop.active.prelabel_batch import decode_item
from visionloop.cli.app import app
from visionloop.datasets.records import ImageReader
from visionloop.imaging import ImageRejected, probe_image
from visionloop.imaging.decode import decode_rgb
from visionloop.project import Project

CASES = image_corpus()
runner = CliRunner()


def test_the_corpus_is_large_and_varied() -> None:
    bad = [case for case in CASES if case.bad]
    assert len(CASES) >= 150 and len(bad) >= 150
    for kind in ("truncated_", "bomb_", "under_", "zero_", "empty.", "random_", "mode_", "exif_"):
        assert any(case.name.startswith(kind) for case in CASES), kind


def test_probe_and_decoders_refuse_bad_images_and_read_odd_ones_within_bounds(tmp_path: Path) -> None:
    written = write_images(tmp_path, CASES)
    reader, bounds, wrong = ImageReader(), Bounds(), []
    for path, case in written.items():
        with bounds.check(case.name):
            outcomes = []
            for read in (probe_image, decode_rgb):
                try:
                    read(case.data, max_pixels=LIMIT)
                    outcomes.append("read")
                except ImageRejected as exc:
                    outcomes.append("refused" if exc.reason else "refused without a reason")
            _, pixels, _, error = decode_item(reader, 1, path, None, None)
        expected = "refused" if case.bad else "read"
        if outcomes != [expected, expected]:
            wrong.append(f"{case.name} ({case.why}): {outcomes}")
        if case.name in OVER_TEST_LIMIT_ONLY:
            assert pixels is not None, error
        elif case.bad and (pixels is not None or case.name not in error):
            wrong.append(f"{case.name}: prelabel decode gave {error!r}")
        if not case.bad and (pixels is None or pixels.ndim != 3 or pixels.shape[2] != 3):
            wrong.append(f"{case.name}: prelabel decode failed: {error}")
    assert not wrong, wrong
    assert not bounds.over, (bounds.over, bounds.summary())
    print(bounds.summary())
    tally("bad inputs refused: images (probe, decode, prelabel decode)", sum(c.bad for c in CASES) * 3)
    tally("odd images read (probe, decode, prelabel decode)", sum(not c.bad for c in CASES) * 3)


def _invoke(*args: str) -> dict[str, object]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    parsed: dict[str, object] = json.loads(result.output)
    return parsed


def _digests(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))}


@pytest.mark.slow
def test_ingest_command_adds_the_readable_and_rejects_each_bad_file_by_name(tmp_path: Path) -> None:
    project_dir, source = tmp_path / "project", tmp_path / "incoming"
    written = write_images(source, CASES)
    before = _digests(source)
    _invoke("init", str(project_dir), "--classes", "cat,dog", "--json")
    project_files = {p for p in project_dir.rglob("*") if "catalog" not in p.name}
    args = ("-p", str(project_dir), "ingest", str(source), "--max-pixels", str(LIMIT), "--json")

    bounds = Bounds(seconds=60.0)  # the whole folder, 220 files, in one command
    with bounds.check("ingest of the corpus"):
        report = _invoke(*args)
    assert not bounds.over, bounds.summary()

    good = {path for path, case in written.items() if not case.bad}
    bad = {path: case for path, case in written.items() if case.bad}
    distinct = {hashlib.sha256(written[path].data).digest() for path in good}  # a few odd ones coincide
    assert (report["seen"], report["added"], report["rejected"]) == (len(written), len(distinct), len(bad))
    assert report["duplicates"] == len(good) - len(distinct)
    reasons = {r["path"]: r["reason"] for r in report["rejections"]}  # type: ignore[attr-defined]
    assert set(reasons) == set(bad)
    unclear = {path: reason for path, reason in reasons.items() if not reason or "unexpected" in reason}
    assert not unclear, unclear
    bombs = [path for path, case in bad.items() if case.name.startswith("bomb_")]
    assert all("decompression bomb" in reasons[path] or "exceeds" in reasons[path] for path in bombs)

    with Project.load(project_dir).open_catalog() as catalog:
        items = {item.uri: item for item in catalog.iter_items()}
    assert set(items) <= good and len(items) == len(distinct)
    for path, case in written.items():
        if case.name in ("exif_orientation_6.jpg", "exif_orientation_long.jpg"):
            assert (items[path].width, items[path].height) == (30, 40), (path, items[path])

    again = _invoke(*args)
    assert (again["added"], again["unchanged"], again["rejected"]) == (0, len(good), len(bad))
    with Project.load(project_dir).open_catalog() as catalog:
        assert {item.uri for item in catalog.iter_items()} == set(items)
    assert _digests(source) == before  # sources never modified
    assert {p for p in project_dir.rglob("*") if "catalog" not in p.name} >= project_files
    tally("bad inputs refused: images (visionloop ingest, twice)", len(bad) * 2)
    tally("odd images ingested", len(good))


def test_decoded_odd_images_are_upright_rgb() -> None:
    """A spot check that accepting an odd mode means reading it right, not just not crashing."""
    by_name = {case.name: case for case in CASES}
    assert decode_rgb(by_name["mode_i16.png"].data).max() == 255  # scaled, not clipped to 0/255
    assert decode_rgb(by_name["exif_orientation_6.jpg"].data).shape == (40, 30, 3)
    assert decode_rgb(by_name["exif_orientation_9.jpg"].data).shape == (30, 40, 3)  # ignored
    one = decode_rgb(by_name["one_pixel.png"].data)
    assert one.shape == (1, 1, 3) and np.array_equal(one[0, 0], [200, 10, 10])


@pytest.mark.parametrize("name", ["png_idat_garbage.png", "png_interlace_9.png"])
def test_regression_probe_refuses_a_png_whose_exif_lookup_failed_to_decode(name: str) -> None:
    """Pillow reads a PNG's EXIF by decoding it; the probe used to swallow that failure as "no
    orientation" and then load() had nothing left to do, so corrupt PNGs were ingested."""
    data = next(case.data for case in CASES if case.name == name)
    with pytest.raises(ImageRejected, match="corrupt"):
        probe_image(data)


def test_regression_decode_errors_name_the_file_and_not_a_bytesio(tmp_path: Path) -> None:
    """The readers models and thumbnails use said "cannot identify image file <_io.BytesIO object
    at 0x...>": neither the file nor the reason."""
    path = tmp_path / "page.jpg"
    path.write_bytes(b"<html></html>")
    with pytest.raises(ImageRejected) as caught:
        ImageReader().reduced(str(path), None)
    assert str(caught.value).startswith(f"{path}: cannot decode image: not an image")
    assert "BytesIO" not in str(caught.value)
    _, pixels, _, error = decode_item(ImageReader(), 1, str(path), None, None)
    assert pixels is None and error == str(caught.value)  # named once, not twice
