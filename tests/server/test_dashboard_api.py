"""The dashboard's read API on a real tiny project: overview counts, gallery pages and filters,
an item's history, and thumbnails made once and cached."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import BaseModel

from tiny_projects import make_project
from tiny_registry import classifier_project, evaluation_folder
from tiny_served import png
from visionloop.core.labels import ClassLabel
from visionloop.core.provenance import Provenance
from visionloop.core.schema import TaskType
from visionloop.pipelines.loop import LoopReport, LoopRound
from visionloop.pipelines.runner import Pipeline, Step, StepContext, StepWaiting, run_pipeline
from visionloop.project import Project
from visionloop.registry import ModelRegistry
from visionloop.server import ServerSettings, create_app
from visionloop.tasks.model_files import model_version

TOKEN = "t" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Detection scenes: 4 labelled per split, 3 unlabelled; one model pre-label on the pool."""
    project = make_project(tmp_path, TaskType.DETECTION, per_split=4, unlabeled=3)
    with project.open_catalog() as catalog:
        annotated = catalog.annotated_item_ids()
        pool = sorted(item.id for item in catalog.iter_items() if item.id not in annotated)
        catalog.add_annotation(pool[0], ClassLabel("box"), Provenance.model("m1", 0.4))
    return project


@pytest.fixture
def client(project: Project) -> Iterator[TestClient]:
    with TestClient(create_app(project, ServerSettings(token=TOKEN)), headers=AUTH) as client:
        yield client


def test_the_overview_counts_items_and_labels(client: TestClient) -> None:
    body = client.get("/api/overview").json()
    assert body["task"] == "detection" and body["project"] == "tiny-detection"
    assert body["items"] == 15 and body["unlabelled"] == 2
    assert body["labelled_by_provenance"] == {"human": 12, "auto": 0, "model": 1}


def test_gallery_pages_and_filters(client: TestClient) -> None:
    first = client.get("/api/gallery", params={"limit": 10}).json()
    assert first["total"] == 15 and len(first["items"]) == 10 and first["next_after"] is not None
    rest = client.get("/api/gallery", params={"limit": 10, "after": first["next_after"]}).json()
    assert len(rest["items"]) == 5 and rest["next_after"] is None
    shown = first["items"][0]
    assert shown["annotation"]["provenance"]["kind"] == "human"
    assert shown["annotation"]["label"]["type"] == "objects" and shown["width"] > 0
    assert shown["thumbnail"] == f"/api/items/{shown['id']}/thumbnail"

    models = client.get("/api/gallery", params={"provenance": "model"}).json()
    assert models["total"] == 1 and models["items"][0]["annotation"]["provenance"]["model_version"] == "m1"
    assert client.get("/api/gallery", params={"provenance": "none"}).json()["total"] == 2
    assert client.get("/api/gallery", params={"split": "val"}).json()["total"] == 4
    assert client.get("/api/gallery", params={"provenance": "robot"}).status_code == 422
    assert client.get("/api/gallery", params={"limit": 501}).status_code == 422


def test_an_item_shows_its_history(client: TestClient, project: Project) -> None:
    item = client.get("/api/gallery", params={"limit": 1}).json()["items"][0]["id"]
    with project.open_catalog() as catalog:
        catalog.add_annotation(item, ClassLabel("bar"), Provenance.human("reviewer"))
    body = client.get(f"/api/items/{item}").json()
    assert [version["version"] for version in body["history"]] == [1, 2]
    assert body["annotation"]["provenance"]["annotator"] == "reviewer"
    assert client.get("/api/items/999999").status_code == 404


