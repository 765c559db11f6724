"""Durable pipelines: plain step functions run in order, every run and step recorded in the catalog.

A :class:`Pipeline` is a name, a pydantic model of its parameters and a tuple of :class:`Step`\\ s.
A step is a function ``(StepContext) -> dict`` returning JSON-able outputs that later steps read
(``ctx.outputs["train"]["run_id"]``). The runner stores the pipeline run (a ``runs`` row of kind
``pipeline`` with its parameters) and each step's status and outputs, so after a crash, even
``kill -9``, :func:`resume_pipeline` continues from the first step that did not finish.

Steps must be idempotent: a step that was interrupted runs again from its start. Steps that
start long catalog runs make that cheap by passing ``parent_run=ctx.run_id`` and looking for
their own earlier attempt with :meth:`StepContext.child_runs` (a training run to resume, an
import that already landed), or by writing progress notes with :meth:`StepContext.save_state`.
A step that must wait for something outside (an approval) raises :class:`StepWaiting`: the run
is left ``waiting`` and ``resume`` tries the step again later.

A lease per run (see :mod:`leases`) keeps two processes from executing one run at once.

With the ``ray`` executor (``executor=`` here, the project's ``executor.kind`` by default, kept
with the run so ``resume`` uses it again) each step runs as a Ray task on the cluster while this
process keeps the records (:mod:`ray_steps`); inside the task the step's work runs locally.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from visionloop.catalog import Catalog
from visionloop.catalog.records import RunRecord
from visionloop.core.errors import ConfigError, ConflictError, ValidationError, VisionloopError
from visionloop.pipelines import leases
from visionloop.pipelines.run_log import LOG_NAME, RunLog
from visionloop.pipelines.store import (
    StepRecord,
    StepStatus,
    create_steps,
    mark_failed,
    mark_running,
    mark_succeeded,
    mark_waiting,
    read_steps,
    save_state,
    set_run_status,
)
from visionloop.project import ExecutorSettings, Project
from visionloop.project.config import validation_problems
from visionloop.project.executor import choose_executor

__all__ = [
    "RUN_KIND",
    "Pipeline",
    "PipelineRun",
    "Step",
    "StepContext",
    "StepWaiting",
    "pipeline_run",
    "resume_pipeline",
    "run_pipeline",
    "start_pipeline",
]

RUN_KIND = "pipeline"
WAITING = "waiting"

Log = Callable[[str], None]


class StepWaiting(VisionloopError):
    """The step cannot finish until something outside happens; ``resume`` tries it again."""


@dataclass
class StepContext:
    """What a step sees: the project, its pipeline run, the parameters and earlier steps' outputs."""

    project: Project
    run_id: str
    params: Any  # the pipeline's parameter model, validated
    outputs: dict[str, dict[str, Any]]
    state: dict[str, Any]
    attempt: int
    log: Log
    _position: int = 0

    @property
    def position(self) -> int:
        """The step's index in its pipeline."""
        return self._position

    def save_state(self, **values: Any) -> None:
        """Record progress notes (``ctx.state``) now, so the next attempt after a crash finds them."""
        self.state.update(values)
        with self.project.open_catalog() as catalog:
            save_state(catalog, self.run_id, self._position, self.state)

    def child_runs(self, kind: str | None = None) -> list[RunRecord]:
        """Runs this pipeline run started (``parent_run=ctx.run_id``), newest first."""
        with self.project.open_catalog() as catalog:
            return catalog.child_runs(self.run_id, kind)

    def output(self, step: str, key: str) -> Any:
        """One value from an earlier step's outputs, with an error that names what is missing."""
        try:
            return self.outputs[step][key]
        except KeyError:
            raise ValidationError(f"pipeline step {step!r} left no output {key!r}") from None


StepFunction = Callable[[StepContext], dict[str, Any]]


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFunction
    description: str = ""


@dataclass(frozen=True)
class Pipeline:
    name: str
    description: str
    params: type[BaseModel]
    steps: tuple[Step, ...]

    def parse_params(self, values: Mapping[str, Any]) -> BaseModel:
        try:
            return self.params.model_validate(dict(values))
        except PydanticValidationError as exc:
            raise ConfigError(f"pipeline {self.name}: {validation_problems(exc)}") from exc


@dataclass
class PipelineRun:
    """A pipeline run as stored: its status and each step's."""

    run_id: str
    pipeline: str
    status: str
    params: dict[str, Any]
    steps: list[StepRecord] = field(default_factory=list)
    error: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    executor: str = "local"

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return {s.name: s.outputs or {} for s in self.steps if s.status == StepStatus.SUCCEEDED}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status,
            "params": self.params,
            "inputs": self.inputs,
            "error": self.error,
            "executor": self.executor,
            "steps": [step.to_dict() for step in self.steps],
        }


