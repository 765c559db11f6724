"""Acceptance: a REAL Label Studio connected to ``visionloop serve`` (a real uvicorn process) as its
ML backend retrieves predictions for tasks of every task type and shows them.

One Label Studio (``servers.label_studio_server``, started once per session) and one
``visionloop serve`` process serving a registry with a tiny model per task type (classifier,
Faster R-CNN, Mask R-CNN, Keypoint R-CNN; untrained heads, so the regions are arbitrary but real).
For each task type a Label Studio project is created with ``labeling_config(schema)``, PNG images
are written under Label Studio's local-files document root and connected as local storage, tasks
point at them (``/data/local-files/?d=...``), and the backend is connected with ``POST /api/ml``
using Basic auth (the server's token as password; Label Studio sends it on every call to the
backend) and, except for classification (the server's default model), ``extra_params.model``.
``visionloop serve`` downloads the images from Label Studio with a Label Studio API token.

Then, through Label Studio's API only:

- the backend is connected (state ``CO``) with the served version as its ``model_version``;
- the Data Manager's "Retrieve Predictions" action (``POST /api/dm/actions?id=
  retrieve_tasks_predictions``) stores one prediction per task (``GET /api/predictions?task=``)
  with that version, a score, and regions of the task type's kinds in the project's own control
  tags, at the images' original sizes (brush masks decode to the image size);
- the labeling stream (``GET /api/projects/<id>/next``, what the labeling UI opens) carries
  those predictions, and the Data Manager lists their version, and their score once the project
  selects the served version (connecting a backend selects the backend's title instead);
- "Start Training" (``POST /api/ml/<id>/train``) reaches ``/webhook`` with the token and is
  recorded in the visionloop catalog as a training request; after the ML backend's webhook is
  given the token as a header, a new annotation is recorded too.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image

from servers import LabelStudio, visionloop_server
from tiny_models import SCHEMAS
from tiny_served import served_project, write_photos
from visionloop.formats import ls_brush
from visionloop.formats.labelstudio import labeling_config
from visionloop.project import Project
from visionloop.registry import ModelRegistry
from visionloop.server.labelstudio_backend import EVENT_KIND

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio]

TOKEN = "ml-backend-token-0123456789abcdef"  # noqa: S105  # a fixture token
#: Task type -> (model family, region kinds its predictions hold with the generated config).
CASES = {
    "classification": ("classifier", {"choices"}),
    "detection": ("faster_rcnn", {"rectanglelabels"}),
    "segmentation": ("mask_rcnn", {"brushlabels"}),
    "keypoints": ("keypoint_rcnn", {"rectanglelabels", "keypointlabels"}),
}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _api(server: LabelStudio, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{server.url}{path}", data=data, method=method)  # noqa: S310 - our URL
    request.add_header("Authorization", f"Token {server.token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=120) as response:
            payload = response.read()
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{method} {path} -> {error.code}: {error.read()[:3000]!r}") from error
    return json.loads(payload) if payload else None


@dataclass
class Backend:
    url: str
    project: Project
    versions: dict[str, str]
    log: Path


@pytest.fixture(scope="module")
def backend(label_studio: LabelStudio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    root = tmp_path_factory.mktemp("ml-backend")
    project, versions = served_project(root)
    with project.open_catalog() as catalog:  # the server's default model: an alias, not a number
        ModelRegistry(catalog, project.root).promote(versions["classifier"], "candidate", "tester")
    log = root / "serve.log"
    extra = (
        "--model",
        "candidate",
        "--labelstudio-url",
        label_studio.url,
        "--labelstudio-token",
        label_studio.token,
    )
    with visionloop_server(project.root, TOKEN, log, *extra) as url:
        yield Backend(url, project, versions, log)


def _project_with_tasks(
    server: LabelStudio, task: str, config: str
) -> tuple[int, list[int], dict[int, tuple[int, int]]]:
    """A Label Studio project with local-storage images; its id, task ids and image sizes."""
    folder = server.files / "ml-backend" / task
    names = write_photos(folder, 3)
    project = _api(
        server, "POST", "/api/projects", {"title": f"visionloop backend {task}", "label_config": config}
    )
    pid: int = project["id"]
    _api(
        server,
        "POST",
        "/api/storages/localfiles",
        {"project": pid, "path": str(folder), "use_blob_urls": False},
    )
    tasks = [
        {"data": {"image": f"/data/local-files/?d={quote(f'ml-backend/{task}/{name}')}"}} for name in names
    ]
    imported = _api(server, "POST", f"/api/projects/{pid}/import", tasks)
    assert imported["task_count"] == len(names), imported
    listed = _api(server, "GET", f"/api/tasks?project={pid}&fields=all")
    ids = sorted(t["id"] for t in listed["tasks"])
    sizes = {}
    for task_id, name in zip(ids, names, strict=True):
        with Image.open(folder / name) as image:
            sizes[task_id] = image.size
    return pid, ids, sizes


def _connect(server: LabelStudio, backend: Backend, pid: int, model: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "url": backend.url,
        "project": pid,
        "title": "visionloop",
        "auth_method": "BASIC_AUTH",
        "basic_auth_user": "labelstudio",
        "basic_auth_pass": TOKEN,
    }
    if model is not None:
        body["extra_params"] = {"model": model}
    connected: dict[str, Any] = _api(server, "POST", "/api/ml", body)
    return connected


@pytest.mark.parametrize("task", list(CASES))
def test_label_studio_retrieves_and_shows_predictions_from_visionloop_serve(
    label_studio: LabelStudio, backend: Backend, task: str
) -> None:
    family, kinds = CASES[task]
    version = backend.versions[family]
    schema = SCHEMAS[family]
    pid, ids, sizes = _project_with_tasks(label_studio, task, labeling_config(schema))

    connected = _connect(label_studio, backend, pid, None if family == "classifier" else version)
    assert connected["state"] == "CO" and connected["model_version"] == version, connected
    assert connected["basic_auth_pass_is_set"] is True

    started = time.monotonic()
    done = _api(
        label_studio,
        "POST",
        f"/api/dm/actions?id=retrieve_tasks_predictions&project={pid}",
        {"selectedItems": {"all": True, "excluded": []}},
    )
    assert done["processed_items"] == len(ids), done
    took = time.monotonic() - started

    for task_id in ids:
        [prediction] = _api(label_studio, "GET", f"/api/predictions?task={task_id}")
        _check_prediction(prediction, version, kinds, sizes[task_id], f"{task} task {task_id}, {took:.1f} s")

    # The labeling UI opens tasks through the label stream: it carries the predictions.
    shown = _api(label_studio, "GET", f"/api/projects/{pid}/next")
    assert shown["id"] in ids
    [prediction] = shown["predictions"]
    _check_prediction(prediction, version, kinds, sizes[shown["id"]], f"{task} label stream")
    # The Data Manager scores only the version the project selects (connecting the backend
    # selected its title): a user picks the served version, as the README says.
    _api(label_studio, "PATCH", f"/api/projects/{pid}", {"model_version": version})
    listed = _api(label_studio, "GET", f"/api/tasks?project={pid}&fields=all")["tasks"]
    assert {t["total_predictions"] for t in listed} == {1}
    assert all(version in str(t["predictions_model_versions"]) for t in listed)
    for listed_task in listed:
        [stored] = _api(label_studio, "GET", f"/api/predictions?task={listed_task['id']}")
        assert listed_task["predictions_score"] == pytest.approx(stored["score"])
    shown_again = _api(label_studio, "GET", f"/api/tasks/{ids[0]}")
    assert [p["model_version"] for p in shown_again["predictions"]] == [version]


def _check_prediction(
    prediction: dict[str, Any], version: str, kinds: set[str], size: tuple[int, int], where: str
) -> None:
    assert prediction["model_version"] == version, where
    assert prediction["score"] is not None and 0.0 <= prediction["score"] <= 1.0, where
    regions = prediction["result"]
    assert regions and {region["type"] for region in regions} == kinds, where
    width, height = size
    names = {"choices": "choice", "rectanglelabels": "label", "brushlabels": "brush", "keypointlabels": "kp"}
    for region in regions:
        assert region["from_name"] == names[region["type"]] and region["to_name"] == "image", where
        assert (region["original_width"], region["original_height"]) == (width, height), where
        assert 0.0 <= region["score"] <= 1.0, where
        if region["type"] == "brushlabels":
            mask = ls_brush.decode(region["value"]["rle"], height, width)
            assert mask.any(), where
        if region["type"] == "keypointlabels":
            assert region["parentID"] in {r["id"] for r in regions if r["type"] == "rectanglelabels"}, where


def _events(project: Project) -> list[Any]:
    with project.open_catalog() as catalog:
        return catalog.list_runs(kind=EVENT_KIND)


def _wait_for_event(project: Project, action: str, pid: int) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for run in _events(project):
            if run.config["action"] == action and run.config["labelstudio_project"] == pid:
                return run
        time.sleep(0.2)
    raise AssertionError(f"no {action} event recorded for Label Studio project {pid}")


def test_training_requests_and_annotations_reach_the_webhook(
    label_studio: LabelStudio, backend: Backend
) -> None:
    version = backend.versions["faster_rcnn"]
    pid, ids, _ = _project_with_tasks(label_studio, "webhook", labeling_config(SCHEMAS["faster_rcnn"]))
    connected = _connect(label_studio, backend, pid, version)

    _api(label_studio, "POST", f"/api/ml/{connected['id']}/train", {})
    training = _wait_for_event(backend.project, "START_TRAINING", pid)
    assert training.outputs == {"training_requested": True} and training.config["model"] == version

    # Label Studio made a webhook for the backend; it sends no token until given one.
    [hook] = [
        h for h in _api(label_studio, "GET", f"/api/webhooks/?project={pid}") if h["url"].endswith("/webhook")
    ]
    _api(
        label_studio,
        "PATCH",
        f"/api/webhooks/{hook['id']}/",
        {"headers": {"Authorization": f"Bearer {TOKEN}"}},
    )
    box = {"x": 10, "y": 10, "width": 20, "height": 20, "rotation": 0, "rectanglelabels": ["box"]}
    region = {"from_name": "label", "to_name": "image", "type": "rectanglelabels", "value": box}
    annotation = _api(label_studio, "POST", f"/api/tasks/{ids[0]}/annotations/", {"result": [region]})
    recorded = _wait_for_event(backend.project, "ANNOTATION_CREATED", pid)
    assert recorded.inputs["annotation"] == annotation["id"] and recorded.inputs["task"] == ids[0]
    assert recorded.outputs == {"training_requested": False}
