"""Pipeline steps as Ray tasks: the step runs on the cluster, this process keeps the records.

The task opens the project from its folder (every node sees it at the same path), rebuilds the
step's context from plain values and runs the step function; the lines it logs come back with
its outputs. A step that must wait comes back as such, and a step's own error is raised here as
the error it was, so the runner records it as for a local step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from visionloop.core.errors import VisionloopError
from visionloop.pipelines.runner import StepContext, StepFunction, StepWaiting
from visionloop.project import ExecutorSettings, Project
from visionloop.project.executor import ray_for_project

__all__ = ["run_step_on_ray"]


def _step_task(
    run: StepFunction,
    root: str,
    run_id: str,
    params: BaseModel,
    outputs: dict[str, dict[str, Any]],
    state: dict[str, Any],
    attempt: int,
    position: int,
) -> tuple[str, Any, list[str]]:
    """In the Ray task: ``("done", outputs, log)`` or ``("waiting", reason, log)``."""
    lines: list[str] = []
    project = Project.load(Path(root))
    context = StepContext(project, run_id, params, outputs, state, attempt, lines.append, position)
    try:
        return "done", dict(run(context) or {}), lines
    except StepWaiting as waiting:
        return "waiting", str(waiting), lines


def run_step_on_ray(run: StepFunction, context: StepContext, settings: ExecutorSettings) -> dict[str, Any]:
    ray = ray_for_project(settings, context.project, "Pipeline steps with --executor ray")
    task = ray.remote(num_cpus=settings.cpus_per_worker, num_gpus=settings.gpus_per_worker, max_retries=0)(
        _step_task
    )
    submitted = task.remote(
        run,
        str(context.project.root.resolve()),
        context.run_id,
        context.params,
        context.outputs,
        context.state,
        context.attempt,
        context.position,
    )
    try:
        outcome, value, lines = ray.get(submitted)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause
        raise cause if isinstance(cause, Exception) else VisionloopError(str(exc)) from exc
    for line in lines:
        context.log(line)
    if outcome == "waiting":
        raise StepWaiting(value)
    return dict(value)
