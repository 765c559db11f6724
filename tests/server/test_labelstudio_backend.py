"""The Label Studio ML backend protocol on ``create_app``: setup, versions, predictions for every
task type in Label Studio's region formats (checked field by field and by loading them back with
visionloop's own Label Studio loader against the model's direct predictions), the label config
deciding control names and labels, per-task image failures, and webhook events recorded."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tiny_models import SCHEMAS
from tiny_served import served_project, write_photos
from visionloop.core.labels import ClassLabel, Label, ObjectLabels, label_from_dict
from visionloop.core.provenance import ProvenanceKind
from visionloop.formats import ls_brush
from visionloop.formats.labelstudio import labeling_config
from visionloop.formats.masks import polygons_to_mask, rle_decode
from visionloop.formats.registry import LoadOptions, get_format
from visionloop.project import Project
from visionloop.server import ServerSettings, create_app
from visionloop.server.labelstudio_backend import EVENT_KIND

TOKEN = "backend-token-0123456789abcdef"  # noqa: S105  # a fixture token
BASIC = {"Authorization": "Basic " + base64.b64encode(f"labelstudio:{TOKEN}".encode()).decode()}
TOLERANCE_PX = 1e-6


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, dict[str, str], Path, list[str]]:
    root = tmp_path_factory.mktemp("ls-backend")
    project, versions = served_project(root)
    files = root / "ls-files"
    names = write_photos(files / "photos", 3)
    return project, versions, files, [f"photos/{name}" for name in names]


@pytest.fixture(scope="module")
def client(served: tuple[Project, dict[str, str], Path, list[str]]) -> Iterator[TestClient]:
    project, _, files, _ = served
    settings = ServerSettings(token=TOKEN, model="v1", labelstudio_files=files, poll_seconds=0.2)
    with TestClient(create_app(project, settings), headers=BASIC) as client:
        yield client


def _tasks(names: list[str]) -> list[dict[str, Any]]:
    return [
        {"id": 100 + i, "data": {"image": f"/data/local-files/?d={name}"}} for i, name in enumerate(names)
    ]


def _predict(
    client: TestClient, config: str, tasks: list[dict[str, Any]], project: str = "7.1700000000"
) -> Any:
    answer = client.post("/predict", json={"tasks": tasks, "label_config": config, "project": project})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _direct(client: TestClient, version: str, files: Path, names: list[str]) -> list[Label]:
    """What ``/v1/predict`` answers for the same images from the same loaded model (untrained
    detectors have many near-tied proposals, so another instance can pick other boxes)."""
    uploads = [("images", (name, (files / name).read_bytes(), "image/png")) for name in names]
    answer = client.post(f"/v1/predict?model={version}", files=uploads)
    assert answer.status_code == 200, answer.text
    return [label_from_dict(p["label"]) for p in answer.json()["predictions"]]


def _load_back(
    results: list[dict[str, Any]], names: list[str], family: str, tmp_path: Path
) -> dict[str, Any]:
    """The predictions as visionloop's Label Studio loader reads them, by image name."""
    tasks = [
        {"data": {"image": f"/data/local-files/?d={name}"}, "predictions": [result]}
        for name, result in zip(names, results, strict=True)
    ]
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks))
    loaded = get_format("labelstudio").load(path, LoadOptions(schema=SCHEMAS[family]))
    assert loaded.rejections == [], loaded.rejections
    by_name = {}
    for image in loaded.labels.images:
        [annotation] = image.annotations
        assert annotation.provenance.kind is ProvenanceKind.MODEL
        by_name[image.name] = (annotation.label, annotation.provenance, image.width, image.height)
    return by_name


def test_health_and_versions(
    client: TestClient, served: tuple[Project, dict[str, str], Path, list[str]]
) -> None:
    for path in ("/", "/health"):
        assert client.get(path).json()["status"] == "UP"
    assert client.get("/versions").json() == {"versions": ["v5", "v4", "v3", "v2", "v1"]}


