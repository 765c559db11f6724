"""Hyperparameter search on Ray Tune: the Optuna searcher proposes, trials train side by side.

The search space and the recorded outcome are the local search's (:mod:`tune`): Ray Tune's
``OptunaSearch`` draws each trial's settings with the same sampling function, every trial is a
visionloop training run (a child of the tuning run) in the same catalog, and an ASHA scheduler
stops trials whose validation metric lags after an epoch, as the median pruner does locally.
Each trial gets ``executor.cpus_per_worker`` CPUs and ``executor.gpus_per_worker`` GPUs; at most
``executor.workers`` run at once.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from pathlib import Path
from typing import Any

from visionloop.core.errors import VisionloopError
from visionloop.project import ExecutorSettings, Project
from visionloop.project.executor import ray_for_project, ray_storage
from visionloop.training.checkpoint import LoopState
from visionloop.training.config import TrainConfig
from visionloop.training.run import RUN_KIND, train_project
from visionloop.training.trainer import TrainingObserver
from visionloop.training.tune import (
    SearchSpace,
    TuneRun,
    fail_tune_run,
    finish_tune_run,
    sample_params,
    start_tune_run,
    trial_config,
)

__all__ = ["tune_on_ray"]

BEST = "best"  # the best validation value a trial reached so far: what the searcher maximises
STOPPED = "stopped early by Ray Tune's ASHA scheduler"


class _Draw:
    """The search space as Ray's Optuna searcher asks for it (a picklable define-by-run function)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def __call__(self, trial: Any) -> None:
        sample_params(trial, self.space)


class _ReportToTune(TrainingObserver):
    """Each epoch's validation metric to Ray Tune (whose scheduler may then stop the trial)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def on_epoch_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        import ray.tune

        value = metrics.get(self.key)
        if value is None:
            raise VisionloopError("tuning needs validation data: add a val split or set data.val_fraction")
        ray.tune.report({self.key: value, BEST: state.best_value, "epoch": state.epoch})


def _trial(params: dict[str, Any], *, root: str, tune: TuneRun, threads: int) -> None:
    """One trial: a training run with the searcher's settings, reported epoch by epoch."""
    import ray.tune
    import torch

    torch.set_num_threads(threads)
    project = Project.load(Path(root))
    outcome = train_project(
        project, trial_config(tune.base, params), observers=[_ReportToTune(tune.key)], parent_run=tune.run_id
    )
    state = outcome.result.state
    ray.tune.report(
        {tune.key: state.history[-1].get(tune.key), BEST: state.best_value, "run": outcome.run_id}
    )


def tune_on_ray(
    project: Project, config: TrainConfig, trials: int, space: SearchSpace, settings: ExecutorSettings
) -> dict[str, Any]:
    ray_for_project(settings, project, "Hyperparameter search with --executor ray")
    from ray import tune as ray_tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    tune = start_tune_run(project, config, space, trials, "ray")

    resources = {"cpu": settings.cpus_per_worker, "gpu": settings.gpus_per_worker}
    trainable = ray_tune.with_resources(
        ray_tune.with_parameters(
            _trial,
            root=str(project.root.resolve()),
            tune=tune,
            threads=max(1, math.floor(settings.cpus_per_worker)),
        ),
        resources,
    )
    tuner = ray_tune.Tuner(
        trainable,
        tune_config=ray_tune.TuneConfig(
            search_alg=OptunaSearch(space=_Draw(space), metric=BEST, mode="max", seed=config.seed),
            scheduler=ASHAScheduler(
                metric=tune.key, mode="max", grace_period=1, max_t=tune.base.optim.epochs + 1
            ),
            num_samples=trials,
            max_concurrent_trials=settings.workers,
        ),
        run_config=ray_tune.RunConfig(
            name=f"tune-{tune.run_id}",
            storage_path=ray_storage(settings, str(project.run_folder(tune.run_id).resolve().parent / "ray")),
            verbose=0,
        ),
    )
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Tune's tables must not mix with --json output
            results = tuner.fit()
    except Exception as exc:
        fail_tune_run(project, tune, exc)
        raise
    history = _history(results, _runs_by_config(project, tune.run_id), tune)
    _record_stopped_trials(project, tune.run_id)
    failed = [trial for trial in history if trial["state"] == "ERROR"]
    if failed:
        error = VisionloopError(f"tuning trial {failed[0]['trial']} failed: {failed[0]['error']}")
        fail_tune_run(project, tune, error)
        raise error
    return finish_tune_run(project, tune, history) | {"executor": "ray"}


def _runs_by_config(project: Project, tune_run: str) -> dict[str, str]:
    """The tuning run's training runs by their settings (how a stopped trial finds its run)."""
    with project.open_catalog() as catalog:
        return {_settings_key(run.config): run.id for run in catalog.child_runs(tune_run, RUN_KIND)}


def _settings_key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


def _history(results: Any, runs: dict[str, str], tune: TuneRun) -> list[dict[str, Any]]:
    """One entry per trial in the order Tune created them, states named as Optuna's."""
    entries: list[dict[str, Any]] = []
    for result in results:
        metrics = result.metrics or {}
        params = dict(result.config or {})
        state = "COMPLETE" if metrics.get("run") else "PRUNED"
        if result.error is not None:
            state = "ERROR"
        run = metrics.get("run") or runs.get(
            _settings_key(trial_config(tune.base, params).model_dump(mode="json"))
        )
        entries.append(
            {
                "trial_id": str(metrics.get("trial_id", "")),
                "state": state,
                "value": metrics.get(BEST),
                "params": params,
                "run": run,
                "error": None if result.error is None else str(result.error),
            }
        )
    entries.sort(key=lambda entry: str(entry["trial_id"]))
    return [{"trial": number, **entry} for number, entry in enumerate(entries)]


def _record_stopped_trials(project: Project, tune_run: str) -> None:
    """Training runs of trials the scheduler stopped never finished by themselves: record why."""
    with project.open_catalog() as catalog:
        for run in catalog.child_runs(tune_run, RUN_KIND):
            if run.status == "running":
                catalog.finish_run(run.id, {}, error=STOPPED)
