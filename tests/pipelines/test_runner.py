"""The durable pipeline runner: steps in order, outputs passed on, failures resumed, waits, one executor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from visionloop.core.errors import ConfigError
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.pipelines import leases
from visionloop.pipelines.runner import (
    Pipeline,
    Step,
    StepContext,
    StepWaiting,
    pipeline_run,
    resume_pipeline,
    run_pipeline,
)
from visionloop.project import Project
from visionloop.project.config import ProjectConfig


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: int = 1
    fail_once: bool = False


def _project(tmp_path: Path) -> Project:
    schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=["a", "b"])
    return Project.create(tmp_path / "p", ProjectConfig(name="p", labels=schema))


def _toy(calls: list[str], *, wait_until: list[bool] | None = None) -> Pipeline:
    def first(ctx: StepContext) -> dict[str, Any]:
        calls.append("first")
        return {"value": ctx.params.start + 1}

    def second(ctx: StepContext) -> dict[str, Any]:
        calls.append("second")
        if ctx.params.fail_once and ctx.attempt == 1:
            ctx.save_state(progress=3)
            raise RuntimeError("disk full")
        return {"value": ctx.output("first", "value") * 10, "seen_state": ctx.state.get("progress")}

    def approval(ctx: StepContext) -> dict[str, Any]:
        calls.append("approval")
        if wait_until is not None and not wait_until[0]:
            raise StepWaiting("waiting for an approval")
        return {}

    steps = (Step("first", first), Step("second", second), Step("gate", approval))
    return Pipeline("toy", "a toy", Params, steps)


def test_steps_run_in_order_and_pass_outputs(tmp_path: Path) -> None:
    calls: list[str] = []
    run = run_pipeline(_project(tmp_path), _toy(calls), {"start": 4})
    assert run.status == "succeeded"
    assert calls == ["first", "second", "approval"]
    assert run.outputs["second"]["value"] == 50
    assert [step.status for step in run.steps] == ["succeeded"] * 3
    assert run.params == {"start": 4, "fail_once": False}


def test_a_failed_run_resumes_from_the_failed_step_with_its_saved_state(tmp_path: Path) -> None:
    project, calls = _project(tmp_path), []
    pipeline = _toy(calls)
    with pytest.raises(RuntimeError, match="disk full"):
        run_pipeline(project, pipeline, {"fail_once": True})
    with project.open_catalog() as catalog:
        [run_id] = [r.id for r in catalog.list_runs(kind="pipeline")]
    failed = pipeline_run(project, run_id)
    assert failed.status == "failed"
    assert [s.status for s in failed.steps] == ["succeeded", "failed", "pending"]
    assert "disk full" in (failed.error or "")
    resumed = resume_pipeline(project, run_id, pipeline=pipeline)
    assert resumed.status == "succeeded"
    assert calls == ["first", "second", "second", "approval"]  # the finished first step did not run again
    assert resumed.outputs["second"] == {"value": 20, "seen_state": 3}
    assert resumed.steps[1].attempts == 2


def test_a_waiting_step_leaves_the_run_waiting_until_resumed(tmp_path: Path) -> None:
    project, calls, approved = _project(tmp_path), [], [False]
    pipeline = _toy(calls, wait_until=approved)
    run = run_pipeline(project, pipeline, {})
    assert run.status == "waiting" and run.steps[2].status == "waiting"
    assert resume_pipeline(project, run.run_id, pipeline=pipeline).status == "waiting"
    approved[0] = True
    assert resume_pipeline(project, run.run_id, pipeline=pipeline).status == "succeeded"
    assert calls.count("first") == 1 and calls.count("approval") == 3


def test_a_run_held_by_a_live_process_is_not_executed_twice(tmp_path: Path) -> None:
    project, calls = _project(tmp_path), []
    pipeline = _toy(calls, wait_until=[False])
    run = run_pipeline(project, pipeline, {})
    with project.open_catalog() as catalog:
        assert leases.acquire(catalog, f"pipeline:{run.run_id}", "elsewhere:1:x", ttl_s=60)
    with pytest.raises(leases.LeaseHeld, match="already running"):
        resume_pipeline(project, run.run_id, pipeline=pipeline)


def test_a_lease_of_a_dead_local_process_is_taken_at_once(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    project = _project(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = f"{socket.gethostname()[:64]}:{child.pid}:x"
    with project.open_catalog() as catalog:
        assert leases.acquire(catalog, "train", dead, ttl_s=600)
        assert leases.current_holder(catalog, "train") is None
        assert leases.acquire(catalog, "train", "me:1:y", ttl_s=600)
        assert not leases.acquire(catalog, "train", "other:2:z", ttl_s=600)  # a live (remote) holder


def test_parameters_are_validated_and_project_defaults_apply(tmp_path: Path) -> None:
    project, calls = _project(tmp_path), []
    with pytest.raises(ConfigError, match="start"):
        run_pipeline(project, _toy(calls), {"start": "many"})
    project.config.pipelines["toy"] = {"start": 7}
    assert run_pipeline(project, _toy(calls), {}).outputs["first"]["value"] == 8
