"""The registry mirrored into a real MLflow (SQL tracking and registry store on SQLite): runs with
their metrics, model versions with lineage and approvals as tags, and aliases that follow
promotions and rollbacks. An unreachable MLflow never blocks or undoes a registry change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tiny_projects import make_project
from visionloop.cli.app import app
from visionloop.core.schema import TaskType
from visionloop.project import Project

mlflow = pytest.importorskip("mlflow")
runner = CliRunner()


def _run(project: Project, *args: str) -> dict:
    result = runner.invoke(app, ["-p", str(project.root), *args, "--json"], env={"VISIONLOOP_USER": "ana"})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _configure(project: Project, registry: dict) -> Project:
    path = project.root / "visionloop.yaml"
    config = yaml.safe_load(path.read_text())
    config["registry"] = registry
    path.write_text(yaml.safe_dump(config))
    return Project.load(project.root)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str, list[str]]:
    """A project mirrored to MLflow at a SQLite URI; two one-step models, the first tracked in MLflow."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    project = _configure(
        make_project(root, TaskType.CLASSIFICATION, per_split=3), {"mlflow_uri": uri, "mlflow_model": "tiny"}
    )
    runs = []
    for seed, tracking in ((0, [f"tracking.mlflow_uri={uri}"]), (1, [])):
        trained = _run(
            project, "train", "model.image_size=32", "optim.max_steps=1", f"seed={seed}", *tracking
        )
        runs.append(trained["run_id"])
        evaluated = runner.invoke(
            app, ["-p", str(project.root), "evaluate", trained["run_id"], "--no-robustness", "--explain", "0"]
        )
        assert evaluated.exit_code == 0, evaluated.output
    return project, uri, runs


def test_versions_runs_tags_and_aliases_reach_mlflow(trained: tuple[Project, str, list[str]]) -> None:
    project, uri, runs = trained
    for run in runs:
        _run(project, "models", "register", run)
    _run(project, "models", "approve", "v1", "--reason", "checked", "--by", "rui")
    _run(project, "models", "promote", "v1", "--to", "production")
    _run(project, "models", "promote", "v2", "--to", "staging")
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = {v.tags["visionloop.version"]: v for v in client.search_model_versions("name='tiny'")}
    assert sorted(versions) == ["1", "2"]
    first, second = versions["1"], versions["2"]
    assert first.tags["visionloop.run_id"] == runs[0] and first.tags["visionloop.gate"] == "passed"
    assert first.tags["visionloop.approval.production"].startswith("approved by rui")
    assert "visionloop.snapshot" in first.tags and len(first.tags["visionloop.weights_sha256"]) == 64
    # the first run was tracked while training: the version links to that run, with its epochs' metrics
    tracked = client.get_run(first.run_id)
    assert tracked.data.tags["visionloop.run_id"] == runs[0] and tracked.data.metrics
    assert tracked.info.artifact_uri.startswith((project.root / "mlflow-artifacts").as_uri())  # not ./mlruns
    assert (project.root / "mlflow-artifacts").is_dir()
    # the second was not: the mirror made a run from the training run's record
    made = client.get_run(second.run_id)
    assert made.data.tags["visionloop.run_id"] == runs[1] and made.data.params["optim.max_steps"] == "1"
    assert client.get_registered_model("tiny").aliases == {
        "production": first.version,
        "staging": second.version,
    }

    _run(project, "models", "approve", "v2", "--reason", "ok", "--by", "rui")
    _run(project, "models", "promote", "v2", "--to", "production")
    assert client.get_registered_model("tiny").aliases["production"] == second.version
    _run(project, "models", "rollback", "production")
    assert client.get_registered_model("tiny").aliases["production"] == first.version
    assert _run(project, "models", "sync") == {"versions": 0, "runs": 0, "tags": 0, "aliases": 0}  # in step


def test_an_unreachable_mlflow_warns_but_the_registry_changes(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=3)
    project = _configure(project, {"mlflow_uri": "http://127.0.0.1:9/nothing-listens-here"})
    trained = _run(project, "train", "model.image_size=32", "optim.max_steps=1")
    result = runner.invoke(
        app,
        ["-p", str(project.root), "models", "register", trained["run_id"]],
        env={
            "VISIONLOOP_USER": "ana",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "2",
        },
    )
    assert result.exit_code == 0, result.output
    assert "not mirrored to MLflow" in result.output
    assert [v["version"] for v in _run(project, "models", "list")] == [1]
