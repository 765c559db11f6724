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

__all__ = [
    "EVALUATE_KIND",
    "evaluate_trained",
    "ingest_source",
    "latest_attempt",
    "project_ingest_options",
    "train_model",
]

TRAIN_KIND = "train"
EVALUATE_KIND = "evaluate"  # an evaluation is a child run of the training run it evaluates


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

    earlier = latest_attempt(ctx.child_runs(TRAIN_KIND))
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


def evaluate_trained(ctx: StepContext, train_run: str, split: str, robustness: bool) -> dict[str, Any]:
    """Evaluate a training run's model, or reuse a finished evaluation of it (an earlier attempt's);
    either way the outputs are read back from the stored evaluate run, so they look the same."""
    from visionloop.evaluation.corruptions import CORRUPTIONS
    from visionloop.evaluation.evaluate import evaluate_model

    with ctx.project.open_catalog() as catalog:
        done = [run for run in catalog.child_runs(train_run, EVALUATE_KIND) if run.status == "succeeded"]
    if done:
        record = done[0]
    else:
        corruptions = tuple(CORRUPTIONS) if robustness else ()
        result = evaluate_model(ctx.project, train_run, split=split, corruptions=corruptions, explain=0)
        with ctx.project.open_catalog() as catalog:
            record = catalog.get_run(str(result.run_id))
    outputs = record.outputs or {}
    gate = outputs.get("gate") or {}
    metrics = dict(outputs.get("metrics") or {})
    return {
        "run_id": record.id,
        "passed": bool(gate.get("passed", True)),
        "reasons": [] if gate.get("passed", True) else list(gate.get("reasons") or []),
        "metrics": metrics,
        "max_robustness_drop": metrics.get("robustness_max_drop"),
    }


def latest_attempt(runs: list[RunRecord]) -> RunRecord | None:
    """The newest attempt that can still count: failed attempts are history, not progress."""
    return next((run for run in runs if run.status in ("succeeded", "running")), None)
