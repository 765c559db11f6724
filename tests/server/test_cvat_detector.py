"""``POST /v1/cvat/detector`` answers CVAT's serverless detector list for every task type: tags,
rectangles, masks in CVAT's crop encoding (decoded back to the model's masks here) with their
polygon, and skeletons of named points; the threshold filters objects; bad bodies get a 4xx."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tiny_models import SCHEMAS
from tiny_served import served_project, write_photos
from visionloop.core.labels import ClassLabel, ObjectLabels, label_from_dict
from visionloop.formats.masks import rle_decode
from visionloop.server import ServerSettings, create_app

TOKEN = "cvat-token-0123456789abcdef"  # noqa: S105  # a fixture token


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str], bytes]]:
    root = tmp_path_factory.mktemp("cvat")
    project, versions = served_project(root)
    [name] = write_photos(root / "photos", 1)
    image = (root / "photos" / name).read_bytes()
    app = create_app(project, ServerSettings(token=TOKEN, model="v1"))
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client, versions, image


def _core(client: TestClient, version: str, image: bytes) -> Any:
    answer = client.post(f"/v1/predict?model={version}", content=image, headers={"Content-Type": "image/png"})
    assert answer.status_code == 200, answer.text
    [prediction] = answer.json()["predictions"]
    return label_from_dict(prediction["label"]), prediction["width"], prediction["height"]


def _detect(
    client: TestClient, image: bytes, version: str, threshold: float | None = 0.0
) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"image": base64.b64encode(image).decode()}
    if threshold is not None:
        body["threshold"] = threshold
    answer = client.post(f"/v1/cvat/detector?model={version}", json=body)
    assert answer.status_code == 200, answer.text
    shapes: list[dict[str, Any]] = answer.json()
    return shapes


@pytest.mark.parametrize("family", ["classifier", "faster_rcnn", "mask_rcnn", "keypoint_rcnn", "heatmap"])
def test_every_task_type_in_cvat_shapes(setup: tuple[TestClient, dict[str, str], bytes], family: str) -> None:
    client, versions, image = setup
    version = versions[family]
    shapes = _detect(client, image, version)
    label, width, height = _core(client, version, image)
    if isinstance(label, ClassLabel):
        assert shapes == [
            {"confidence": str(round(label.score, 6)), "label": label.class_name, "type": "tag"}
        ]
        return
    assert isinstance(label, ObjectLabels) and label.scores is not None
    assert len(shapes) == len(label) > 0
    for i, shape in enumerate(shapes):
        assert shape["label"] == label.class_names[i]
        assert float(shape["confidence"]) == pytest.approx(label.scores[i], abs=1e-6)
        if family == "faster_rcnn":
            assert shape["type"] == "rectangle"
            np.testing.assert_allclose(shape["points"], label.boxes[i], atol=1e-9)
        elif family == "mask_rcnn":
            assert label.masks is not None and label.masks[i] is not None
            assert shape["type"] == "mask"
            _check_mask(shape, rle_decode(label.masks[i]), width, height)
        else:
            assert label.keypoints is not None
            assert shape["type"] == "skeleton"
            names = SCHEMAS[family].keypoints
            assert [e["label"] for e in shape["elements"]] == names
            for element, (x, y, visibility) in zip(shape["elements"], label.keypoints[i], strict=True):
                assert element["type"] == "points" and element["outside"] is bool(visibility == 0)
                np.testing.assert_allclose(element["points"], [x, y], atol=1e-9)


def _check_mask(shape: dict[str, Any], mask: np.ndarray, width: int, height: int) -> None:
    """CVAT's encoding: the 0/1 pixels inside the inclusive extent, row by row, then the extent."""
    *pixels, xtl, ytl, xbr, ybr = shape["mask"]
    crop = np.array(pixels, dtype=bool).reshape(ybr - ytl + 1, xbr - xtl + 1)
    rebuilt = np.zeros((height, width), dtype=bool)
    rebuilt[ytl : ybr + 1, xtl : xbr + 1] = crop
    np.testing.assert_array_equal(rebuilt, mask)
    polygon = np.array(shape["points"]).reshape(-1, 2)
    assert len(polygon) >= 4 and np.all(polygon >= 0) and np.all(polygon <= [width, height])


def test_the_threshold_filters_objects(setup: tuple[TestClient, dict[str, str], bytes]) -> None:
    client, versions, image = setup
    everything = _detect(client, image, versions["faster_rcnn"], threshold=0.0)
    cut = sorted(float(shape["confidence"]) for shape in everything)[len(everything) // 2]
    kept = _detect(client, image, versions["faster_rcnn"], threshold=cut)
    assert kept == [shape for shape in everything if float(shape["confidence"]) >= cut]
    assert _detect(client, image, versions["faster_rcnn"], threshold=1.0) == []
    default = _detect(client, image, versions["faster_rcnn"], threshold=None)  # CVAT's 0.5
    assert default == [shape for shape in everything if float(shape["confidence"]) >= 0.5]


def test_the_default_model_answers_without_a_token(setup: tuple[TestClient, dict[str, str], bytes]) -> None:
    client, _, image = setup
    answer = client.post("/v1/cvat/detector", json={"image": base64.b64encode(image).decode()})
    assert answer.status_code == 200 and answer.json()[0]["type"] == "tag"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({}, 422, '"image"'),
        ({"image": "%%%"}, 422, "base64"),
        ({"image": base64.b64encode(b"not an image").decode()}, 422, "cannot decode"),
        ({"image": "", "threshold": 2}, 422, "threshold"),
        ({"image": "", "threshold": "high"}, 422, "threshold"),
        ({"image": "", "model": "nightly"}, 422, "empty image"),
    ],
)
def test_bad_bodies_get_a_4xx(
    setup: tuple[TestClient, dict[str, str], bytes], body: dict[str, Any], status: int, says: str
) -> None:
    client = setup[0]
    answer = client.post("/v1/cvat/detector", json=body)
    assert answer.status_code == status and says in answer.json()["detail"], answer.text


def test_an_unknown_model_is_a_404(setup: tuple[TestClient, dict[str, str], bytes]) -> None:
    client, _, image = setup
    answer = client.post("/v1/cvat/detector?model=nightly", json={"image": base64.b64encode(image).decode()})
    assert answer.status_code == 404 and "nightly" in answer.json()["detail"]
