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
from visionloop.datasets.records import ImageReader, snapshot_records
from visionloop.models.artifact import write_training_items
from visionloop.project import Project
from visionloop.training.checkpoint import LoopState
from visionloop.training.config import TrainConfig
from visionloop.training.data import split_records
from visionloop.training.trainer import Trainer, TrainingObserver, TrainResult

__all__ = ["CatalogMetricsLogger", "TrainRunResult", "run_dir_for", "train_project"]

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


def run_dir_for(project: Project, run_id: str) -> Path:
    return project.root / "runs" / run_id


def train_project(
    project: Project,
    config: TrainConfig,
    *,
    resume_run: str | None = None,
    observers: Sequence[TrainingObserver] = (),
    parent_run: str | None = None,
) -> TrainRunResult:
    """Train on a snapshot of the project's catalog, as a new run or resuming ``resume_run``."""
    with project.open_catalog() as catalog:
        schema = catalog.get_schema() or project.config.labels
        if resume_run is not None:
            record = catalog.get_run(resume_run)
            if record.kind != RUN_KIND:
                raise ValidationError(f"run {resume_run} is a {record.kind} run, not a training run")
            if record.status == "succeeded":
                raise ValidationError(f"run {resume_run} already finished; start a new one")
            config = TrainConfig.model_validate(record.config)
            snapshot_id = str(record.inputs["snapshot"])
            run_id = resume_run
        else:
            snapshot_id = config.data.snapshot or catalog.create_snapshot(name="train").id
            config = config.model_copy(
                update={"data": config.data.model_copy(update={"snapshot": snapshot_id})}
            )
            run_id = ""
        records = snapshot_records(catalog, snapshot_id)
        train, val = split_records(records, config.data, config.seed)
        if not run_id:
            run_id = catalog.start_run(
                RUN_KIND,
                config.model_dump(mode="json"),
                {"snapshot": snapshot_id, "train_items": len(train), "val_items": len(val)},
                parent_id=parent_run,
            )
        trainer = Trainer(
            config,
            schema,
            train,
            val,
            ImageReader(project.config.s3.fsspec_options()),
            run_dir_for(project, run_id),
            run_id=run_id,
            observers=[
                CatalogMetricsLogger(catalog, run_id),
                *_tracking(config, run_id, project.root),
                *observers,
            ],
        )
        try:
            result = trainer.run(resume=resume_run is not None)
        except BaseException as exc:
            # KeyboardInterrupt leaves the run resumable ("running"); real failures are recorded.
            if isinstance(exc, Exception):
                catalog.finish_run(run_id, {}, error=f"{type(exc).__name__}: {exc}")
            raise
        write_training_items(result.artifact.folder, (r.item_id for r in train if r.item_id is not None))
        catalog.finish_run(run_id, _outputs(result, schema))
    return TrainRunResult(run_id, snapshot_id, result, len(train), len(val))


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
