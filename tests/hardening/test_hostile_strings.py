"""Hostile strings where the command line takes names: image file names (ingested exactly as
named), class names in an annotation file (rejected by locator), version and alias references
(one clear error line, the registry unchanged) and export destinations (written where asked,
or one clear error; never a traceback)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardening.corpus_strings import HOSTILE, HUGE_NAMES, nfc_and_nfd_differ
from hardening_tally import tally
from tiny_models import photos
from tiny_registry import classifier_project
from tiny_served import png
from visionloop.cli.app import app
from visionloop.project import Project
from visionloop.registry import ModelRegistry

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, (args[:4], repr(result.exception))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _file_names() -> list[str]:
    """The hostile strings a Linux file system takes as one file name (no '/', no NUL, <= 255 bytes)."""
    names = [f"{text}.png" for text in HOSTILE if "/" not in text and "\x00" not in text]
    names = [name for name in names if len(name.encode()) <= 255]
    return list(dict.fromkeys([*names, *(f"{name}.png" for name in nfc_and_nfd_differ())]))


def test_images_with_hostile_names_are_ingested_exactly_as_named(tmp_path: Path) -> None:
    source, project = tmp_path / "incoming", tmp_path / "project"
    source.mkdir()
    names = _file_names()
    for name, pixels in zip(names, photos(len(names)), strict=True):
        (source / name).write_bytes(png(pixels))
    assert len({unicodedata.normalize("NFC", n) for n in names}) < len(names)  # NFC and NFD both present
    assert _run("init", str(project), "--classes", "cat,dog")[0] == 0
    code, output = _run("-p", str(project), "ingest", str(source), "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["added"] == len(names), (report["seen"], report["rejections"])
    with Project.load(project).open_catalog() as catalog:
        uris = {item.uri for item in catalog.iter_items()}
    assert uris == {str(source / name) for name in names}  # byte-exact names, nothing normalised
    assert sorted(p.name for p in source.iterdir()) == sorted(names)
    tally("unicode names handled: ingested file names", len(names))


def test_hostile_class_names_in_an_annotation_file_are_rejected_by_locator(tmp_path: Path) -> None:
    project, images = tmp_path / "project", tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(png(photos(1)[0]))
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        "categories": [{"id": i + 1, "name": text} for i, text in enumerate(HOSTILE)],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": i + 1, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0}
            for i in range(len(HOSTILE))
        ],
    }
    (images / "coco.json").write_text(json.dumps(coco))
    assert _run("init", str(project), "--task", "detection", "--classes", "cat,dog")[0] == 0
    code, output = _run("-p", str(project), "import", str(images / "coco.json"), "-f", "coco", "--json")
    report = json.loads(output)
    assert code == 0 and report["annotations_written"] == 0, {
        k: v for k, v in report.items() if k != "rejections"
    }
    reasons = {r["locator"]: r["reason"] for r in report["rejections"]}
    for index, text in enumerate(HOSTILE):
        assert "unknown class" in reasons[f"/annotations/{index}"], (
            text[:40],
            reasons.get(f"/annotations/{index}"),
        )
    tally("hostile strings refused", len(HOSTILE))


@pytest.mark.slow
def test_hostile_version_and_alias_references_are_one_clear_error(tmp_path: Path) -> None:
    project = classifier_project(tmp_path)
    with project.open_catalog() as catalog:
        before = ModelRegistry(catalog, project.root).aliases()
    tried = 0
    for text in HOSTILE:
        for args in (
            ("models", "promote", text, "--to", "staging"),
            ("models", "promote", "1", "--to", text),
            ("models", "approve", text, "--reason", "checked"),
            ("models", "rollback", text),
            ("models", "show", text),
        ):
            code, output = _run("-p", str(project.root), *args)
            assert code != 0, (args, output)
            assert output.strip(), args
            tried += 1
    with project.open_catalog() as catalog:
        assert ModelRegistry(catalog, project.root).aliases() == before
    assert not list(tmp_path.glob("**/secret.png"))
    tally("hostile strings refused", tried)


def test_export_destinations_are_written_where_asked_or_refused_in_one_line(tmp_path: Path) -> None:
    """A command-line destination is the user's own choice; strings that cannot name a folder
    (NUL, over the file system's limits) must be one clear error, not a traceback."""
    project = tmp_path / "project"
    assert _run("init", str(project), "--task", "detection", "--classes", "cat,dog")[0] == 0
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(png(photos(1)[0]))
    assert _run("-p", str(project), "ingest", str(tmp_path / "images"))[0] == 0
    sandbox = tmp_path / "a" / "b" / "exports"  # "../" climbs at most to tmp_path, here
    refused = 0
    for text in HOSTILE:
        if text.count("..") > 2 and text not in HUGE_NAMES:
            continue  # would climb above tmp_path: a user may, but not this test
        destination = f"{sandbox}/{text}"  # never Path / text: that would honour "/etc/passwd"
        code, output = _run("-p", str(project), "export", destination, "-f", "coco", "--json")
        if code == 0:
            files = [Path(f).resolve() for f in json.loads(output)["files"]]
            assert all(f.is_relative_to(tmp_path) and f.is_file() for f in files), (text[:40], files)
        else:
            assert "cannot write the export" in output or "null byte" in output, (text[:40], output[-300:])
            refused += 1
    assert refused >= len(HUGE_NAMES) + 2  # the huge names and the two with NUL bytes
    tally("hostile strings refused", refused)


def test_regression_export_to_a_name_too_long_is_a_clear_error(tmp_path: Path) -> None:
    """Saving raised OSError (name too long) or RecursionError (3,000 '../' make Path.mkdir
    recurse) out of 'visionloop export' as a traceback."""
    project = tmp_path / "project"
    assert _run("init", str(project), "--task", "detection", "--classes", "cat")[0] == 0
    for name in ("n" * 300, "../" * 3_000 + "x"):
        code, output = _run("-p", str(project), "export", f"{tmp_path}/{name}", "-f", "coco")
        assert code == 1 and "cannot write the export" in output
