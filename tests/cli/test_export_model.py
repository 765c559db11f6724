"""``visionloop export-model``: writes the ONNX export next to the model, prints the parity check,
stores the export as a run, and refuses what it cannot export with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tiny_models import write_model
from tiny_projects import make_project
from visionloop.cli.app import app
from visionloop.core.schema import TaskType
from visionloop.tasks.onnx_export import EXPORT_KIND

pytest.importorskip("onnxruntime")

runner = CliRunner()


@pytest.mark.slow  # a training step and two exports: about 10 s
def test_export_model_writes_a_checked_onnx_export(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=3)
    trained = runner.invoke(
        app, ["-p", str(project.root), "train", "model.image_size=32", "optim.max_steps=1", "--json"]
    )
    assert trained.exit_code == 0, trained.output
    run_id = json.loads(trained.output)["run_id"]

    result = runner.invoke(app, ["-p", str(project.root), "export-model", run_id[:8], "--parity-images", "5"])
    assert result.exit_code == 0, result.output
    assert "exported" in result.output and "parity on 5 images: decisions agree 100.00%" in result.output

    result = runner.invoke(app, ["-p", str(project.root), "export-model", run_id, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    model = project.root / "runs" / run_id / "model"
    assert report["path"] == str(model / "model.onnx") and (model / "onnx.json").is_file()
    assert report["parity"]["passed"] and report["parity"]["images"] == 9  # every item, 64 allowed
    assert report["outputs"] == ["logits", "embedding"]
    with project.open_catalog() as catalog:
        run = catalog.get_run(report["run_id"])
    assert run.kind == EXPORT_KIND and run.status == "succeeded"
    assert run.inputs["model_sha256"] == report["weights_sha256"]


def test_export_model_refuses_other_formats(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=1)
    folder = tmp_path / "classifier"
    write_model(folder, "classifier")
    result = runner.invoke(app, ["-p", str(project.root), "export-model", str(folder), "--format", "tflite"])
    assert result.exit_code != 0 and "only onnx" in result.output
    assert not (folder / "model.onnx").exists()


@pytest.mark.slow  # a detector export and an int8 trial: about 12 s
def test_export_model_prints_a_detector_s_parity_and_int8_figures(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.DETECTION, per_split=2)
    folder = tmp_path / "detector"
    write_model(folder, "faster_rcnn", image_size=64, max_detections=10)
    args = ["-p", str(project.root), "export-model", str(folder), "--int8", "--calibration-images", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "parity on 6 images, ONNX scored against PyTorch: map 100.00 (0.00 lost)" in result.output
    assert "int8 " in result.output and "images/s" in result.output
    assert "agreement with PyTorch lost (at most 1) on 6 images" in result.output
    with project.open_catalog() as catalog:
        (run,) = catalog.list_runs(EXPORT_KIND)
    assert run.status == "succeeded" and run.config["int8"] is True
    report = run.outputs
    assert report["images_per_run"] == 1 and report["parity"]["points_lost"] == {"map": 0.0}
    trial = report["int8"]
    assert trial["images"] == 6 and trial["calibration_images"] == 6  # every item took part in parity
    assert trial["calibration_source"] == "the parity images"
    assert trial["kept"] == (report["precision"] == "int8")
    assert trial["reason"].startswith("kept" if trial["kept"] else "discarded")
    assert ("int8 kept" if trial["kept"] else "int8 discarded") in result.output


def test_export_model_refuses_another_tasks_model(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.DETECTION, per_split=1)
    folder = tmp_path / "classifier"
    write_model(folder, "classifier")
    result = runner.invoke(app, ["-p", str(project.root), "export-model", str(folder)])
    assert result.exit_code == 1 and "classification model cannot be exported for" in result.output
