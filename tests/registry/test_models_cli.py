"""The path a team walks, through the command line, on real training and evaluation runs:
train -> gate fails -> promote refused; train -> gate passes -> staging -> approval ->
production -> rollback, every step in the audit trail."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tiny_projects import make_project
from visionloop.cli.app import app
from visionloop.core.schema import TaskType
from visionloop.project import Project

runner = CliRunner()


def _run(project: Project, *args: str, ok: bool = True) -> Any:
    result = runner.invoke(app, ["-p", str(project.root), *args], env={"VISIONLOOP_USER": "ana"})
    assert (result.exit_code == 0) == ok, result.output
    return json.loads(result.output) if ok and "--json" in args else result.output


def _set_gate(project: Project, gate: dict[str, float]) -> None:
    path = project.root / "visionloop.yaml"
    config = yaml.safe_load(path.read_text())
    config["gate"] = gate
    path.write_text(yaml.safe_dump(config))


def _train_and_evaluate(project: Project, seed: int, passes: bool) -> str:
    trained = _run(project, "train", "model.image_size=32", "optim.max_steps=1", f"seed={seed}", "--json")
    evaluated = runner.invoke(
        app, ["-p", str(project.root), "evaluate", trained["run_id"], "--no-robustness", "--explain", "0"]
    )
    assert evaluated.exit_code == (0 if passes else 2), evaluated.output  # evaluate exits 2 on a failed gate
    return str(trained["run_id"])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("models-cli"), TaskType.CLASSIFICATION, per_split=3)


def test_the_gate_the_approval_and_rollback_through_the_cli(project: Project) -> None:
    _set_gate(project, {"max_calibration_error": 0.0})  # no one-step model is perfectly calibrated
    failing = _train_and_evaluate(project, seed=0, passes=False)
    version = _run(project, "models", "register", failing, "--json")
    assert version["version"] == 1 and version["gate"]["passed"] is False
    assert version["run_id"] == failing and version["snapshot_id"]
    refused = _run(project, "models", "promote", "v1", "--to", "staging", ok=False)
    assert "failed its gate" in refused and "calibration_error" in refused

    _set_gate(project, {"min_accuracy": 0.0})
    first = _train_and_evaluate(project, seed=1, passes=True)
    second = _train_and_evaluate(project, seed=2, passes=True)
    assert _run(project, "models", "register", first, "--json")["gate"]["passed"] is True
    _run(project, "models", "register", second, "--description", "more data", "--by", "eva")
    for number in (2, 3):
        _run(project, "models", "promote", f"v{number}", "--to", "staging", "--reason", "nightly")
        refused = _run(project, "models", "promote", f"v{number}", "--to", "production", ok=False)
        assert "needs an approval" in refused
        _run(project, "models", "approve", "staging", "--reason", "report checked", "--by", "rui")
        promoted = _run(project, "models", "promote", "staging", "--to", "production", "--json")
        assert promoted["version"] == number and "production" in promoted["aliases"]

    listed = _run(project, "models", "list", "--json")
    assert [(v["version"], v["aliases"]) for v in listed] == [
        (3, ["production", "staging"]),
        (2, []),
        (1, []),
    ]
    back = _run(project, "models", "rollback", "production", "--reason", "regression", "--json")
    assert back["version"] == 2 and back["aliases"] == ["production"]

    shown = _run(project, "models", "show", "production", "--json")
    trail = [(e["action"], e["alias"], e["actor"]) for e in shown["history"]]
    assert trail == [
        ("register", None, "ana"),
        ("promote", "staging", "ana"),
        ("approve", "production", "rui"),
        ("promote", "production", "ana"),
        ("rollback", "production", "ana"),
    ]
    assert "regression" in _run(project, "models", "history", "production")

    exported = _run(project, "export-model", "production", "--parity-images", "8", "--json")  # an alias
    assert exported["version"] == 2 and exported["parity"]["passed"]
    artifact = _run(project, "models", "show", "v2", "--json")["artifacts"]["onnx"]
    assert artifact["run_id"] == exported["run_id"] and artifact["path"].endswith("model.onnx")
    evaluated = runner.invoke(
        app, ["-p", str(project.root), "evaluate", "v2", "--no-robustness", "--explain", "0"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "v2" in _run(project, "models", "show", "v2") and "passed" in _run(project, "models", "list")


def test_registering_something_that_is_not_a_model_says_so(project: Project) -> None:
    output = _run(project, "models", "register", "not-a-run", ok=False)
    assert "neither a model folder nor the id of a finished training run" in output
    assert "no model version or alias 'nightly'" in _run(project, "models", "show", "nightly", ok=False)
