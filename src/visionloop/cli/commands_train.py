"""``visionloop train``: train (or tune, or find a learning rate for) a model on the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from visionloop.cli.context import current_project
from visionloop.cli.executor_options import ExecutorOption, RayAddressOption
from visionloop.cli.output import print_json, stderr, stdout
from visionloop.core.errors import MissingDependencyError
from visionloop.project import ExecutorSettings
from visionloop.project.executor import choose_executor

if TYPE_CHECKING:  # torch loads only when a command trains, not for every 'visionloop' call
    from visionloop.models.artifact import ModelArtifact

HELP = """Train a model for the project's task on a snapshot of its labelled images.

Settings come from the project's 'train:' section, then --config FILE (YAML), then KEY=VALUE
overrides such as optim.lr=0.01 model.freeze_backbone=true optim.epochs=5. Sections: model
(family, backbone, weights: imagenet|hub|none|FILE, image_size, freeze_backbone), data
(snapshot, splits, val_fraction, limit), optim (optimizer, lr, batch_size, epochs, max_steps,
scheduler), augment (pipeline: default|albumentations|none), early_stopping (patience),
checkpoint (every_steps), tracking (mlflow_uri), seed, deterministic, workers, device.

Checkpoints are written every checkpoint.every_steps steps; after a crash or kill, continue
with --resume RUN_ID. --find-lr sweeps learning rates and suggests one; --tune runs an Optuna
search (architecture, optimizer, learning rate, batch size, augmentation) with pruning.

--executor ray trains on Ray Train with --workers data-parallel workers (gloo on CPU, NCCL when
executor.gpus_per_worker > 0), each taking its share of every batch, so the optimiser steps are
those of one process; with --tune, Ray Tune runs --workers trials at once (Optuna searcher, ASHA
scheduler). Runs, metrics and models land in the catalog and runs/ as local ones do.
"""


class _ProgressObserver:
    """Draws a bar over optimiser steps and prints each epoch's validation metrics."""

    def __init__(self, headline: str) -> None:
        self.headline = headline
        self.progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=stderr,
        )
        self.task: Any = None

    def on_start(self, total_steps: int, state: Any) -> None:
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=total_steps, completed=state.step, loss=float("nan")
        )

    def on_step(self, state: Any, losses: dict[str, float]) -> None:
        self.progress.update(self.task, completed=state.step, loss=losses["loss"])

    def on_epoch_end(self, state: Any, metrics: dict[str, float]) -> None:
        shown = {
            key: value for key, value in metrics.items() if key in ("train_loss", f"val_{self.headline}")
        }
        text = ", ".join(f"{key} {value:.4f}" for key, value in shown.items())
        self.progress.console.print(f"epoch {state.epoch}: {text}")

    def on_finish(self, state: Any, artifact: ModelArtifact) -> None:
        self.progress.stop()


def train(
    ctx: typer.Context,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="KEY=VALUE settings, e.g. optim.lr=0.01 model.image_size=128.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML file of training settings.", dir_okay=False)
    ] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue an interrupted training run from its checkpoint.")
    ] = None,
    find_lr: Annotated[
        bool,
        typer.Option("--find-lr", help="Sweep learning rates, plot the loss and suggest one; no training."),
    ] = False,
    tune: Annotated[bool, typer.Option("--tune", help="Search hyperparameters with Optuna.")] = False,
    trials: Annotated[int, typer.Option(min=1, max=10_000, help="Trials for --tune.")] = 10,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=1024,
            help="With --executor ray: training workers (with --tune: trials at once). "
            "Default: the project's executor.workers.",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    from visionloop.training.config import load_train_config

    project = current_project(ctx)
    settings = load_train_config(project.config.train, config, overrides or [])
    where = choose_executor(project.config.executor, executor, ray_address, workers)
    if find_lr:
        _find_lr(project, settings, json_output)
        return
    if tune:
        _tune(project, settings, trials, json_output, where)
        return
    from visionloop.tasks.registry import get_task
    from visionloop.training.run import train_project

    observers = (
        [] if json_output else [_ProgressObserver(get_task(project.config.labels.task).headline_metric)]
    )
    if where.kind == "ray" and not json_output:
        stderr.print(f"training on Ray, {where.workers} workers (progress is logged to the catalog)")
    outcome = train_project(project, settings, resume_run=resume, observers=observers, executor=where)  # type: ignore[arg-type]
    result = outcome.result
    summary = {
        "run_id": outcome.run_id,
        "snapshot": outcome.snapshot_id,
        "train_items": outcome.train_items,
        "val_items": outcome.val_items,
        "model_path": str(result.artifact.folder),
        "headline_metric": result.headline_metric,
        "best_value": result.state.best_value,
        "best_epoch": result.state.best_epoch,
        "epochs": result.state.epoch,
        "steps": result.state.step,
        "stopped_early": result.state.stopped_early,
        "images_per_second": round(result.images_per_second, 1),
        "metrics": result.artifact.metrics,
        "executor": where.kind,
    }
    if json_output:
        print_json(summary)
        return
    best = "n/a" if result.state.best_value is None else f"{result.state.best_value:.4f}"
    stdout.print(
        f"[bold green]trained[/] run {outcome.run_id}: val {result.headline_metric} {best} "
        f"(epoch {result.state.best_epoch}), {outcome.train_items} train / {outcome.val_items} val images, "
        f"{result.images_per_second:.1f} images/s"
    )
    stdout.print(f"model: {result.artifact.folder}")
    stdout.print(f"evaluate it with: visionloop evaluate {outcome.run_id}")


def _find_lr(project: Any, settings: Any, json_output: bool) -> None:
    from visionloop.training.lr_finder import find_learning_rate

    found = find_learning_rate(project, settings)
    if json_output:
        print_json(found.to_dict())
        return
    stdout.print(
        f"suggested learning rate: [bold]{found.suggestion:.2e}[/] (loss fell fastest there; "
        f"minimum loss at {found.lr_at_min_loss:.2e}); plot: {found.plot_path}"
    )
    stdout.print(f"train with it: visionloop train optim.lr={found.suggestion:.2e}")


def _tune(project: Any, settings: Any, trials: int, json_output: bool, where: ExecutorSettings) -> None:
    try:
        from visionloop.training.tune import tune_project
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("optuna", "tune", "Hyperparameter search (--tune)") from exc
    outcome = tune_project(project, settings, trials=trials, progress=not json_output, executor=where)
    if json_output:
        print_json(outcome)
        return
    stdout.print(
        f"[bold green]tuned[/] run {outcome['run_id']}: best val {outcome['headline_metric']} "
        f"{outcome['best_value']:.4f} from trial {outcome['best_trial']} of {outcome['trials']}"
    )
    stdout.print(f"best settings: {' '.join(f'{k}={v}' for k, v in outcome['best_params'].items())}")
