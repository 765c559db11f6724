"""Training as a stored run: snapshot the data, record config and inputs, train, record outputs.

Run folders live under ``<project>/runs/<run id>/`` (checkpoints, the best weights and the saved
model); the catalog's ``runs`` row holds the config, the snapshot, the pretrained weights' sha256
and the final metrics, and ``run_metrics`` the per-epoch series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionloop.catalog import Catalog
from visionloop.core.errors import ConfigError, ValidationError
from visionloop.core.schema import LabelSchema
from visionloop.datasets.records import ImageReader, LabeledRecord, snapshot_records
from visionloop.models.artifact import read_artifact, write_training_items
from visionloop.models.backbones import WeightsInfo
from visionloop.project import ExecutorSettings, Project
from visionloop.training.checkpoint import LoopState
from visionloop.training.config import TrainConfig
from visionloop.training.data import split_records
from visionloop.training.data_parallel import DataParallel
from visionloop.training.trainer import Trainer, TrainingObserver, TrainResult

__all__ = [
    "CatalogMetricsLogger",
    "TrainRunResult",
    "fit_run",
    "stored_result",
    "train_project",
]

RUN_KIND = "train"


@dataclass(frozen=True)
class TrainRunResult:
    run_id: str
    snapshot_id: str
    result: TrainResult
    train_items: int
    val_items: int


class CatalogMetricsLogger(TrainingObserver):
    """Writes each epoch's metrics to the run's time series in the catalog."""

    def __init__(self, catalog: Catalog, run_id: str) -> None:
        self.catalog = catalog
        self.run_id = run_id

    def on_epoch_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        self.catalog.log_metrics(self.run_id, state.step, metrics, epoch=state.epoch - 1)


def train_project(
    project: Project,
    config: TrainConfig,
    *,
    resume_run: str | None = None,
    observers: Sequence[TrainingObserver] = (),
    parent_run: str | None = None,
    executor: ExecutorSettings | None = None,
) -> TrainRunResult:
    """Train on a snapshot of the project's catalog, as a new run or resuming ``resume_run``.

    With an ``executor`` of kind ``ray`` the run trains on Ray Train, ``executor.workers``
    data-parallel workers; the run, its metrics and its model land where a local run's do (the
    ``observers`` then see nothing: progress is in the catalog)."""
    prepared = _open_run(project, config, resume_run, parent_run)
    resume = resume_run is not None
    if executor is not None and executor.kind == "ray":
        from visionloop.training.ray_train import fit_on_ray

        fit_on_ray(project, prepared.run_id, resume=resume, settings=executor)
        return stored_result(project, prepared.run_id)
    outcome = fit_run(project, prepared.run_id, resume=resume, observers=observers, prepared=prepared)
    if outcome is None:  # pragma: no cover - only data-parallel workers other than rank 0 get None
        raise RuntimeError("a local training run returned no result")
    return outcome


@dataclass(frozen=True)
class _Prepared:
    run_id: str
    snapshot_id: str
    config: TrainConfig
    train: list[LabeledRecord]
    val: list[LabeledRecord]


def _open_run(
    project: Project, config: TrainConfig, resume_run: str | None, parent_run: str | None
) -> _Prepared:
    """The run to train: a new one on a new (or the configured) snapshot, or ``resume_run``."""
    with project.open_catalog() as catalog:
        if resume_run is not None:
            record = catalog.get_run(resume_run)
            if record.kind != RUN_KIND:
                raise ValidationError(f"run {resume_run} is a {record.kind} run, not a training run")
            if record.status == "succeeded":
                raise ValidationError(f"run {resume_run} already finished; start a new one")
            return _split(catalog, resume_run, TrainConfig.model_validate(record.config), record.inputs)
        snapshot_id = config.data.snapshot or catalog.create_snapshot(name="train").id
        config = config.model_copy(update={"data": config.data.model_copy(update={"snapshot": snapshot_id})})
        prepared = _split(catalog, "", config, {"snapshot": snapshot_id})
        run_id = catalog.start_run(
            RUN_KIND,
            config.model_dump(mode="json"),
            {"snapshot": snapshot_id, "train_items": len(prepared.train), "val_items": len(prepared.val)},
            parent_id=parent_run,
        )
    return _Prepared(run_id, snapshot_id, config, prepared.train, prepared.val)


def _split(catalog: Catalog, run_id: str, config: TrainConfig, inputs: dict[str, Any]) -> _Prepared:
    snapshot_id = str(inputs["snapshot"])
    train, val = split_records(snapshot_records(catalog, snapshot_id), config.data, config.seed)
    return _Prepared(run_id, snapshot_id, config, train, val)


def fit_run(
    project: Project,
    run_id: str,
    *,
    resume: bool,
    observers: Sequence[TrainingObserver] = (),
    parallel: DataParallel | None = None,
    prepared: _Prepared | None = None,
) -> TrainRunResult | None:
    """Train the stored run ``run_id`` in this process (or this process's share of it when
    ``parallel``); the process that leads records the metrics, the model and the outcome."""
    leader = parallel is None or parallel.leader
    with project.open_catalog() as catalog:
        schema = catalog.get_schema() or project.config.labels
        if prepared is None:
            record = catalog.get_run(run_id)
            prepared = _split(catalog, run_id, TrainConfig.model_validate(record.config), record.inputs)
        config = prepared.config
        watchers = [
            CatalogMetricsLogger(catalog, run_id),
            *_tracking(config, run_id, project.root),
            *observers,
        ]
        trainer = Trainer(
            config,
            schema,
            prepared.train,
            prepared.val,
            ImageReader(project.config.s3.fsspec_options()),
            project.run_folder(run_id),
            run_id=run_id,
            observers=watchers if leader else [],
            parallel=parallel,
        )
        try:
            result = trainer.run(resume=resume)
        except BaseException as exc:
            # KeyboardInterrupt leaves the run resumable ("running"); real failures are recorded.
            if isinstance(exc, Exception) and leader:
                catalog.finish_run(run_id, {}, error=f"{type(exc).__name__}: {exc}")
            raise
        if result is None:
            return None
        write_training_items(
            result.artifact.folder, (r.item_id for r in prepared.train if r.item_id is not None)
        )
        workers = parallel.world_size if parallel else 1
        catalog.finish_run(run_id, _outputs(result, schema) | {"workers": workers})
    return TrainRunResult(run_id, prepared.snapshot_id, result, len(prepared.train), len(prepared.val))


def stored_result(project: Project, run_id: str) -> TrainRunResult:
    """A finished training run's result as recorded (for runs trained in other processes)."""
    with project.open_catalog() as catalog:
        record = catalog.get_run(run_id)
    if record.status != "succeeded":
        raise ValidationError(f"training run {run_id} did not succeed: {record.error or record.status}")
    outputs = record.outputs or {}
    state = LoopState(
        epoch=int(outputs["epochs"]),
        step=int(outputs["steps"]),
        best_value=outputs.get("best_value"),
        best_epoch=outputs.get("best_epoch"),
        train_seconds=float(outputs.get("train_seconds") or 0.0),
        history=list(outputs.get("history") or []),
        finished=True,
        stopped_early=bool(outputs.get("stopped_early")),
    )
    result = TrainResult(
        artifact=read_artifact(Path(outputs["model_path"])),
        state=state,
        weights=WeightsInfo(**outputs["pretrained_weights"]),
        headline_metric=str(outputs["headline_metric"]),
        images_per_second=float(outputs.get("images_per_second") or 0.0),
    )
    inputs = record.inputs or {}
    return TrainRunResult(
        run_id,
        str(inputs["snapshot"]),
        result,
        int(inputs.get("train_items", 0)),
        int(inputs.get("val_items", 0)),
    )


def _outputs(result: TrainResult, schema: LabelSchema) -> dict[str, Any]:
    state = result.state
    return {
        "model_path": str(result.artifact.folder),
        "model_sha256": result.artifact.weights_sha256,
        "pretrained_weights": result.weights.to_dict(),
        "task": schema.task.value,
        "family": result.artifact.family,
        "headline_metric": result.headline_metric,
        "best_epoch": state.best_epoch,
        "best_value": state.best_value,
        "epochs": state.epoch,
        "steps": state.step,
        "stopped_early": state.stopped_early,
        "metrics": result.artifact.metrics,
        "history": state.history,
        "images_per_second": result.images_per_second,
        "train_seconds": state.train_seconds,
    }


def _tracking(config: TrainConfig, run_id: str, project_root: Path) -> list[TrainingObserver]:
    if config.tracking.mlflow_uri is None:
        return []
    from visionloop.training.tracking import MlflowObserver

    try:
        return [MlflowObserver(config, run_id, project_root)]
    except ImportError as exc:
        raise ConfigError(
            "tracking.mlflow_uri is set but mlflow is not installed: pip install mlflow"
        ) from exc
