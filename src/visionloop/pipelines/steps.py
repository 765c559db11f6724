"""Step functions shared by several pipelines, each safe to run again after a crash.

Each finds its own earlier attempt through the pipeline run's child runs: a finished run is
reused as it is, an unfinished training or pre-label run is resumed where its checkpoint or
its stored predictions stop, so a step killed halfway neither repeats nor loses work.
"""

from __future__ import annotations

from typing import Any

from visionloop.catalog.records import RunRecord
from visionloop.core.errors import ConfigError
from visionloop.ingest import IngestOptions, ingest
from visionloop.ingest.ingest import AUTO_SPLIT
from visionloop.pipelines.runner import StepContext
from visionloop.project import Project

__all__ = ["ingest_source", "project_ingest_options", "train_model"]

TRAIN_KIND = "train"


def project_ingest_options(project: Project, **overrides: Any) -> IngestOptions:
    """Ingest options from the project's ``ingest:`` settings, with ``overrides`` on top."""
    settings = project.config.ingest
    values: dict[str, Any] = {
        "split": AUTO_SPLIT,
        "max_pixels": settings.max_pixels,
        "max_file_bytes": settings.max_file_bytes,
        "formats": tuple(settings.formats),
        "split_ratios": dict(settings.split_ratios),
        "workers": settings.workers,
        "batch_size": settings.batch_size,
    }
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return IngestOptions(**values)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def ingest_source(ctx: StepContext, source: str | None, split: str = AUTO_SPLIT) -> dict[str, Any]:
    """Ingest ``source`` (a folder or s3:// prefix). Ingest is idempotent by itself: files it has
    already seen, unchanged, are skipped, so a second attempt only finishes the first."""
    if not source:
        return {"skipped": True}
    with ctx.project.open_catalog() as catalog:
        report = ingest(
            catalog, ctx.project.filesystem_for(source), project_ingest_options(ctx.project, split=split)
        )
    ctx.log(f"    {report.added} new items, {report.unchanged} unchanged, {report.rejected} rejected")
    summary = report.to_dict()
    summary.pop("rejections", None)
    return {"source": source, **{k: v for k, v in summary.items() if isinstance(v, int | float | str)}}


def train_model(ctx: StepContext, settings: dict[str, Any]) -> dict[str, Any]:
    """Train on the project's labels (its ``train:`` defaults with ``settings`` on top); after a
    crash, the interrupted training run resumes from its checkpoint instead of starting over."""
    from visionloop.training.config import load_train_config
    from visionloop.training.run import train_project

    earlier = _latest(ctx.child_runs(TRAIN_KIND))
    if earlier is not None and earlier.status == "succeeded":
        return _trained(earlier)
    config = load_train_config(ctx.project.config.train, settings=settings)
    if earlier is not None and earlier.status == "running":
        ctx.log(f"    resuming training run {earlier.id}")
        result = train_project(ctx.project, config, resume_run=earlier.id, parent_run=ctx.run_id)
    else:
        result = train_project(ctx.project, config, parent_run=ctx.run_id)
    with ctx.project.open_catalog() as catalog:
        return _trained(catalog.get_run(result.run_id))


def _trained(run: RunRecord) -> dict[str, Any]:
    outputs = run.outputs or {}
    return {
        "run_id": run.id,
        "model_path": outputs.get("model_path"),
        "model_sha256": outputs.get("model_sha256"),
        "headline_metric": outputs.get("headline_metric"),
        "best_value": outputs.get("best_value"),
        "snapshot": run.inputs.get("snapshot"),
    }


def _latest(runs: list[RunRecord]) -> RunRecord | None:
    """The newest attempt that can still count: failed attempts are history, not progress."""
    return next((run for run in runs if run.status in ("succeeded", "running")), None)
