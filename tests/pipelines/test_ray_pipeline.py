"""Pipeline steps as Ray tasks (issue 8): each step runs in a Ray worker, this process records the
run; waits, failures and resumes behave as with the local executor, and named pipelines work."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from tiny_projects import make_project
from visionloop.cli.app import app
from visionloop.core.errors import ValidationError
from visionloop.core.schema import TaskType
from visionloop.pipelines.runner import (
    Pipeline,
    Step,
    StepContext,
    StepWaiting,
    resume_pipeline,
    run_pipeline,
)
from visionloop.project import ExecutorSettings
from visionloop.registry import project_registry

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
# The toy steps live in this test module, which Ray workers cannot import: ship them by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
RAY = ExecutorSettings(kind="ray")


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    broken: bool = False


def where(ctx: StepContext) -> dict[str, Any]:
    ctx.log("    in a Ray task")
    return {"pid": os.getpid(), "task": ray.get_runtime_context().get_task_id()}


def gate(ctx: StepContext) -> dict[str, Any]:
    if ctx.params.broken:
        raise ValidationError("the gate is broken")
    if ctx.attempt == 1:
        ctx.save_state(asked=True)
        raise StepWaiting("waiting for an approval")
    return {"earlier": ctx.output("where", "pid"), "asked": ctx.state.get("asked"), "pid": os.getpid()}


TOY = Pipeline("toy", "steps that say where they ran", Params, (Step("where", where), Step("gate", gate)))


def test_steps_run_as_ray_tasks_and_wait_and_fail_as_locally(tmp_path: Path, local_ray: None) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=1)
    said: list[str] = []
    waiting = run_pipeline(project, TOY, {}, executor=RAY, log=said.append)
    assert waiting.status == "waiting" and waiting.executor == "ray"
    ran = waiting.outputs["where"]
    assert ran["pid"] != os.getpid() and ran["task"] is not None
    assert "    in a Ray task" in said
    assert waiting.steps[1].outputs is not None and waiting.steps[1].outputs["state"] == {"asked": True}

    done = resume_pipeline(project, waiting.run_id, pipeline=TOY)  # on Ray again: the run says so
    assert done.status == "succeeded" and done.executor == "ray"
    assert done.outputs["gate"]["earlier"] == ran["pid"] and done.outputs["gate"]["asked"] is True
    assert done.outputs["gate"]["pid"] != os.getpid()

    with pytest.raises(ValidationError, match="the gate is broken"):
        run_pipeline(project, TOY, {"broken": True}, executor=RAY)


def test_the_build_pipeline_runs_on_ray_from_the_command_line(tmp_path: Path, local_ray: None) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=6)
    settings = tmp_path / "params.yaml"
    settings.write_text(
        json.dumps(
            {
                "robustness": False,
                "train": {"threads": 1, "model": {"image_size": 32}, "optim": {"batch_size": 4, "epochs": 1}},
            }
        )
    )
    result = CliRunner().invoke(
        app,
        [
            "-p",
            str(project.root),
            "pipeline",
            "run",
            "build",
            "--params",
            str(settings),
            "--executor",
            "ray",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    assert built["status"] == "succeeded" and built["executor"] == "ray"
    version = built["steps"][-1]["outputs"]["version"]
    with project.open_catalog() as catalog:
        [training] = catalog.child_runs(built["run_id"], "train")
        assert project_registry(project, catalog).get(version).run_id == training.id
