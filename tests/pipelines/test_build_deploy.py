"""``build`` registers only what passed the gate; ``deploy`` waits for a reviewer, then releases."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny_projects import make_project
from visionloop.core.errors import ValidationError
from visionloop.core.schema import TaskType
from visionloop.pipelines.named import get_pipeline
from visionloop.pipelines.runner import resume_pipeline, run_pipeline
from visionloop.project import Project
from visionloop.registry import project_registry

TRAIN = {
    "threads": 1,
    "model": {"image_size": 32},
    "optim": {"batch_size": 4, "epochs": 1},
    "early_stopping": {"patience": None},
}


def _project(tmp_path: Path) -> Project:
    return make_project(tmp_path, TaskType.CLASSIFICATION, per_split=6)


def test_build_then_deploy_waits_for_an_approval(tmp_path: Path) -> None:
    project = _project(tmp_path)
    built = run_pipeline(project, get_pipeline("build"), {"train": TRAIN, "robustness": False})
    assert built.status == "succeeded", built.to_dict()
    version = built.outputs["register"]["version"]
    with project.open_catalog() as catalog:
        registered = project_registry(project, catalog).get(version)
        [training] = catalog.child_runs(built.run_id, "train")
    assert registered.run_id == training.id and registered.gate is not None and registered.gate.passed
    assert registered.snapshot_id == built.outputs["snapshot"]["snapshot"]

    deploy = get_pipeline("deploy")
    waiting = run_pipeline(project, deploy, {"version": f"v{version}"})
    assert waiting.status == "waiting", waiting.to_dict()
    assert [s.status for s in waiting.steps] == ["succeeded", "succeeded", "succeeded", "waiting", "pending"]
    with project.open_catalog() as catalog:
        registry = project_registry(project, catalog)
        assert registry.aliases() == {"staging": version}
        assert Path(registry.get(version).artifacts["onnx"]["path"]).is_file()
        registry.approve(version, "reviewer", "robustness report read")
    released = resume_pipeline(project, waiting.run_id)
    assert released.status == "succeeded"
    assert released.outputs["approval"]["approved_by"] == "reviewer"
    with project.open_catalog() as catalog:
        assert project_registry(project, catalog).aliases() == {"staging": version, "production": version}


def test_a_failed_gate_registers_nothing(tmp_path: Path) -> None:
    project = _project(tmp_path)
    gate = project.config.gate.model_copy(update={"max_calibration_error": 0.0})  # no model meets this
    project.config = project.config.model_copy(update={"gate": gate})
    with pytest.raises(ValidationError, match="gate failed"):
        run_pipeline(project, get_pipeline("build"), {"train": TRAIN, "robustness": False})
    with project.open_catalog() as catalog:
        [run] = catalog.list_runs(kind="pipeline")
        assert run.status == "failed" and "step gate" in (run.error or "")
        assert project_registry(project, catalog).versions() == []