def start_pipeline(
    project: Project,
    pipeline: Pipeline,
    params: Mapping[str, Any],
    *,
    inputs: dict[str, Any] | None = None,
    executor: str | None = None,
) -> str:
    """Record a new run of ``pipeline`` with every step pending; returns the run id (nothing runs yet)."""
    parsed = pipeline.parse_params({**project.config.pipelines.get(pipeline.name, {}), **params})
    kind = choose_executor(project.config.executor, executor).kind
    with project.open_catalog() as catalog:
        run_id = catalog.start_run(
            RUN_KIND,
            {"pipeline": pipeline.name, "params": parsed.model_dump(mode="json"), "executor": kind},
            inputs or {},
        )
        create_steps(catalog, run_id, [step.name for step in pipeline.steps])
    return run_id


def run_pipeline(
    project: Project,
    pipeline: Pipeline,
    params: Mapping[str, Any],
    *,
    inputs: dict[str, Any] | None = None,
    log: Log | None = None,
    executor: ExecutorSettings | None = None,
) -> PipelineRun:
    """Start a run of ``pipeline`` and execute it to the end (or to a failure or a wait)."""
    kind = executor.kind if executor else None
    run_id = start_pipeline(project, pipeline, params, inputs=inputs, executor=kind)
    return resume_pipeline(project, run_id, log=log, pipeline=pipeline, executor=executor)


def pipeline_run(project: Project, run_id: str) -> PipelineRun:
    with project.open_catalog() as catalog:
        record = catalog.get_run(run_id)
        if record.kind != RUN_KIND:
            raise ValidationError(f"run {run_id} is a {record.kind} run, not a pipeline run")
        steps = read_steps(catalog, run_id)
    return PipelineRun(
        run_id,
        str(record.config.get("pipeline")),
        record.status,
        dict(record.config.get("params") or {}),
        steps,
        record.error,
        dict(record.inputs or {}),
        str(record.config.get("executor") or "local"),
    )


def resume_pipeline(
    project: Project,
    run_id: str,
    *,
    log: Log | None = None,
    pipeline: Pipeline | None = None,
    executor: ExecutorSettings | None = None,
) -> PipelineRun:
    """Execute ``run_id`` from its first unfinished step (on ``executor``, else where the run
    started); a finished run is returned as it is."""
    say = RunLog(project.run_folder(run_id) / LOG_NAME, log)
    state = pipeline_run(project, run_id)
    if state.status == "succeeded":
        return state
    if pipeline is None:
        from visionloop.pipelines.named import get_pipeline

        pipeline = get_pipeline(state.pipeline)
    if [s.name for s in state.steps] != [s.name for s in pipeline.steps]:
        raise ConflictError(
            f"run {run_id} was made by a different version of pipeline {pipeline.name} "
            f"(steps {[s.name for s in state.steps]}); start a new run"
        )
    params = pipeline.parse_params(state.params)
    where = executor or choose_executor(project.config.executor, state.executor)
    with (
        project.open_catalog() as catalog,
        leases.lease(catalog, f"pipeline:{run_id}", what=f"pipeline run {run_id}"),
    ):
        _execute(project, catalog, pipeline, run_id, params, say, where)
    return pipeline_run(project, run_id)


def _execute(
    project: Project,
    catalog: Catalog,
    pipeline: Pipeline,
    run_id: str,
    params: BaseModel,
    say: Log,
    executor: ExecutorSettings,
) -> None:
    set_run_status(catalog, run_id, "running")
    records = read_steps(catalog, run_id)
    outputs: dict[str, dict[str, Any]] = {}
    for step, record in zip(pipeline.steps, records, strict=True):
        if record.status == StepStatus.SUCCEEDED:
            outputs[step.name] = record.outputs or {}
            continue
        previous = record.outputs or {}
        context = StepContext(
            project,
            run_id,
            params,
            outputs,
            dict(previous.get("state") or {}),
            record.attempts + 1,
            say,
            record.position,
        )
        again = f" (attempt {context.attempt})" if context.attempt > 1 else ""
        say(f"[{record.position + 1}/{len(records)}] {step.name}{again}")
        mark_running(catalog, run_id, record.position, context.attempt)
        started = time.perf_counter()
        try:
            result = _run_step(step, context, executor)
        except StepWaiting as waiting:
            mark_waiting(catalog, run_id, record.position, str(waiting))
            set_run_status(catalog, run_id, WAITING, str(waiting))
            say(f"    waiting: {waiting}")
            return
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            say(f"    failed: {message}")
            mark_failed(catalog, run_id, record.position, message)
            catalog.finish_run(run_id, {"failed_step": step.name}, error=f"step {step.name}: {message}")
            if not isinstance(exc, VisionloopError):
                say(traceback.format_exc())
            raise
        result = dict(result or {})
        mark_succeeded(catalog, run_id, record.position, result)
        outputs[step.name] = result
        say(f"    done in {time.perf_counter() - started:.1f} s")
    catalog.finish_run(run_id, {"steps": dict(outputs)})


def _run_step(step: Step, context: StepContext, executor: ExecutorSettings) -> dict[str, Any]:
    if executor.kind == "ray":
        from visionloop.pipelines.ray_steps import run_step_on_ray

        return run_step_on_ray(step.run, context, executor)
    return step.run(context)
