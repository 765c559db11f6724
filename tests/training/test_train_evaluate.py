"""Every task trains and evaluates end to end through the CLI, and the gate can fail a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tiny_projects import make_project
from visionloop.cli.app import app
from visionloop.core.schema import TaskType

runner = CliRunner()

# One optimiser step at a small input size: fast on a 2-core CPU, still the real code path.
CASES = [
    (TaskType.CLASSIFICATION, None, {"min_accuracy": 0.99}),
    (TaskType.DETECTION, None, {"min_map": 0.99}),
    (TaskType.SEGMENTATION, None, {"min_mask_map": 0.99}),
    (TaskType.KEYPOINTS, "keypoint_rcnn", {"min_oks_ap": 0.99}),
    (TaskType.KEYPOINTS, "heatmap", {"max_pixel_error": 0.5}),
]


@pytest.mark.parametrize(("task", "family", "gate"), CASES, ids=str)
def test_each_task_trains_and_evaluates_and_the_gate_fails_a_weak_model(
    tmp_path: Path, task: TaskType, family: str | None, gate: dict[str, float]
) -> None:
    project = make_project(tmp_path, task, per_split=4 if task is TaskType.CLASSIFICATION else 2)
    config = yaml.safe_load((project.root / "visionloop.yaml").read_text())
    config["gate"] = gate | {"max_robustness_drop": 0.99}
    (project.root / "visionloop.yaml").write_text(yaml.safe_dump(config))
    overrides = ["model.image_size=64", "model.max_detections=10", "optim.max_steps=1", "optim.batch_size=2"]
    if family:
        overrides.append(f"model.family={family}")
    result = runner.invoke(app, ["-p", str(project.root), "train", *overrides, "--json"])
    assert result.exit_code == 0, result.output
    trained = json.loads(result.output)
    assert trained["steps"] == 1
    assert (Path(trained["model_path"]) / "model.safetensors").is_file()

    result = runner.invoke(
        app, ["-p", str(project.root), "evaluate", trained["run_id"], "--json", "--explain", "1"]
    )
    assert result.exit_code == 2, result.output  # one step cannot meet a 0.99 bar
    evaluated = json.loads(result.output)
    assert evaluated["gate"]["passed"] is False
    threshold = next(iter(gate))
    assert any(threshold in reason for reason in evaluated["gate"]["reasons"]), evaluated["gate"]
    assert set(evaluated["robustness"]["corruptions"]) == {
        "gaussian_noise",
        "gaussian_blur",
        "jpeg_compression",
        "brightness",
    }
    report = Path(evaluated["report"])
    assert report.is_file() and "gate" in report.read_text().lower()
    metrics = json.loads(Path(evaluated["metrics"]).read_text())
    assert metrics["headline_metric"] in metrics
    pngs = sorted(path.name for path in report.parent.glob("*.png"))
    assert ("robustness.png" in pngs) == (evaluated["robustness"]["max_drop"] is not None)
    if task is TaskType.CLASSIFICATION:
        assert {"confusion_matrix.png", "reliability.png", "explanation_1.png"} <= set(pngs)
