"""Hyperparameter search with Optuna: each trial is a child training run, pruned by its epochs.

The search space follows seed 001 (architecture, optimizer, learning rate) plus batch size and
augmentation pipeline. Trials report the validation headline metric after every epoch and a
median pruner stops the hopeless ones early. The best trial's settings are stored on the tuning
run, ready to pass back to ``visionloop train`` as overrides. With an ``executor`` of kind
``ray`` the same search runs on Ray Tune (:mod:`ray_tune`), trials side by side on the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from visionloop.core.errors import MissingDependencyError, ValidationError
from visionloop.project import ExecutorSettings, Project
from visionloop.training.checkpoint import LoopState
from visionloop.training.config import TrainConfig, apply_overrides
from visionloop.training.run import train_project
from visionloop.training.trainer import TrainingObserver

__all__ = [
    "SearchSpace",
    "TuneRun",
    "fail_tune_run",
    "finish_tune_run",
    "sample_params",
    "start_tune_run",
    "trial_config",
    "tune_project",
]


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


def sample_params(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """One trial's settings, as ``train`` overrides (drawn through an Optuna trial)."""
    return {
        "model.backbone": trial.suggest_categorical("model.backbone", space.backbones),
        "optim.optimizer": trial.suggest_categorical("optim.optimizer", space.optimizers),
        "optim.lr": trial.suggest_float("optim.lr", space.lr_min, space.lr_max, log=True),
        "optim.batch_size": trial.suggest_categorical("optim.batch_size", space.batch_sizes),
        "augment.pipeline": trial.suggest_categorical("augment.pipeline", space.augmentations),
    }


@dataclass(frozen=True)
class TuneRun:
    run_id: str
    base: TrainConfig  # the settings every trial starts from, its snapshot fixed
    headline: str
    key: str  # the validation metric trials report, e.g. ``val_accuracy``


def start_tune_run(
    project: Project, config: TrainConfig, space: SearchSpace, trials: int, executor: str
) -> TuneRun:
    """Record the tuning run, on one snapshot that every trial trains on."""
    from visionloop.tasks.registry import get_task

    headline = get_task(project.config.labels.task).headline_metric
    with project.open_catalog() as catalog:
        snapshot_id = config.data.snapshot or catalog.create_snapshot(name="tune").id
        base = config.model_copy(update={"data": config.data.model_copy(update={"snapshot": snapshot_id})})
        run_id = catalog.start_run(
            "tune",
            {
                "base": base.model_dump(mode="json"),
                "space": space.model_dump(),
                "trials": trials,
                "executor": executor,
            },
            {"snapshot": snapshot_id},
        )
    return TuneRun(run_id, base, headline, f"val_{headline}")


def trial_config(base: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    data = apply_overrides(base.model_dump(mode="json"), [f"{k}={v}" for k, v in params.items()])
    return TrainConfig.model_validate(data)


def finish_tune_run(project: Project, tune: TuneRun, history: list[dict[str, Any]]) -> dict[str, Any]:
    """Store the outcome from each trial's ``state`` (COMPLETE, PRUNED...), ``value``, ``params``
    and ``run``; the best completed trial's settings are the result."""
    completed = [trial for trial in history if trial["state"] == "COMPLETE" and trial["value"] is not None]
    if not completed:
        error = "no tuning trial completed; see the pruned trials' runs"
        with project.open_catalog() as catalog:
            catalog.finish_run(tune.run_id, {"history": history}, error=error)
        raise ValidationError(error)
    best = max(completed, key=lambda trial: float(trial["value"]))
    outputs = {
        "run_id": tune.run_id,
        "headline_metric": tune.headline,
        "best_value": best["value"],
        "best_trial": best["trial"],
        "best_params": best["params"],
        "best_run": best.get("run"),
        "trials": len(history),
        "pruned": sum(1 for trial in history if trial["state"] == "PRUNED"),
        "history": history,
    }
    with project.open_catalog() as catalog:
        catalog.finish_run(tune.run_id, outputs)
    return outputs


def fail_tune_run(project: Project, tune: TuneRun, exc: BaseException) -> None:
    with project.open_catalog() as catalog:
        catalog.finish_run(tune.run_id, {}, error=f"{type(exc).__name__}: {exc}")


def tune_project(
    project: Project,
    config: TrainConfig,
    trials: int,
    space: SearchSpace | None = None,
    progress: bool = False,
    executor: ExecutorSettings | None = None,
) -> dict[str, Any]:
    try:
        import optuna
    except ImportError as exc:
        raise MissingDependencyError("optuna", "tune", "Hyperparameter search (--tune)") from exc

    space = space or SearchSpace()
    if executor is not None and executor.kind == "ray":
        from visionloop.training.ray_tune import tune_on_ray

        return tune_on_ray(project, config, trials, space, executor)
    tune = start_tune_run(project, config, space, trials, "local")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=config.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    children: dict[int, str] = {}

    def objective(trial: Any) -> float:
        params = sample_params(trial, space)
        outcome = train_project(
            project,
            trial_config(tune.base, params),
            observers=[_Pruning(trial, tune.key)],
            parent_run=tune.run_id,
        )
        children[trial.number] = outcome.run_id
        value = outcome.result.state.best_value
        if value is None:
            raise ValidationError("tuning needs validation data: add a val split or set data.val_fraction")
        return float(value)

    try:
        study.optimize(objective, n_trials=trials, show_progress_bar=progress, catch=())
    except Exception as exc:
        fail_tune_run(project, tune, exc)
        raise
    history = [
        {
            "trial": t.number,
            "state": t.state.name,
            "value": t.value,
            "params": t.params,
            "run": children.get(t.number),
        }
        for t in study.trials
    ]
    return finish_tune_run(project, tune, history)
