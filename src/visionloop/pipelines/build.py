"""``build``: snapshot -> train (optionally tune first) -> evaluate -> gate -> register.

The seeds' SageMaker Pipelines build, recorded and resumable. The snapshot is fixed before
training (so a resumed run trains on exactly the same labels), the evaluation is the one the
registry reads its gate from, and registration is of exactly the evaluated weights. A failed
gate ends the run ``failed`` at the gate step: nothing is registered, and the run says why, so
a scheduler or a person sees a red run rather than a green run that quietly produced nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from visionloop.core.errors import ValidationError
from visionloop.pipelines.runner import Pipeline, Step, StepContext
from visionloop.pipelines.steps import evaluate_trained, train_model

__all__ = ["PIPELINE", "BuildParams", "promote_once", "registered_version"]

TUNE_KIND = "tune"


class BuildParams(BaseModel):
    """``train``: training settings over the project's ``train:`` section. ``snapshot``: train on this
    snapshot instead of a new one. ``tune_trials``: search hyperparameters first (Optuna).
    ``promote_to``: an alias for the new version once registered (the gate permitting)."""

    model_config = ConfigDict(extra="forbid")

    train: dict[str, Any] = Field(default_factory=dict)
    snapshot: str | None = None
    tune_trials: int = Field(default=0, ge=0, le=1000)
    eval_split: str = "test"
    robustness: bool = True
    register_model: bool = True
    actor: str = "pipeline"
    promote_to: str | None = None


def _params(ctx: StepContext) -> BuildParams:
    params: BuildParams = ctx.params
    return params


def _snapshot(ctx: StepContext) -> dict[str, Any]:
    params = _params(ctx)
    if params.snapshot:
        return {"snapshot": params.snapshot}
    if ctx.state.get("snapshot"):  # an earlier attempt took it already
        return {"snapshot": ctx.state["snapshot"]}
    with ctx.project.open_catalog() as catalog:
        snapshot = catalog.create_snapshot(name=f"build {ctx.run_id[:8]}")
    ctx.save_state(snapshot=snapshot.id)
    return {"snapshot": snapshot.id, "items": snapshot.item_count, "annotations": snapshot.annotation_count}


def _train(ctx: StepContext) -> dict[str, Any]:
    params = _params(ctx)
    settings = _with_snapshot(params.train, str(ctx.output("snapshot", "snapshot")))
    if params.tune_trials:
        settings = _tuned(ctx, settings, params.tune_trials)
    return train_model(ctx, settings)


def _with_snapshot(settings: dict[str, Any], snapshot: str) -> dict[str, Any]:
    data = dict(settings.get("data") or {})
    return {**settings, "data": {**data, "snapshot": snapshot}}


def _tuned(ctx: StepContext, settings: dict[str, Any], trials: int) -> dict[str, Any]:
    """Best settings of an Optuna search (a finished search of an earlier attempt is reused)."""
    from visionloop.training.config import apply_overrides, load_train_config
    from visionloop.training.tune import tune_project

    best = ctx.state.get("tuned")
    if best is None:
        config = load_train_config(ctx.project.config.train, settings=settings)
        result = tune_project(ctx.project, config, trials)
        best = dict(result["best_params"])
        ctx.save_state(tuned=best, tune_run=result["run_id"])
    return apply_overrides(settings, [f"{key}={value}" for key, value in best.items()])


def _evaluate(ctx: StepContext) -> dict[str, Any]:
    params = _params(ctx)
    train_run = str(ctx.output("train", "run_id"))
    return evaluate_trained(ctx, train_run, params.eval_split, params.robustness)


def _gate(ctx: StepContext) -> dict[str, Any]:
    evaluation = ctx.outputs["evaluate"]
    if not evaluation.get("passed"):
        reasons = "; ".join(evaluation.get("reasons") or []) or "see the evaluation run"
        raise ValidationError(f"the gate failed ({reasons}); evaluation run {evaluation.get('run_id')}")
    return {"passed": True, "evaluation_run": evaluation.get("run_id")}


def registered_version(ctx: StepContext, model_path: str, actor: str) -> int:
    """Register the weights in ``model_path`` once: weights already registered are that version."""
    from pathlib import Path

    from visionloop.registry import project_registry
    from visionloop.storage.descriptions import sha256_file

    with ctx.project.open_catalog() as catalog:
        registry = project_registry(ctx.project, catalog)
        weights = Path(model_path) / "model.safetensors"
        existing = registry.find_by_weights(sha256_file(weights))
        if existing is not None:
            return existing.version
        return registry.register(Path(model_path), actor, description=f"pipeline run {ctx.run_id}").version


def promote_once(ctx: StepContext, version: int, alias: str, actor: str) -> None:
    """Point ``alias`` at ``version`` unless an earlier attempt already did (the rules still apply)."""
    from visionloop.registry import project_registry

    with ctx.project.open_catalog() as catalog:
        registry = project_registry(ctx.project, catalog)
        if registry.aliases().get(alias) != version:
            registry.promote(version, alias, actor, f"pipeline run {ctx.run_id}")


def _register(ctx: StepContext) -> dict[str, Any]:
    params = _params(ctx)
    if not params.register_model:
        return {"skipped": True}
    version = registered_version(ctx, str(ctx.output("train", "model_path")), params.actor)
    promoted = None
    if params.promote_to:
        promote_once(ctx, version, params.promote_to, params.actor)
        promoted = params.promote_to
    ctx.log(f"    registered as v{version}" + (f", now {promoted}" if promoted else ""))
    return {"version": version, "promoted_to": promoted}


PIPELINE = Pipeline(
    name="build",
    description="Snapshot the labels, train (optionally tune), evaluate, check the gate, register the model.",
    params=BuildParams,
    steps=(
        Step("snapshot", _snapshot, "freeze the labels the model trains on"),
        Step("train", _train, "train (after an Optuna search with params.tune_trials)"),
        Step("evaluate", _evaluate, "metrics and robustness on params.eval_split"),
        Step("gate", _gate, "stop here unless the project's gate passes"),
        Step("register", _register, "register the version (and promote it to params.promote_to)"),
    ),
)
