"""``visionloop import`` / ``export``: labels land on the right items, atomically, and come back out."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from images import rgb_jpeg, rgb_png
from visionloop.cli.app import app
from visionloop.project import Project

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _dataset(root: Path) -> Path:
    """Two same-named images in different folders, a third, and a COCO file with one bad record."""
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "a" / "img.jpg").write_bytes(rgb_jpeg(64, 48, seed=1))
    (root / "b" / "img.jpg").write_bytes(rgb_jpeg(64, 48, seed=2))
    (root / "c.png").write_bytes(rgb_png(50, 30, seed=3))
    coco = {
        "images": [
            {"id": 1, "file_name": "a/img.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "b/img.jpg", "width": 64, "height": 48},
            {"id": 3, "file_name": "c.png", "width": 50, "height": 30},
            {"id": 4, "file_name": "not-here.jpg", "width": 10, "height": 10},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20]},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [5, 5, 10, 10]},
            {"id": 3, "image_id": 3, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.75},
            {"id": 4, "image_id": 3, "category_id": 1, "bbox": [0, 0, 500, 5]},
            {"id": 5, "image_id": 4, "category_id": 1, "bbox": [0, 0, 5, 5]},
        ],
    }
    path = root / "labels.json"
    path.write_text(json.dumps(coco))
    return path


def test_import_then_export_coco(tmp_path: Path) -> None:
    labels = _dataset(tmp_path / "data")
    project = tmp_path / "proj"
    assert invoke("init", str(project), "--task", "detection", "--classes", "cat,dog")[0] == 0

    code, output = invoke("-p", str(project), "import", str(labels), "--format", "coco", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["records"] == report["imported"] + report["rejected"]
    assert report["rejected"] == 1 and "outside the 50x30 image" in report["rejections"][0]["reason"]
    assert report["rejections"][0]["locator"] == "/annotations/3"
    assert report["annotations_written"] == 2 and report["predictions_written"] == 1
    assert report["images_not_found"] == [str(tmp_path / "data" / "not-here.jpg")]

    code, output = invoke("-p", str(project), "status", "--json")
    status = json.loads(output)
    assert status["labelled_by_provenance"]["human"] == 2 and status["class_balance"] == {"cat": 1, "dog": 1}

    out = tmp_path / "export.json"
    code, output = invoke("-p", str(project), "export", str(out), "--format", "coco", "--json")
    assert code == 0, output
    exported = json.loads(out.read_text())
    names = {image["file_name"] for image in exported["images"]}
    assert {"a/img.jpg", "b/img.jpg", "c.png"} <= names  # same basename, different folders: no collision
    boxes = {
        next(i["file_name"] for i in exported["images"] if i["id"] == a["image_id"]): a["bbox"]
        for a in exported["annotations"]
    }
    assert boxes == {"a/img.jpg": [1.0, 2.0, 10.0, 20.0], "b/img.jpg": [5.0, 5.0, 10.0, 10.0]}

    code, output = invoke(
        "-p", str(project), "export", str(tmp_path / "pred.json"), "--format", "coco", "--predictions"
    )
    assert code == 0, output
    [prediction] = json.loads((tmp_path / "pred.json").read_text())
    assert prediction["score"] == 0.75 and prediction["bbox"] == [0.0, 0.0, 5.0, 5.0]


def test_strict_import_writes_nothing_on_any_rejection(tmp_path: Path) -> None:
    labels = _dataset(tmp_path / "data")
    project = tmp_path / "proj"
    invoke("init", str(project), "--task", "detection", "--classes", "cat,dog")
    code, output = invoke("-p", str(project), "import", str(labels), "--format", "coco", "--strict", "--json")
    assert code == 1
    assert json.loads(output)["written"] is False
    with Project.load(project).open_catalog() as catalog:
        assert catalog.summary()["labelled"] == 0 and catalog.list_runs(kind="import") == []


def test_import_as_model_and_unknown_classes(tmp_path: Path) -> None:
    labels = _dataset(tmp_path / "data")
    project = tmp_path / "proj"
    invoke("init", str(project), "--task", "detection", "--classes", "cat")
    code, output = invoke(
        "-p",
        str(project),
        "import",
        str(labels),
        "--format",
        "coco",
        "--as",
        "model",
        "--model-version",
        "v7",
        "--json",
    )
    assert code == 0, output
    report = json.loads(output)
    assert any("unknown class 'dog'" in r["reason"] for r in report["rejections"])
    assert report["annotations_written"] == 0 and report["predictions_written"] == 2
    code, output = invoke("-p", str(project), "import", str(labels), "--format", "pascal")
    assert code == 1 and "unknown format 'pascal'" in output and "coco" in output