@pytest.mark.parametrize("family", ["classifier", "faster_rcnn", "mask_rcnn", "keypoint_rcnn", "heatmap"])
def test_predictions_for_every_task_type_load_back_as_the_model_predicted(
    client: TestClient, served: tuple[Project, dict[str, str], Path, list[str]], family: str, tmp_path: Path
) -> None:
    _, versions, files, names = served
    version = versions[family]
    config = labeling_config(SCHEMAS[family])
    setup = client.post(
        "/setup",
        json={"project": "7.1700000000", "schema": config, "extra_params": {"model": version}},
        headers=BASIC,
    )
    assert setup.status_code == 200, setup.text
    assert setup.json() == {"model_version": version}

    body = _predict(client, config, _tasks(names))
    assert body["model_version"] == version and "errors" not in body
    results = body["results"]
    assert len(results) == len(names)
    expected = _direct(client, version, files, names)
    for name, result, want in zip(names, results, expected, strict=True):
        width, height = Image.open(files / name).size
        assert result["model_version"] == version
        _check_regions(result["result"], width, height)
        if isinstance(want, ClassLabel):
            [region] = result["result"]
            assert region["type"] == "choices" and region["value"] == {"choices": [want.class_name]}
            assert region["score"] == pytest.approx(want.score) == pytest.approx(result["score"])
            continue
        assert isinstance(want, ObjectLabels) and want.scores is not None and len(want) > 0
        assert result["score"] == pytest.approx(float(np.mean(want.scores)))
        kinds = {region["type"] for region in result["result"]}
        wanted_kinds = {
            "faster_rcnn": {"rectanglelabels"},
            "mask_rcnn": {"brushlabels"},
            "keypoint_rcnn": {"rectanglelabels", "keypointlabels"},
            "heatmap": {"rectanglelabels", "keypointlabels"},
        }[family]
        assert kinds == wanted_kinds
        if want.masks is not None:  # brush RLE decodes to the model's masks, pixel for pixel
            brushes = [r for r in result["result"] if r["type"] == "brushlabels"]
            for region, mask in zip(brushes, want.masks, strict=True):
                assert mask is not None
                decoded = ls_brush.decode(region["value"]["rle"], height, width)
                np.testing.assert_array_equal(decoded, rle_decode(mask))
        if want.keypoints is not None:
            ids = {r["id"] for r in result["result"] if r["type"] == "rectanglelabels"}
            points = [r for r in result["result"] if r["type"] == "keypointlabels"]
            assert points and all(point["parentID"] in ids for point in points)
            assert len(points) == int((want.keypoints[:, :, 2] > 0).sum())

    loaded = _load_back(results, names, family, tmp_path)
    for name, want in zip(names, expected, strict=True):
        got, provenance, width, height = loaded[name]
        assert provenance.model_version == version
        assert (width, height) == Image.open(files / name).size
        _same_label(got, want)


def _check_regions(regions: list[dict[str, Any]], width: int, height: int) -> None:
    """Label Studio's conventions: ids, names, original size, percent coordinates, a score."""
    assert len({region["id"] for region in regions}) == len(regions)
    for region in regions:
        assert region["to_name"] == "image" and 0.0 <= region["score"] <= 1.0
        assert (region["original_width"], region["original_height"]) == (width, height)
        value = region["value"]
        if region["type"] in ("rectanglelabels", "keypointlabels"):
            assert 0.0 <= value["x"] <= 100.0 and 0.0 <= value["y"] <= 100.0
        if region["type"] == "rectanglelabels":
            assert (
                value["x"] + value["width"] <= 100.0 + 1e-9 and value["y"] + value["height"] <= 100.0 + 1e-9
            )
            assert value["rotation"] == 0


