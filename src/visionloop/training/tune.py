"""Hyperparameter search with Optuna: each trial is a child training run, pruned by its epochs.

The search space follows seed 001 (architecture, optimizer, learning rate) plus batch size and
augmentation pipeline. Trials report the validation headline metric after every epoch and a
median pruner stops the hopeless ones early. The best trial's settings are stored on the tuning
run, ready to pass back to ``visionloop train`` as overrides.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from visionloop.core.errors import MissingDependencyError, ValidationError
from visionloop.project import Project
from visionloop.training.checkpoint import LoopState
from visionloop.training.config import TrainConfig, apply_overrides
from visionloop.training.run import train_project
from visionloop.training.trainer import TrainingObserver

__all__ = ["SearchSpace", "tune_project"]


class SearchSpace(BaseModel):
    """What ``--tune`` varies (the project's ``train.tune`` section may narrow it)."""

    model_config = ConfigDict(extra="forbid")

    backbones: list[str] = Field(default_factory=lambda: ["mobilenet_v2"])
    optimizers: list[str] = Field(default_factory=lambda: ["sgd", "adam", "adamw", "rmsprop"])
    lr_min: float = Field(default=1e-4, gt=0)
    lr_max: float = Field(default=1e-1, gt=0)
    batch_sizes: list[int] = Field(default_factory=lambda: [16, 32, 64])
    augmentations: list[str] = Field(default_factory=lambda: ["default", "albumentations", "none"])


class _Pruning(TrainingObserver):
    def __init__(self, trial: Any, key: str) -> None:
        self.trial = trial
        self.key = key

    def on_epoch_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        import optuna

        value = metrics.get(self.key)
        if value is None:
            return
        self.trial.report(value, state.epoch - 1)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {state.epoch - 1} at {self.key}={value:.4f}")


def _sample(trial: Any, space: SearchSpace) -> dict[str, Any]:
    return {
        "model.backbone": trial.suggest_categorical("model.backbone", space.backbones),
        "optim.optimizer": trial.suggest_categorical("optim.optimizer", space.optimizers),
        "optim.lr": trial.suggest_float("optim.lr", space.lr_min, space.lr_max, log=True),
        "optim.batch_size": trial.suggest_categorical("optim.batch_size", space.batch_sizes),
        "augment.pipeline": trial.suggest_categorical("augment.pipeline", space.augmentations),
    }


def tune_project(
    project: Project,
    config: TrainConfig,
    trials: int,
    space: SearchSpace | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    try:
        import optuna
    except ImportError as exc:
        raise MissingDependencyError("optuna", "tune", "Hyperparameter search (--tune)") from exc
    from visionloop.tasks.registry import get_task

    space = space or SearchSpace()
    headline = get_task(project.config.labels.task).headline_metric
    key = f"val_{headline}"
    with project.open_catalog() as catalog:
        snapshot_id = config.data.snapshot or catalog.create_snapshot(name="tune").id
        base = config.model_copy(update={"data": config.data.model_copy(update={"snapshot": snapshot_id})})
        tune_run = catalog.start_run(
            "tune",
            {"base": base.model_dump(mode="json"), "space": space.model_dump(), "trials": trials},
            {"snapshot": snapshot_id},
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=config.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    children: dict[int, str] = {}

    def objective(trial: Any) -> float:
        params = _sample(trial, space)
        data = apply_overrides(base.model_dump(mode="json"), [f"{k}={v}" for k, v in params.items()])
        trial_config = TrainConfig.model_validate(data)
        outcome = train_project(project, trial_config, observers=[_Pruning(trial, key)], parent_run=tune_run)
        children[trial.number] = outcome.run_id
        value = outcome.result.state.best_value
        if value is None:
            raise ValidationError("tuning needs validation data: add a val split or set data.val_fraction")
        return float(value)

    try:
        study.optimize(objective, n_trials=trials, show_progress_bar=progress, catch=())
    except Exception as exc:
        with project.open_catalog() as catalog:
            catalog.finish_run(tune_run, {}, error=f"{type(exc).__name__}: {exc}")
        raise
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise ValidationError("no tuning trial completed; see the pruned trials' runs")
    best = study.best_trial
    outputs = {
        "run_id": tune_run,
        "headline_metric": headline,
        "best_value": best.value,
        "best_trial": best.number,
        "best_params": best.params,
        "best_run": children.get(best.number),
        "trials": len(study.trials),
        "pruned": sum(1 for t in study.trials if t.state == optuna.trial.TrialState.PRUNED),
        "history": [
            {"trial": t.number, "state": t.state.name, "value": t.value, "params": t.params}
            for t in study.trials
        ],
    }
    with project.open_catalog() as catalog:
        catalog.finish_run(tune_run, outputs)
    return outputs
