"""``visionloop pipeline run|resume|show|list`` on ``model-assisted-labeling`` without Label Studio."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tiny_projects import make_project
from visionloop.cli.app import app
from visionloop.core.schema import TaskType

TRAIN = [
    "train.threads=1",
    "train.model.image_size=32",
    "train.optim.batch_size=4",
    "train.optim.epochs=1",
    "train.early_stopping.patience=null",
]


def test_run_show_list_and_resume_a_finished_run(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, unlabeled=10)
    runner = CliRunner()
    base = ["-p", str(project.root), "pipeline"]
    ran = runner.invoke(
        app,
        [*base, "run", "model-assisted-labeling", *TRAIN, "budget=3", "push=false", "workers=0", "--json"],
    )
    assert ran.exit_code == 0, ran.output
    run = json.loads(ran.stdout)
    assert run["status"] == "succeeded"
    assert [step["name"] for step in run["steps"]] == ["ingest", "train", "prelabel", "select", "push"]
    outputs = {step["name"]: step["outputs"] for step in run["steps"]}
    assert outputs["ingest"] == {"skipped": True} and outputs["push"] == {"skipped": True}
    assert outputs["select"]["count"] == 3 and outputs["prelabel"]["predicted"] == 10
    assert run["params"]["budget"] == 3 and run["params"]["train"]["optim"]["epochs"] == 1

    shown = json.loads(runner.invoke(app, [*base, "show", run["run_id"], "--json"]).stdout)
    assert shown == run
    listed = json.loads(runner.invoke(app, [*base, "list", "--runs", "--json"]).stdout)
    assert [entry["run_id"] for entry in listed] == [run["run_id"]]
    again = runner.invoke(app, [*base, "resume", run["run_id"], "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["steps"] == run["steps"]  # nothing re-ran


def test_a_failing_run_exits_non_zero_and_says_how_to_resume(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, unlabeled=4)
    result = CliRunner().invoke(
        app,
        [
            "-p",
            str(project.root),
            "pipeline",
            "run",
            "model-assisted-labeling",
            "model=nosuchmodel",
            "push=false",
        ],
    )
    assert result.exit_code == 1
    with project.open_catalog() as catalog:
        [run] = catalog.list_runs(kind="pipeline")
    assert run.status == "failed" and "step prelabel" in (run.error or "")
    assert f"visionloop pipeline resume {run.id}" in result.output


def test_unknown_pipelines_and_bad_parameters_are_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION)
    runner = CliRunner()
    base = ["-p", str(project.root), "pipeline", "run"]
    unknown = runner.invoke(app, [*base, "nightly"])
    assert unknown.exit_code != 0 and "model-assisted-labeling" in unknown.output
    bad = runner.invoke(app, [*base, "model-assisted-labeling", "budget=0"])
    assert bad.exit_code != 0 and "budget" in bad.output
    psychic = runner.invoke(app, [*base, "model-assisted-labeling", "strategy=psychic"])
    assert psychic.exit_code != 0 and "psychic" in psychic.output
    with project.open_catalog() as catalog:
        assert not catalog.list_runs(kind="pipeline")  # refused before anything was recorded
