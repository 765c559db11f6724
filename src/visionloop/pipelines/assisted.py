"""``model-assisted-labeling``: ingest a source -> train -> pre-label -> select -> push to Label Studio.

The seeds' Step Functions flow, in one recorded, resumable run: new images land in the catalog,
a model trained on every human label so far pre-labels the unlabelled pool, active learning
picks the ``budget`` items people should label next, and those go to Label Studio as tasks with
the model's predictions (pre-annotations people correct instead of drawing from scratch).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from visionloop.active.prelabel import PrelabelOptions, default_workers, prelabel
from visionloop.active.select import RUN_KIND as SELECT_KIND
from visionloop.active.select import select_items
from visionloop.active.store import PRELABEL_KIND
from visionloop.active.strategies import STRATEGIES
from visionloop.pipelines.runner import Pipeline, Step, StepContext
from visionloop.pipelines.steps import ingest_source, latest_attempt, train_model

__all__ = ["PIPELINE", "AssistedParams"]


class AssistedParams(BaseModel):
    """``source``: a folder or s3:// prefix to ingest first (none: work on what the catalog has).
    ``model``: pre-label with this model (a registry version/alias or a training run) instead of
    training a new one. ``train``: training settings over the project's ``train:`` section."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    model: str | None = None
    train: dict[str, Any] = Field(default_factory=dict)
    strategy: str = "margin"
    budget: int = Field(default=100, ge=1)
    split: str | None = "train"  # the pool selection draws from (None: every split)
    seed: int = 0
    batch_size: int = Field(default=32, ge=1, le=4096)
    workers: int | None = Field(default=None, ge=0, le=64)
    push: bool = True

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise ValueError(f"unknown strategy {value!r}; choose from {', '.join(STRATEGIES)}")
        return value


def _params(ctx: StepContext) -> AssistedParams:
    params: AssistedParams = ctx.params
    return params


def _ingest(ctx: StepContext) -> dict[str, Any]:
    return ingest_source(ctx, _params(ctx).source)


def _train(ctx: StepContext) -> dict[str, Any]:
    params = _params(ctx)
    if params.model is not None:
        return {"model": params.model, "trained": False}
    trained = train_model(ctx, params.train)
    return {**trained, "model": trained["run_id"], "trained": True}


def _prelabel(ctx: StepContext) -> dict[str, Any]:
    """Predict the unlabelled pool; an interrupted pre-label run resumes from its stored predictions."""
    params = _params(ctx)
    model = str(ctx.output("train", "model"))
    earlier = latest_attempt(ctx.child_runs(PRELABEL_KIND))
    if earlier is not None and earlier.status == "succeeded":
        return {"run_id": earlier.id, **_counts(earlier.outputs)}
    options = PrelabelOptions(
        items="unlabeled",
        batch_size=params.batch_size,
        workers=default_workers() if params.workers is None else params.workers,
    )
    if earlier is not None:
        ctx.log(f"    resuming pre-label run {earlier.id}")
    if params.model is not None:
        from visionloop.registry import project_registry

        with ctx.project.open_catalog() as catalog:
            found = project_registry(ctx.project, catalog).find(model)
            if found is not None:
                model = found.model_path
    report = prelabel(
        ctx.project,
        model,
        options,
        resume_run=earlier.id if earlier is not None else None,
        parent_run=ctx.run_id,
    )
    return {"run_id": report.run_id, "predicted": report.predicted, "model_version": report.model_version}


def _select(ctx: StepContext) -> dict[str, Any]:
    params = _params(ctx)
    prelabel_run = str(ctx.output("prelabel", "run_id"))
    with ctx.project.open_catalog() as catalog:
        selections = catalog.child_runs(prelabel_run, SELECT_KIND)
    done = next((run for run in selections if run.status == "succeeded"), None)
    if done is not None:  # a finished selection of an earlier attempt: the same items, not a second draw
        items = [int(item) for item in (done.outputs or {}).get("items", [])]
        return {"run_id": done.id, "items": items, "count": len(items)}
    report = select_items(
        ctx.project,
        params.strategy,
        params.budget,
        prelabel_run=prelabel_run,
        seed=params.seed,
        split=params.split,
    )
    ctx.log(f"    {len(report.items)} of {report.pool} pool items selected by {params.strategy}")
    return {"run_id": report.run_id, "items": report.items, "count": len(report.items)}


def _push(ctx: StepContext) -> dict[str, Any]:
    """Send the selection to Label Studio; the push itself is idempotent (no task twice)."""
    if not _params(ctx).push:
        return {"skipped": True}
    from visionloop.labeling.labelstudio import push_items

    items = [int(item) for item in ctx.output("select", "items")]
    report = push_items(ctx.project, items)
    return report.to_dict()


def _counts(outputs: dict[str, Any] | None) -> dict[str, Any]:
    found = outputs or {}
    return {key: found[key] for key in ("predicted", "model_version") if key in found}


PIPELINE = Pipeline(
    name="model-assisted-labeling",
    description=(
        "Ingest a source, train on the human labels, pre-label the pool, select what people should "
        "label next and push it to Label Studio with the model's predictions."
    ),
    params=AssistedParams,
    steps=(
        Step("ingest", _ingest, "ingest params.source (skipped when none)"),
        Step("train", _train, "train a model on the human labels (or use params.model)"),
        Step("prelabel", _prelabel, "predict every unlabelled item"),
        Step("select", _select, "choose params.budget items by params.strategy"),
        Step("push", _push, "create Label Studio tasks with predictions for the selection"),
    ),
)