def _same_label(got: Label, want: Label) -> None:
    if isinstance(want, ClassLabel):
        assert isinstance(got, ClassLabel) and got.class_name == want.class_name
        assert got.score == pytest.approx(want.score)
        return
    assert isinstance(got, ObjectLabels) and isinstance(want, ObjectLabels)
    assert got.class_names == want.class_names
    assert got.scores is not None and want.scores is not None
    np.testing.assert_allclose(got.scores, want.scores, rtol=0, atol=1e-12)
    if want.masks is not None:  # a brush's box is its mask's extent
        assert got.masks is not None
        for have, mask in zip(got.masks, want.masks, strict=True):
            assert have is not None and mask is not None
            np.testing.assert_array_equal(rle_decode(have), rle_decode(mask))
    else:
        np.testing.assert_allclose(got.boxes, want.boxes, rtol=0, atol=TOLERANCE_PX)
    if want.keypoints is not None:
        assert got.keypoints is not None
        visible = want.keypoints[:, :, 2] > 0
        np.testing.assert_allclose(got.keypoints[visible], want.keypoints[visible], rtol=0, atol=TOLERANCE_PX)


def test_the_config_decides_control_names_labels_and_the_image_key(
    client: TestClient, served: tuple[Project, dict[str, str], Path, list[str]]
) -> None:
    """Custom tag names, a label claiming the model's class through predicted_values, keypoint
    labels by model_index, and the task's image under another key."""
    _, versions, _, names = served
    config = """<View>
      <Image name="photo" value="$picture"/>
      <RectangleLabels name="crates" toName="photo">
        <Label value="Crate" predicted_values="box"/>
      </RectangleLabels>
      <KeyPointLabels name="corners" toName="photo">
        <Label value="L" model_index="0"/><Label value="R" model_index="1"/>
      </KeyPointLabels>
    </View>"""
    tasks = [{"id": 1, "data": {"picture": f"/data/local-files/?d={names[0]}"}}]
    client.post(
        "/setup", json={"project": "8.1", "schema": config, "extra_params": {"model": "v4"}}, headers=BASIC
    )
    [result] = _predict(client, config, tasks, project="8.1")["results"]
    assert result["model_version"] == versions["keypoint_rcnn"]
    boxes = [r for r in result["result"] if r["type"] == "rectanglelabels"]
    points = [r for r in result["result"] if r["type"] == "keypointlabels"]
    assert boxes and all(r["from_name"] == "crates" and r["to_name"] == "photo" for r in boxes)
    assert {r["value"]["rectanglelabels"][0] for r in boxes} == {"Crate"}
    assert {r["from_name"] for r in points} == {"corners"}
    assert {r["value"]["keypointlabels"][0] for r in points} <= {"L", "R"}  # "top" is not in the config
    assert len(points) == 2 * len(boxes)


def test_a_polygon_only_config_gets_the_masks_as_polygons(
    client: TestClient, served: tuple[Project, dict[str, str], Path, list[str]]
) -> None:
    """Each mask as the outline of its largest region: nothing outside the mask (holes aside),
    and about as large as its largest region (corner-touching pixels are counted apart)."""
    ndimage = pytest.importorskip("scipy.ndimage")
    _, _, files, names = served
    config = labeling_config(SCHEMAS["mask_rcnn"]).replace(
        '<BrushLabels name="brush"', '<Ignored name="brush"'
    )
    config = config.replace("</BrushLabels>", "</Ignored>")
    client.post(
        "/setup", json={"project": "9.1", "schema": config, "extra_params": {"model": "v3"}}, headers=BASIC
    )
    results = _predict(client, config, _tasks(names[:1]), project="9.1")["results"]
    [want] = _direct(client, "v3", files, names[:1])
    assert isinstance(want, ObjectLabels) and want.masks is not None
    regions = results[0]["result"]
    assert {r["type"] for r in regions} == {"polygonlabels"} and len(regions) == len(want)
    width, height = Image.open(files / names[0]).size
    for region, mask in zip(regions, want.masks, strict=True):
        assert mask is not None
        ring = np.array(region["value"]["points"]) / 100 * [width, height]
        painted = polygons_to_mask([np.round(ring, 9)], height, width)
        truth = rle_decode(mask)
        assert not (painted & ~ndimage.binary_fill_holes(truth)).any()
        components, count = ndimage.label(truth)
        largest = max(int(ndimage.binary_fill_holes(components == n).sum()) for n in range(1, count + 1))
        assert painted.sum() >= 0.9 * largest


