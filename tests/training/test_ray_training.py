"""Training and tuning on a local Ray instance (issue 8): Ray Train's data-parallel workers do the
local loop's optimiser steps, and Ray Tune's trials are training runs in the same catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tiny_projects import make_project
from visionloop.cli.app import app
from visionloop.core.schema import TaskType
from visionloop.models.weights import load_weights
from visionloop.project import ExecutorSettings
from visionloop.training.checkpoint import LoopState
from visionloop.training.config import load_train_config
from visionloop.training.run import train_project
from visionloop.training.trainer import TrainingObserver
from visionloop.training.tune import tune_project

pytest.importorskip("ray")
pytestmark = pytest.mark.slow
runner = CliRunner()

# A frozen ResNet backbone (batch norms in eval, no dropout) with a trainable head: a batch's
# mean loss is then exactly the mean of its halves' means, so two workers averaging gradients
# must end where one process ends, and a worker that trained on its half alone would not.
HEAD_ONLY = [
    "model.backbone=resnet18",
    "model.weights=none",
    "model.freeze_backbone=true",
    "model.image_size=32",
    "optim.batch_size=4",
    "optim.epochs=2",
    "augment.pipeline=none",
]


def _train(root: Path, *extra: str) -> dict[str, object]:
    result = runner.invoke(app, ["-p", str(root), "train", "--json", *extra, *HEAD_ONLY])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_two_ray_train_workers_take_the_local_runs_steps(tmp_path: Path, local_ray: None) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=8)
    local = _train(project.root)
    distributed = _train(project.root, "--executor", "ray", "--workers", "2")

    assert distributed["executor"] == "ray" and local["executor"] == "local"
    assert distributed["steps"] == local["steps"] == 4 and distributed["train_items"] == 8
    here = load_weights(Path(str(local["model_path"])) / "model.safetensors").state_dict
    there = load_weights(Path(str(distributed["model_path"])) / "model.safetensors").state_dict
    assert here.keys() == there.keys()
    moved = [name for name in here if name.startswith("fc.")]
    assert moved and all(torch.allclose(here[name], there[name], atol=1e-6) for name in here)
    with project.open_catalog() as catalog:
        run = catalog.get_run(str(distributed["run_id"]))
        series = catalog.run_metrics(run.id)
    assert run.status == "succeeded" and run.outputs is not None and run.outputs["workers"] == 2
    assert {"train_loss", "val_accuracy"} <= {name for _, _, name, _ in series}


class _Interrupt(TrainingObserver):
    def on_step(self, state: LoopState, losses: dict[str, float]) -> None:
        if state.step == 2:
            raise KeyboardInterrupt  # as Ctrl-C or a lost machine would: the run stays resumable


def test_a_run_interrupted_locally_resumes_on_ray_workers(tmp_path: Path, local_ray: None) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=8)
    whole = _train(project.root, "checkpoint.every_steps=1")
    config = load_train_config({}, None, [*HEAD_ONLY, "checkpoint.every_steps=1"])
    with pytest.raises(KeyboardInterrupt):
        train_project(project, config, observers=[_Interrupt()])
    with project.open_catalog() as catalog:
        [interrupted] = [run for run in catalog.list_runs(kind="train") if run.status == "running"]
    resumed = train_project(
        project, config, resume_run=interrupted.id, executor=ExecutorSettings(kind="ray", workers=2)
    )
    assert resumed.run_id == interrupted.id and resumed.result.state.step == whole["steps"]
    here = load_weights(Path(str(whole["model_path"])) / "model.safetensors").state_dict
    there = load_weights(resumed.result.artifact.weights_path).state_dict
    assert all(torch.allclose(here[name], there[name], atol=1e-6) for name in here)


def test_a_two_trial_tune_on_ray_records_each_trial_as_a_training_run(
    tmp_path: Path, local_ray: None
) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=4)
    config = load_train_config({}, None, ["model.image_size=32", "optim.epochs=1", "optim.max_steps=1"])
    outcome = tune_project(project, config, trials=2, executor=ExecutorSettings(kind="ray", workers=2))

    assert outcome["executor"] == "ray" and outcome["trials"] == 2
    assert set(outcome["best_params"]) == {
        "model.backbone",
        "optim.optimizer",
        "optim.lr",
        "optim.batch_size",
        "augment.pipeline",
    }
    with project.open_catalog() as catalog:
        tune_run = catalog.get_run(outcome["run_id"])
        children = catalog.child_runs(tune_run.id, "train")
    assert tune_run.status == "succeeded" and tune_run.config["executor"] == "ray"
    finished = {trial["run"] for trial in outcome["history"] if trial["state"] == "COMPLETE"}
    assert outcome["best_run"] in finished
    assert len(children) == 2 and {run.id for run in children if run.status == "succeeded"} == finished
    for run in children:
        trained_with = run.config
        trial = next(t for t in outcome["history"] if t["run"] == run.id)
        assert trained_with["optim"]["optimizer"] == trial["params"]["optim.optimizer"]
        assert trained_with["optim"]["lr"] == pytest.approx(trial["params"]["optim.lr"])