def test_thumbnails_are_made_once_in_the_items_proportions(client: TestClient, project: Project) -> None:
    item = client.get("/api/gallery", params={"limit": 1}).json()["items"][0]
    answer = client.get(item["thumbnail"], params={"size": 128})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(answer.content))
    assert max(image.size) <= 128
    assert abs(image.size[0] / image.size[1] - item["width"] / item["height"]) < 0.05
    cached = list((project.root / "cache" / "thumbnails").glob("*-128.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == answer.content
    assert client.get(item["thumbnail"], params={"size": 130}).content == answer.content  # nearest size


def test_the_root_serves_browsers_the_dashboard_and_label_studio_its_health(client: TestClient) -> None:
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/static/app.js">' in page.text
    assert client.get("/static/app.js").headers["content-security-policy"]
    assert client.get("/", headers={"Accept": "*/*"}).json()["status"] == "UP"
    assert client.get("/static/../dashboard_api.py").status_code == 404  # no escape from static/


def test_models_list_versions_with_their_plots_and_history(tmp_path: Path) -> None:
    project = classifier_project(tmp_path)
    folder = evaluation_folder(project, 2)
    (folder / "reliability.png").write_bytes(png(np.zeros((4, 4, 3), np.uint8)))
    (folder / "secret.png").write_bytes(b"not a plot")
    with TestClient(create_app(project, ServerSettings(token=TOKEN)), headers=AUTH) as client:
        body = client.get("/api/models").json()
        assert body["aliases"] == {"production": 1}
        assert {v["version"]: v["plots"] for v in body["versions"]} == {1: [], 2: ["reliability"]}
        assert [event["action"] for event in body["history"]][:2] == ["register", "register"]
        answer = client.get("/api/models/2/plots/reliability.png")
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        assert client.get("/api/models/2/plots/secret.png").status_code == 404  # not a plot name
        assert client.get("/api/models/1/plots/reliability.png").status_code == 404
        assert client.get("/api/models/9/plots/reliability.png").status_code == 404


def test_models_show_approval_decisions_and_the_auto_label_risk_coverage(tmp_path: Path) -> None:
    project = classifier_project(tmp_path, approved=(1,))
    curve = [{"coverage": 0.5, "threshold": 0.9, "error": 0.0, "bound": 0.05}]
    with project.open_catalog() as catalog:
        registry = ModelRegistry(catalog, project.root)
        registry.approve(2, "rui", "fails on night images", approved=False)
        registry.approve(2, "rui", "fine for staging", alias="staging")
        v2 = registry.get(2)
        name = model_version(v2.run_id, v2.weights_sha256)
        for accepted, status in ((7, "succeeded"), (9, "failed")):  # the newest finished run counts
            run = catalog.start_run("autolabel", {"target_accuracy": 0.95}, {"model_version": name})
            outputs = {"model_version": name, "accepted": accepted, "risk_coverage": curve}
            catalog.finish_run(run, outputs, error="boom" if status == "failed" else None)
    with TestClient(create_app(project, ServerSettings(token=TOKEN)), headers=AUTH) as client:
        versions = {v["version"]: v for v in client.get("/api/models").json()["versions"]}
    assert {alias: d["decision"] for alias, d in versions[2]["approvals"].items()} == {
        "production": "rejected",
        "staging": "approved",
    }
    assert versions[2]["approvals"]["production"]["reason"] == "fails on night images"
    assert versions[1]["approvals"]["production"]["actor"] == "rui"
    assert versions[1]["autolabel"] is None
    assert versions[2]["autolabel"]["accepted"] == 7 and versions[2]["autolabel"]["target_accuracy"] == 0.95
    assert versions[2]["autolabel"]["risk_coverage"] == curve


class _NoParams(BaseModel):
    pass


def _waits(ctx: StepContext) -> dict[str, Any]:
    raise StepWaiting("waiting for an approval")


WAITING = Pipeline(
    "review", "a step, then a wait", _NoParams, (Step("first", lambda ctx: {"n": 1}), Step("gate", _waits))
)


def test_runs_show_pipeline_steps_and_training_metrics(client: TestClient, project: Project) -> None:
    waiting = run_pipeline(project, WAITING, {})
    with project.open_catalog() as catalog:
        train = catalog.start_run("train", {"optim": {"epochs": 2}}, {}, parent_id=waiting.run_id)
        for epoch, accuracy in enumerate((0.5, 0.75)):
            catalog.log_metrics(
                train, epoch + 1, {"val_accuracy": accuracy, "train_loss": 1 - accuracy}, epoch=epoch
            )
    listed = client.get("/api/runs").json()["runs"]
    assert {(run["kind"], run["status"]) for run in listed} >= {("pipeline", "waiting"), ("train", "running")}
    assert next(run for run in listed if run["kind"] == "pipeline")["pipeline"] == "review"
    assert [run["kind"] for run in client.get("/api/runs", params={"kind": "train"}).json()["runs"]] == [
        "train"
    ]

    body = client.get(f"/api/runs/{waiting.run_id}").json()
    assert [(step["name"], step["status"]) for step in body["steps"]] == [
        ("first", "succeeded"),
        ("gate", "waiting"),
    ]
    assert [child["id"] for child in body["children"]] == [train]
    assert body["progress"] == {"done": 1, "total": 2, "unit": "steps"}
    trained = client.get(f"/api/runs/{train}").json()
    assert [point["value"] for point in trained["metrics"]["val_accuracy"]] == [0.5, 0.75]
    assert trained["progress"] == {"done": 2, "total": 2, "unit": "epochs"}
    assert client.get("/api/runs/nope").status_code == 404


def test_a_pipeline_runs_log_is_served_in_whole_lines(client: TestClient, project: Project) -> None:
    waiting = run_pipeline(project, WAITING, {}, log=lambda _line: None)
    whole = client.get(f"/api/runs/{waiting.run_id}/log").json()
    lines = whole["text"].splitlines()
    assert [re.sub(r"\d+\.\d s$", "N s", line[20:]) for line in lines] == [  # after the time stamp
        "[1/2] first",
        "    done in N s",
        "[2/2] gate",
        "    waiting: waiting for an approval",
    ]
    assert whole["next"] == whole["size"] == len(whole["text"].encode())
    after_first = len(lines[0]) + 1
    rest = client.get(f"/api/runs/{waiting.run_id}/log", params={"after": after_first}).json()
    assert rest["text"] == "\n".join(lines[1:]) + "\n"
    assert client.get(f"/api/runs/{waiting.run_id}/log", params={"after": whole["size"]}).json()["text"] == ""
    assert client.get("/api/runs/..%2F..%2Fetc/log").status_code == 404


def test_the_overview_shows_progress_and_the_latest_loops_curve(client: TestClient, project: Project) -> None:
    before = client.get("/api/overview").json()
    [today] = before["progress"]
    assert (today["human"], today["auto"]) == (12, 0) and before["loop"] is None
    rounds = [
        LoopRound(round=n, labels=labels, train_run="t", evaluate_run="e", headline=value, metrics={})
        for n, (labels, value) in enumerate(((20, 0.5), (40, 0.7), (60, 0.8)))
    ]
    report = LoopReport("loop-1", "margin", "detection", "map", pool=500, rounds=rounds, human_labels=80)
    report.auto_accepted = 300
    with project.open_catalog() as catalog:
        run = catalog.start_run("loop", {}, {})
        catalog.finish_run(run, report.to_dict())
    loop = client.get("/api/overview").json()["loop"]
    assert loop["run_id"] == run and loop["headline_metric"] == "map"
    assert loop["curve"] == [
        {"labels": 20, "value": 0.5},
        {"labels": 40, "value": 0.7},
        {"labels": 60, "value": 0.8},
    ]
    assert (loop["human_labels"], loop["auto_accepted"], loop["pool"]) == (80, 300, 500)