@pytest.mark.parametrize(
    ("family", "config", "says"),
    [
        ("faster_rcnn", labeling_config(SCHEMAS["classifier"]), "RectangleLabels"),
        ("mask_rcnn", labeling_config(SCHEMAS["faster_rcnn"]), "BrushLabels or PolygonLabels"),
        ("keypoint_rcnn", labeling_config(SCHEMAS["faster_rcnn"]), "KeyPointLabels"),
        ("classifier", labeling_config(SCHEMAS["mask_rcnn"]), "Choices"),
        (
            "classifier",
            '<View><Image name="i" value="$i"/><Choices name="c" toName="i">'
            '<Choice value="zebra"/></Choices></View>',
            "none of the model's classes (cat, dog, fox)",
        ),
        ("classifier", "<View><Image", "not valid XML"),
    ],
)
def test_setup_refuses_a_config_the_model_cannot_fill(
    client: TestClient,
    served: tuple[Project, dict[str, str], Path, list[str]],
    family: str,
    config: str,
    says: str,
) -> None:
    _, versions, _, names = served
    model = {"model": versions[family]}
    fitting = {"project": "10.1", "schema": labeling_config(SCHEMAS[family]), "extra_params": model}
    assert client.post("/setup", json=fitting, headers=BASIC).status_code == 200
    answer = client.post("/setup", json={**fitting, "schema": config}, headers=BASIC)
    assert answer.status_code == 422 and says in answer.json()["detail"], answer.text
    predicted = client.post(  # the project keeps the model its last good setup chose
        "/predict", json={"tasks": _tasks(names[:1]), "label_config": config, "project": "10.1"}
    )
    assert predicted.status_code == 422 and says in predicted.json()["detail"]


def test_choosing_a_model_needs_the_token_and_sticks_to_the_project(
    client: TestClient, served: tuple[Project, dict[str, str], Path, list[str]]
) -> None:
    _, _, _, names = served
    config = labeling_config(SCHEMAS["faster_rcnn"])
    body = {"project": "11.1", "schema": config, "extra_params": {"model": "v2"}}
    bare = TestClient(client.app)
    assert bare.post("/setup", json=body).status_code == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"labelstudio:wrong-token-000000").decode()}
    assert bare.post("/setup", json=body, headers=wrong).status_code == 401
    assert client.post("/setup", json=body, headers=BASIC).json() == {"model_version": "v2"}
    # Label Studio calls /setup before each batch with the same extra params.
    assert client.post("/setup", json=body).json() == {"model_version": "v2"}
    assert _predict(client, config, _tasks(names[:1]), project="11.1")["model_version"] == "v2"
    # Another project gets the server's default model, which this config does not suit.
    other = client.post(
        "/predict", json={"tasks": _tasks(names[:1]), "label_config": config, "project": "12.1"}
    )
    assert other.status_code == 422 and "Choices" in other.json()["detail"]
    # With the token and no model, the project goes back to the default.
    cleared = client.post(
        "/setup", json={"project": "11.1", "schema": labeling_config(SCHEMAS["classifier"])}, headers=BASIC
    )
    assert cleared.json() == {"model_version": "v1"}


