"""Push against a real Label Studio: bulk tasks with predictions, no duplicates after a crash at
any point, new model versions as new predictions, S3 images as presigned URLs, retries."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import delete
from typer.testing import CliRunner

from ls_helpers import http, ls_project, pool, predict, tasks, tasks_by_item
from servers import LabelStudio, make_bucket
from visionloop.catalog.tables import labeling_tasks
from visionloop.core.errors import ConfigError, UnsafePathError
from visionloop.core.labels import ClassLabel
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.ingest import IngestOptions, ingest
from visionloop.labeling.labelstudio import LabelStudioClient, LabelStudioError, push_items
from visionloop.labeling.labelstudio import push as push_module
from visionloop.project import Project
from visionloop.project.config import ProjectConfig, S3Options

pytestmark = pytest.mark.labelstudio


def test_push_is_bulk_idempotent_and_adds_new_model_versions_as_predictions(
    label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = ls_project(label_studio, TaskType.CLASSIFICATION, monkeypatch)
    items = pool(project)
    predict(project, items, "v1")
    first = push_items(project, items)
    assert (first.created, first.already_there, first.without_prediction) == (len(items), 0, 0)
    found = tasks(label_studio, first.labelstudio_project)
    assert sorted(t["data"]["visionloop_item"] for t in found) == items
    [prediction] = found[0]["predictions"]
    assert prediction["model_version"] == "v1" and prediction["score"] == pytest.approx(0.6)
    assert prediction["result"][0]["value"]["choices"] == ["left"]
    with http(label_studio) as client:  # Label Studio serves the local image the task names
        assert client.get(found[0]["data"]["image"]).status_code == 200

    again = push_items(project, items)
    assert (again.created, again.already_there, again.predictions_added) == (0, len(items), 0)

    predict(project, items[:3], "v2")
    newer = push_items(project, items)
    assert (newer.created, newer.predictions_added, newer.already_there) == (0, 3, len(items) - 3)
    by_item = tasks_by_item(label_studio, first.labelstudio_project)
    assert len(by_item) == len(items)
    assert sorted(p["model_version"] for p in by_item[items[0]]["predictions"]) == ["v1", "v2"]
    assert [p["model_version"] for p in by_item[items[4]]["predictions"]] == ["v1"]
    assert push_items(project, items).predictions_added == 0  # v2 is recorded as sent


def test_a_crash_between_import_and_recording_never_duplicates_tasks(
    label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = ls_project(label_studio, TaskType.CLASSIFICATION, monkeypatch)
    items = pool(project)  # 6 items, chunks of 4
    predict(project, items[:5], "v1")  # one item has no prediction: pushed without one

    real_record = push_module.record_tasks
    calls = 0

    def dies_after_first_chunk(*args: object, **kwargs: object) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:  # Label Studio took the second chunk; the process dies before recording it
            raise KeyboardInterrupt("killed")
        return real_record(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(push_module, "record_tasks", dies_after_first_chunk)
    with pytest.raises(KeyboardInterrupt):
        push_items(project, items)
    monkeypatch.setattr(push_module, "record_tasks", real_record)

    resumed = push_items(project, items)
    assert (resumed.created, resumed.adopted, resumed.already_there) == (0, 2, len(items))
    assert resumed.without_prediction == 0
    found = tasks(label_studio, resumed.labelstudio_project)
    assert sorted(t["data"]["visionloop_item"] for t in found) == items
    assert sum(1 for t in found if not t["predictions"]) == 1

    with project.open_catalog() as catalog, catalog.engine.begin() as connection:
        connection.execute(delete(labeling_tasks))  # the catalog lost every record: adopt them all
    adopted = push_items(project, items)
    assert (adopted.created, adopted.adopted) == (0, len(items))
    assert len(tasks(label_studio, resumed.labelstudio_project)) == len(items)


@pytest.mark.s3
def test_s3_images_go_as_presigned_urls_that_label_studio_users_can_open(
    tmp_path: Path, label_studio: LabelStudio, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    bucket = f"vl-push-{uuid.uuid4().hex[:8]}"
    make_bucket(s3_endpoint, bucket)
    blobs = {}
    for index in range(3):
        out = io.BytesIO()
        Image.fromarray(np.full((16, 16, 3), index * 60, np.uint8)).save(out, format="PNG")
        blobs[f"{bucket}/images/{index}.png"] = out.getvalue()
    config = ProjectConfig(
        name="s3push",
        labels=LabelSchema(task=TaskType.CLASSIFICATION, classes=["left", "right"]),
        s3=S3Options(endpoint_url=s3_endpoint),
    )
    config.labelstudio.url, config.labelstudio.project_title = label_studio.url, f"s3 {bucket}"
    config.labelstudio.presign_expiry_s = 3600
    project = Project.create(tmp_path / "project", config)
    project.filesystem_for(f"s3://{bucket}").fs.pipe(blobs)
    with project.open_catalog() as catalog:
        ingest(catalog, project.filesystem_for(f"s3://{bucket}/images"), IngestOptions())
        items = sorted(item.id for item in catalog.iter_items())
        catalog.add_predictions("v1", [(item, ClassLabel("right", score=0.9), 0.9) for item in items])
    report = push_items(project, items)
    assert report.created == 3
    for task in tasks(label_studio, report.labelstudio_project):
        url = task["data"]["image"]
        assert url.startswith(s3_endpoint) and "Signature" in url and "Expires=" in url
        with httpx.Client(trust_env=False) as plain:  # no credentials: the signature alone opens it
            answer = plain.get(url)
        assert answer.status_code == 200 and answer.content in blobs.values()


def test_local_images_outside_the_document_root_are_refused(
    tmp_path: Path, label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tiny_projects import make_project

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=1, unlabeled=1)
    project.config.labelstudio.url = label_studio.url
    project.config.labelstudio.project_title = f"outside {tmp_path.name}"
    with pytest.raises(ConfigError, match="local_files_root"):
        push_items(project, pool(project))
    project.config.labelstudio.local_files_root = str(label_studio.files)
    with pytest.raises(UnsafePathError, match=r"item \d+ .* not in a folder under"):
        push_items(project, pool(project))
    monkeypatch.delenv("LABEL_STUDIO_API_KEY")
    with pytest.raises(ConfigError, match="LABEL_STUDIO_API_KEY"):
        push_items(project, pool(project))


def test_the_client_retries_idempotent_requests_only_and_pages_until_404() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.url.path == "/api/tasks":
            page = int(request.url.params["page"])
            if page == 3:
                return httpx.Response(404, json={"detail": "Invalid page."})
            return httpx.Response(200, json={"tasks": [{"id": i} for i in range(1000)], "total": 2000})
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        if len(calls) == 2:
            return httpx.Response(429, json={"detail": "slow down"})
        if len(calls) == 3:
            return httpx.Response(503, json={"detail": "busy"})
        return httpx.Response(200, json={"ok": True})

    client = LabelStudioClient("http://ls.invalid", "t", backoff_s=0, transport=httpx.MockTransport(handler))
    assert client.get("/api/projects") == {"ok": True} and calls == ["GET"] * 4
    calls.clear()
    calls.append("skip the connection error")
    with pytest.raises(
        LabelStudioError, match=r"POST http://ls.invalid/api/projects/1/import: HTTP 429.*slow down"
    ):
        client.post("/api/projects/1/import", [])
    assert calls[1:] == ["POST"]  # a plain POST is never repeated
    assert len(list(client.tasks(1))) == 2000

    def always_down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway")

    down = LabelStudioClient(
        "http://ls.invalid", "t", retries=2, backoff_s=0, transport=httpx.MockTransport(always_down)
    )
    with pytest.raises(LabelStudioError, match="HTTP 502: bad gateway"):
        down.get("/api/projects")


def test_the_commands_push_pull_and_sync(label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch) -> None:
    from visionloop.cli.app import app
    from visionloop.project.config import dump_config

    project = ls_project(label_studio, TaskType.CLASSIFICATION, monkeypatch)
    (project.root / "visionloop.yaml").write_text(dump_config(project.config))
    assert "LABEL_STUDIO_API_KEY" not in (project.root / "visionloop.yaml").read_text()
    items = pool(project)
    predict(project, items, "v1")
    runner = CliRunner()
    base = ["-p", str(project.root), "labelstudio"]
    pushed = runner.invoke(app, [*base, "push", "--unlabelled", "--json"])
    assert pushed.exit_code == 0, pushed.output
    assert json.loads(pushed.stdout)["created"] == len(items)
    assert runner.invoke(app, [*base, "push", "--run", "nope", "--unlabelled"]).exit_code != 0
    assert runner.invoke(app, [*base, "push"]).exit_code != 0  # no select run yet: says so
    pulled = runner.invoke(app, [*base, "pull", "--json"])
    assert pulled.exit_code == 0 and json.loads(pulled.stdout)["imported"] == 0
    synced = runner.invoke(app, [*base, "sync", "--json"])
    assert synced.exit_code == 0, synced.output
    decision = json.loads(synced.stdout)["decision"]
    assert decision["due"] is False and "waiting for 100" in decision["reason"]


def test_the_labeling_config_is_sent_only_when_the_schema_changed(
    label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = ls_project(label_studio, TaskType.CLASSIFICATION, monkeypatch)
    sent: list[str] = []

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(f"{request.method} {request.url.path}")
            return super().handle_request(request)

    def client() -> LabelStudioClient:
        return LabelStudioClient(label_studio.url, label_studio.token, transport=Recording())

    first = push_items(project, [], client=client())
    assert any(line == "POST /api/projects" for line in sent)
    sent.clear()
    push_items(project, [], client=client())
    assert not any(line.startswith(("PATCH", "POST")) for line in sent), sent
    with project.open_catalog() as catalog:
        catalog.set_schema(LabelSchema(task=TaskType.CLASSIFICATION, classes=["left", "right", "up"]))
    push_items(project, [], client=client())
    assert f"PATCH /api/projects/{first.labelstudio_project}" in sent
    with http(label_studio) as plain:
        config = plain.get(f"/api/projects/{first.labelstudio_project}").json()["label_config"]
    assert '<Choice value="up"/>' in config
