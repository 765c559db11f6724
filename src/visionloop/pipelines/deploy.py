"""``deploy``: export -> staging -> robustness check -> wait for approval -> production.

The release half of the seeds' flows, with the registry's rules doing the policing: the gate
must have passed to reach staging, production takes only a version someone other than its
registrar approved. The approval step does not block a worker for days: it leaves the run
``waiting``, and ``visionloop pipeline resume RUN`` (or the next ``watch`` pass) carries on
once ``visionloop models approve`` has been given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from visionloop.core.errors import ValidationError
from visionloop.pipelines.build import promote_once
from visionloop.pipelines.runner import Pipeline, Step, StepContext, StepWaiting
from visionloop.pipelines.steps import EVALUATE_KIND
from visionloop.registry import PRODUCTION, ModelVersion, project_registry

__all__ = ["PIPELINE", "DeployParams"]

STAGING = "staging"


class DeployParams(BaseModel):
    """``version``: what to release: ``latest`` (the newest registered version), a number (3, v3)
    or an alias (candidate). ``int8``: also try an int8 graph (kept only if it pays)."""

    model_config = ConfigDict(extra="forbid")

    version: str = "latest"
    actor: str = "pipeline"
    int8: bool = False
    robustness: bool = True


def _params(ctx: StepContext) -> DeployParams:
    params: DeployParams = ctx.params
    return params


def _version(ctx: StepContext) -> ModelVersion:
    """The version this run releases, fixed by its first step so later steps never drift."""
    with ctx.project.open_catalog() as catalog:
        registry = project_registry(ctx.project, catalog)
        chosen = ctx.outputs.get("export", {}).get("version")
        if chosen is not None:
            return registry.get(int(chosen))
        reference = _params(ctx).version
        if reference == "latest":
            versions = registry.versions()
            if not versions:
                raise ValidationError("no registered version to deploy: run the build pipeline first")
            return versions[0]
        return registry.get(reference)


def _folder(ctx: StepContext, version: ModelVersion) -> str:
    with ctx.project.open_catalog() as catalog:
        return str(project_registry(ctx.project, catalog).folder(version))


def _export(ctx: StepContext) -> dict[str, Any]:
    from visionloop.tasks.onnx_export import export_project_model

    version = _version(ctx)
    onnx = version.artifacts.get("onnx") or {}
    if not (isinstance(onnx, dict) and onnx.get("path") and Path(str(onnx["path"])).is_file()):
        run_id, export = export_project_model(ctx.project, _folder(ctx, version), int8=_params(ctx).int8)
        onnx = {
            "path": str(export.path),
            "run_id": run_id,
            "onnx_sha256": export.onnx_sha256,
            "opset": export.opset,
        }
        with ctx.project.open_catalog() as catalog:
            project_registry(ctx.project, catalog).add_artifact(
                version.version, "onnx", onnx, _params(ctx).actor
            )
    return {"version": version.version, "onnx": onnx.get("path"), "onnx_sha256": onnx.get("onnx_sha256")}


def _staging(ctx: StepContext) -> dict[str, Any]:
    version = _version(ctx)
    promote_once(ctx, version.version, STAGING, _params(ctx).actor)
    return {"alias": STAGING, "version": version.version}


def _robustness(ctx: StepContext) -> dict[str, Any]:
    """Measure the version under the corruption suite and hold it to ``gate.max_robustness_drop``."""
    from visionloop.evaluation.corruptions import CORRUPTIONS
    from visionloop.evaluation.evaluate import evaluate_model

    if not _params(ctx).robustness:
        return {"skipped": True}
    version = _version(ctx)
    drop = None
    with ctx.project.open_catalog() as catalog:
        for run in catalog.child_runs(version.run_id, EVALUATE_KIND) if version.run_id else []:
            measured = (run.outputs or {}).get("metrics", {}).get("robustness_max_drop")
            if (
                run.status == "succeeded"
                and run.inputs.get("model_sha256") == version.weights_sha256
                and measured is not None
            ):
                drop, evaluation = float(measured), run.id
                break
    if drop is None:
        result = evaluate_model(ctx.project, _folder(ctx, version), corruptions=tuple(CORRUPTIONS), explain=0)
        robust = result.metrics.get("robustness") or {}
        drop, evaluation = (robust.get("max_drop") if isinstance(robust, dict) else None), str(result.run_id)
    limit = ctx.project.config.gate.max_robustness_drop
    if drop is not None and limit is not None and drop > limit:
        raise ValidationError(
            f"v{version.version} loses {drop:.1%} of its headline metric under corruptions, more than "
            f"gate.max_robustness_drop {limit:.1%} (evaluation run {evaluation})"
        )
    return {"max_drop": drop, "limit": limit, "evaluation_run": evaluation}


def _approval(ctx: StepContext) -> dict[str, Any]:
    version = _version(ctx)
    with ctx.project.open_catalog() as catalog:
        registry = project_registry(ctx.project, catalog)
        decisions = [
            event
            for event in registry.history(f"v{version.version}")
            if event.action in ("approve", "reject") and event.alias in (None, PRODUCTION)
        ]
    if not decisions or decisions[-1].action != "approve":
        state = "was rejected" if decisions else "needs an approval"
        raise StepWaiting(
            f"v{version.version} {state} for production: 'visionloop models approve v{version.version} "
            "--reason ...' by a reviewer, then 'visionloop pipeline resume'"
        )
    return {"approved_by": decisions[-1].actor, "reason": decisions[-1].reason}


def _production(ctx: StepContext) -> dict[str, Any]:
    version = _version(ctx)
    promote_once(ctx, version.version, PRODUCTION, _params(ctx).actor)
    ctx.log(f"    v{version.version} is production")
    return {"alias": PRODUCTION, "version": version.version}


PIPELINE = Pipeline(
    name="deploy",
    description=(
        "Export a registered version to ONNX, move it to staging, check its robustness, wait for a "
        "reviewer's approval, then make it production."
    ),
    params=DeployParams,
    steps=(
        Step("export", _export, "ONNX export with a parity check, recorded on the version"),
        Step("staging", _staging, "point the staging alias at the version"),
        Step("robustness", _robustness, "hold the version to gate.max_robustness_drop"),
        Step("approval", _approval, "wait until a reviewer approves the version"),
        Step("production", _production, "point the production alias at the version"),
    ),
)