def test_a_task_whose_image_cannot_be_read_gets_no_prediction(
    client: TestClient, served: tuple[Project, dict[str, str], Path, list[str]]
) -> None:
    _, _, files, names = served
    inline = "data:image/png;base64," + base64.b64encode((files / names[0]).read_bytes()).decode()
    tasks = [
        {"id": 1, "data": {"image": f"/data/local-files/?d={names[0]}"}},
        {"id": 2, "data": {"image": "/data/local-files/?d=../outside.png"}},
        {"id": 3, "data": {"image": "http://169.254.169.254/latest/meta-data"}},
        {"id": 4, "data": {"image": "file:///etc/passwd"}},
        {
            "id": 5,
            "data": {"image": f"/data/local-files/?d={names[0]}x"},
        },  # no such file, no Label Studio URL
        {"id": 6, "data": {"image": inline}},
        {"id": 7, "data": {}},
    ]
    body = _predict(client, labeling_config(SCHEMAS["classifier"]), tasks, project="13.1")
    results = body["results"]
    assert [bool(r) for r in results] == [True, False, False, False, False, True, False]
    assert [r["value"] for r in results[0]["result"]] == [r["value"] for r in results[5]["result"]]
    reasons = {error["task"]: error["detail"] for error in body["errors"]}
    assert sorted(reasons) == [2, 3, 4, 5, 7]
    assert "'..'" in reasons[2] and "--image-host" in reasons[3] and "'file'" in reasons[4]
    assert "--labelstudio-url" in reasons[5] and "data.image" in reasons[7]
    everything_bad = client.post(
        "/predict",
        json={"tasks": tasks[1:2], "label_config": labeling_config(SCHEMAS["classifier"]), "project": "13.1"},
    )
    assert (
        everything_bad.status_code == 422 and "no task image could be read" in everything_bad.json()["detail"]
    )


def test_a_link_out_of_the_document_root_is_refused(
    client: TestClient, served: tuple[Project, dict[str, str], Path, list[str]], tmp_path: Path
) -> None:
    _, _, files, names = served
    outside = tmp_path / "secret.png"
    outside.write_bytes((files / names[0]).read_bytes())
    link = files / "photos" / "link.png"
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    tasks = [{"id": 1, "data": {"image": "/data/local-files/?d=photos/link.png"}}]
    answer = client.post(
        "/predict", json={"tasks": tasks, "label_config": labeling_config(SCHEMAS["classifier"])}
    )
    assert answer.status_code == 422 and "outside the local-files document root" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"label_config": "<View/>"}, '"tasks"'),
        ({"tasks": [], "label_config": "<View/>"}, '"tasks"'),
        ({"tasks": [{"data": {}}]}, '"label_config"'),
    ],
)
def test_bad_predict_bodies_get_a_422(client: TestClient, body: dict[str, Any], says: str) -> None:
    answer = client.post("/predict", json=body)
    assert answer.status_code == 422 and says in answer.json()["detail"]


def test_webhook_events_are_recorded_and_training_is_only_requested(
    client: TestClient, served: tuple[Project, dict[str, str], Path, list[str]]
) -> None:
    project = served[0]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    event = {"action": "START_TRAINING", "project": {"id": 14, "title": "x"}}
    assert TestClient(client.app).post("/webhook", json=event).status_code == 401
    started = client.post("/webhook", json=event, headers=BASIC)
    assert started.status_code == 201 and started.json()["training_requested"] is True
    created = client.post(
        "/webhook",
        json={
            "action": "ANNOTATION_CREATED",
            "project": {"id": 14},
            "task": {"id": 5},
            "annotation": {"id": 9},
        },
        headers=auth,
    )
    assert created.status_code == 201 and created.json()["training_requested"] is False
    ignored = client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 14}}, headers=auth)
    assert ignored.status_code == 200 and ignored.json() == {"status": "Unknown event"}
    with project.open_catalog() as catalog:
        runs = {run.id: run for run in catalog.list_runs(kind=EVENT_KIND)}
    training = runs[started.json()["run_id"]]
    assert training.config["action"] == "START_TRAINING" and training.config["labelstudio_project"] == 14
    assert training.outputs == {"training_requested": True} and training.status == "succeeded"
    annotation = runs[created.json()["run_id"]]
    assert annotation.inputs == {"task": 5, "annotation": 9}
    assert len(runs) == 2
