"""``train --find-lr`` sweeps rates and suggests one below divergence; ``train --tune`` runs Optuna
trials as child training runs, prunes by epoch, and stores the best settings on its run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from tiny_projects import make_project
from visionloop.cli.app import app
from visionloop.core.schema import TaskType
from visionloop.training.checkpoint import LoopState
from visionloop.training.config import TrainConfig
from visionloop.training.lr_finder import sweep

runner = CliRunner()
SMALL = ["model.image_size=32", "optim.batch_size=4"]


def test_the_sweep_stops_at_divergence_and_suggests_a_rate_that_still_converges() -> None:
    # Least squares with plain SGD diverges once lr > 2 / (largest Hessian eigenvalue).
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 4, generator=generator) * torch.tensor([3.0, 1.0, 1.0, 0.5])
    targets = inputs @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    hessian = 2 * inputs.T @ inputs / len(inputs)
    diverges_above = 2 / float(torch.linalg.eigvalsh(hessian).max())
    model = nn.Linear(4, 1, bias=False)
    nn.init.zeros_(model.weight)

    def loss(network: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, y = batch
        return {"mse": ((network(x).squeeze(1) - y) ** 2).mean()}

    config = TrainConfig.model_validate({"optim": {"optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0}})
    found = sweep(model, loss, [(inputs, targets)], config, start=1e-5, end=10.0, steps=200)

    assert len(found.rates) < 200  # it stopped when the loss blew up
    assert found.rates == sorted(found.rates)
    assert found.suggestion < diverges_above
    assert found.suggestion > 1e-4  # not stuck in the flat start of the sweep


def test_find_lr_from_the_cli_suggests_a_rate_and_writes_the_plot(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=4)
    result = runner.invoke(app, ["-p", str(project.root), "train", "--find-lr", "--json", *SMALL])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert min(found["rates"]) <= found["suggestion"] <= max(found["rates"])
    assert len(found["losses"]) == len(found["rates"]) >= 3
    plot = Path(found["plot"])
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_tune_runs_two_trials_as_child_runs_and_stores_the_best(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=4)
    result = runner.invoke(
        app,
        ["-p", str(project.root), "train", "--tune", "--trials", "2", "--json", *SMALL, "optim.max_steps=1"],
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["trials"] == 2 and outcome["headline_metric"] == "accuracy"
    assert set(outcome["best_params"]) == {
        "model.backbone",
        "optim.optimizer",
        "optim.lr",
        "optim.batch_size",
        "augment.pipeline",
    }
    with project.open_catalog() as catalog:
        tune_run = catalog.get_run(outcome["run_id"])
        children = [run for run in catalog.list_runs(kind="train") if run.parent_id == tune_run.id]
    assert tune_run.kind == "tune" and tune_run.status == "succeeded"
    assert tune_run.outputs is not None and tune_run.outputs["best_params"] == outcome["best_params"]
    assert len(children) == 2 and all(child.status == "succeeded" for child in children)
    assert outcome["best_run"] in {child.id for child in children}
    best_child = next(child for child in children if child.id == outcome["best_run"])
    assert best_child.outputs is not None
    assert (
        best_child.outputs["best_value"]
        == outcome["best_value"]
        == max(child.outputs["best_value"] for child in children if child.outputs)
    )
    trial_config = best_child.config
    assert trial_config["optim"]["lr"] == pytest.approx(outcome["best_params"]["optim.lr"])


def test_a_trial_worse_than_the_median_is_pruned_after_its_epoch() -> None:
    optuna = pytest.importorskip("optuna")
    from visionloop.training.tune import _Pruning

    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    )
    good = study.ask()
    _Pruning(good, "val_accuracy").on_epoch_end(LoopState(epoch=1), {"val_accuracy": 0.9})
    study.tell(good, 0.9)

    weak = study.ask()
    with pytest.raises(optuna.TrialPruned, match=r"val_accuracy=0\.1000"):
        _Pruning(weak, "val_accuracy").on_epoch_end(LoopState(epoch=1), {"val_accuracy": 0.1})
