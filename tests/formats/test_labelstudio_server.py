"""Label Studio files from a REAL Label Studio server load correctly.

For every task type (classification, detection, polygon and brush segmentation, keypoints), a small
label set with exact coordinates is saved with visionloop's Label Studio saver (human annotations
plus model predictions with ``model_version`` and ``score``), a project is created on a real
Label Studio server (``servers.label_studio_server``, started once per session) with the config from
``labeling_config(schema)``, the tasks are imported through ``POST /api/projects/{id}/import``,
the project is exported with ``GET /api/projects/{id}/export?exportType=JSON``, and the export file
is loaded with visionloop's loader.

Observed server behaviour (Label Studio 1.23.2), asserted below:

- Region ``value``s (percent coordinates, polygon points, brush RLE bytes, keypoint positions),
  region ids, ``parentID``, ``original_width``/``original_height`` and region scores come back
  exactly as sent: no rounding, so every coordinate is compared with ``TOLERANCE_PX`` = 1e-9 px
  (float noise of the percent <-> pixel conversion only) and brush masks pixel for pixel.
- Task and annotation ids are the server's own (the ``id`` the saver writes is ignored).
- ``completed_by`` of imported annotations becomes the importing user (the export gives its id),
  so annotations load as human labels by ``labelstudio:<id>``.
- Predictions keep ``model_version`` and ``score``.

Images are real PNG files under the server's local-files document root, referenced as
``/data/local-files/?d=<path>``; a local-files storage is connected so the server serves them, and
the loader maps the URL back to ``<path>``, the original image name.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

from servers import LabelStudio
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.labelstudio import labeling_config
from visionloop.formats.masks import rle_decode, rle_encode
from visionloop.formats.model import Annotation, LabeledImage, LabelSet
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio]

LS = get_format("labelstudio")
TOLERANCE_PX = 1e-9
HUMAN = Provenance.human("alice")
SIZES = {"a.png": (64, 48), "b.png": (100, 80), "c.png": (37, 23)}


# -- the label sets ------------------------------------------------------------------------------
def _model(version: str, score: float) -> Provenance:
    return Provenance.model(version, score)


def _images(prefix: str, names: tuple[str, ...] = ("a.png", "b.png", "c.png")) -> list[LabeledImage]:
    return [LabeledImage(f"{prefix}/{name}", *SIZES[name]) for name in names]


def _classification() -> LabelSet:
    schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=["cat", "dog", "bird"])
    a, b, c = _images("classification")
    a.annotations += [
        Annotation(ClassLabel("cat"), HUMAN),
        Annotation(ClassLabel("dog", 0.8125), _model("cls-v1", 0.8125)),
    ]
    b.annotations += [Annotation(ClassLabel("bird"), HUMAN)]
    c.annotations += [Annotation(ClassLabel("dog", 0.3), _model("cls-v2", 0.3))]
    return LabelSet(schema, [a, b, c])


def _detection() -> LabelSet:
    schema = LabelSchema(task=TaskType.DETECTION, classes=["cat", "dog"])
    a, b, c = _images("detection")
    a.annotations += [
        Annotation(
            ObjectLabels(np.array([[3.0, 4.5, 20.0, 30.25], [0.0, 0.0, 64.0, 48.0]]), ("cat", "dog")), HUMAN
        ),
        Annotation(
            ObjectLabels(np.array([[2.75, 5.0, 19.5, 31.0]]), ("cat",), scores=np.array([0.9])),
            _model("det-v3", 0.9),
        ),
    ]
    b.annotations += [
        Annotation(ObjectLabels(np.array([[10.1, 20.2, 70.7, 79.9]]), ("dog",)), HUMAN),
        Annotation(
            ObjectLabels(
                np.array([[11.0, 19.0, 70.0, 80.0], [1.0, 2.0, 3.0, 4.0]]),
                ("dog", "cat"),
                np.array([0.75, 0.125]),
            ),
            _model("det-v3", 0.5),
        ),
    ]
    c.annotations += [Annotation(ObjectLabels(np.array([[1 / 3, 2 / 3, 36.5, 22.9]]), ("cat",)), HUMAN)]
    return LabelSet(schema, [a, b, c])


def _polygons(
    rings: list[list[tuple[float, float]]], names: tuple[str, ...], scores: list[float] | None = None
) -> ObjectLabels:
    arrays = [np.array(ring, dtype=np.float64) for ring in rings]
    boxes = np.array([[*ring.min(axis=0), *ring.max(axis=0)] for ring in arrays])
    return ObjectLabels(
        boxes,
        names,
        scores=None if scores is None else np.array(scores),
        polygons=tuple((r,) for r in arrays),
    )


def _segmentation_polygons() -> LabelSet:
    schema = LabelSchema(task=TaskType.SEGMENTATION, classes=["road", "car"])
    a, b = _images("polygons", ("a.png", "b.png"))
    a.annotations += [
        Annotation(
            _polygons(
                [[(1.0, 1.0), (40.5, 2.25), (30.0, 40.0), (2.0, 47.0)], [(50, 10), (63, 10), (57, 20)]],
                ("road", "car"),
            ),
            HUMAN,
        ),
        Annotation(
            _polygons([[(1.5, 1.0), (40.0, 2.0), (31.0, 41.0)]], ("road",), [0.66]), _model("seg-v1", 0.66)
        ),
    ]
    b.annotations += [
        Annotation(_polygons([[(0.0, 0.0), (100.0, 0.0), (100.0, 80.0), (1 / 3, 79.9)]], ("car",)), HUMAN),
        Annotation(_polygons([[(5, 5), (95, 5), (50, 75)]], ("car",), [0.99]), _model("seg-v1", 0.5)),
    ]
    return LabelSet(schema, [a, b])


def _mask_labels(
    masks: list[np.ndarray], names: tuple[str, ...], scores: list[float] | None = None
) -> ObjectLabels:
    boxes = []
    for mask in masks:
        ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        boxes.append([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1])
    return ObjectLabels(
        np.array(boxes, dtype=np.float64),
        names,
        scores=None if scores is None else np.array(scores),
        masks=tuple(rle_encode(mask) for mask in masks),
    )


def _segmentation_masks() -> LabelSet:
    schema = LabelSchema(task=TaskType.SEGMENTATION, classes=["road", "car"])
    a, b = _images("brush", ("a.png", "b.png"))
    yy, xx = np.mgrid[:48, :64]
    disc = (yy - 20) ** 2 + (xx - 30) ** 2 < 15**2
    disc[18:22, 28:33] = False  # a hole
    stripe = np.zeros((48, 64), dtype=bool)
    stripe[::3, 5:60] = True  # many short runs
    stripe[47, :] = True  # touches the bottom edge
    corner = np.zeros((48, 64), dtype=bool)
    corner[0, 0] = True  # a single pixel
    rng = np.random.default_rng(7)
    noise = rng.random((80, 100)) < 0.3  # literal-chunk-heavy content for other writers
    full = np.ones((80, 100), dtype=bool)
    a.annotations += [
        Annotation(_mask_labels([disc, stripe], ("road", "car")), HUMAN),
        Annotation(_mask_labels([corner], ("car",), [0.25]), _model("brush-v1", 0.25)),
    ]
    b.annotations += [
        Annotation(_mask_labels([noise], ("road",)), HUMAN),
        Annotation(_mask_labels([full], ("road",), [0.5]), _model("brush-v1", 0.75)),
    ]
    return LabelSet(schema, [a, b])


def _keypoints() -> LabelSet:
    schema = LabelSchema(task=TaskType.KEYPOINTS, classes=["person"], keypoints=["nose", "left", "right"])
    a, b = _images("keypoints", ("a.png", "b.png"))
    a.annotations += [
        Annotation(
            ObjectLabels(
                np.array([[2.0, 3.0, 30.0, 40.0], [31.5, 1.25, 63.0, 47.0]]),
                ("person", "person"),
                keypoints=np.array(
                    [
                        [[10.0, 10.0, 2.0], [5.5, 20.25, 2.0], [0.0, 0.0, 0.0]],
                        [[40.0, 5.0, 2.0], [33.3, 30.0, 2.0], [60.0, 46.9, 2.0]],
                    ]
                ),
            ),
            HUMAN,
        ),
        Annotation(
            ObjectLabels(
                np.array([[2.5, 3.5, 29.0, 39.0]]),
                ("person",),
                scores=np.array([0.7]),
                keypoints=np.array([[[11.0, 9.0, 2.0], [0.0, 0.0, 0.0], [25.0, 30.0, 2.0]]]),
            ),
            _model("pose-v2", 0.7),
        ),
    ]
    b.annotations += [
        Annotation(
            ObjectLabels(
                np.array([[0.0, 0.0, 100.0, 80.0]]),
                ("person",),
                keypoints=np.array([[[1 / 3, 79.0, 2.0], [99.5, 0.5, 2.0], [50.0, 40.0, 2.0]]]),
            ),
            HUMAN,
        )
    ]
    return LabelSet(schema, [a, b])


CASES: dict[str, Callable[[], LabelSet]] = {
    "classification": _classification,
    "detection": _detection,
    "segmentation-polygons": _segmentation_polygons,
    "segmentation-brush": _segmentation_masks,
    "keypoints": _keypoints,
}


# -- the server API ------------------------------------------------------------------------------
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _api(server: LabelStudio, method: str, path: str, body: Any = None) -> Any:
    """One JSON API call; raises with the server's answer on an error status."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{server.url}{path}", data=data, method=method)  # noqa: S310 - our http URL
    request.add_header("Authorization", f"Token {server.token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=60) as response:
            payload = response.read()
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{method} {path} -> {error.code}: {error.read()[:2000]!r}") from error
    return json.loads(payload) if payload else None


def _get_bytes(server: LabelStudio, path: str) -> bytes:
    request = urllib.request.Request(f"{server.url}{path}")  # noqa: S310 - our http URL
    request.add_header("Authorization", f"Token {server.token}")
    with _OPENER.open(request, timeout=60) as response:
        body: bytes = response.read()
        return body


def _local_url(name: str) -> str:
    return f"/data/local-files/?d={quote(name)}"


def _write_images(labels: LabelSet, root: Path) -> None:
    for image in labels.images:
        assert image.width is not None and image.height is not None
        path = root / image.name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.indices((image.height, image.width)).sum(axis=0).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(path)


def _round_trip_through_server(
    server: LabelStudio, labels: LabelSet, name: str, tmp_path: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Path]:
    """Save, import into a new project, export; returns (sent tasks, exported tasks, export file)."""
    assert labels.schema is not None
    tasks_path, config_path = LS.save(labels, tmp_path / "saved", SaveOptions())
    assert config_path.read_text() == labeling_config(labels.schema)
    sent: list[dict[str, Any]] = json.loads(tasks_path.read_text())
    for task in sent:
        task["data"]["image"] = _local_url(task["data"]["image"])

    _write_images(labels, server.files)
    folder = labels.images[0].name.split("/")[0]
    project = _api(
        server,
        "POST",
        "/api/projects",
        {"title": f"visionloop {name}", "label_config": config_path.read_text()},
    )
    storage = _api(
        server,
        "POST",
        "/api/storages/localfiles",
        {"project": project["id"], "path": str(server.files / folder), "use_blob_urls": False},
    )
    assert storage["project"] == project["id"]
    imported = _api(server, "POST", f"/api/projects/{project['id']}/import", sent)
    assert imported["task_count"] == len(sent), imported

    exported = _api(
        server, "GET", f"/api/projects/{project['id']}/export?exportType=JSON&download_all_tasks=true"
    )
    assert isinstance(exported, list)
    export_path = tmp_path / "export.json"
    export_path.write_text(json.dumps(exported))
    # The image is served from the document root under the URL the task names.
    first = labels.images[0]
    png = _get_bytes(server, _local_url(first.name))
    assert Image.open(io.BytesIO(png)).size == (first.width, first.height)
    return sent, exported, export_path


# -- checks --------------------------------------------------------------------------------------
def _regions(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {region["id"]: region for region in container["result"]}


def _check_raw_export(sent: list[dict[str, Any]], exported: list[dict[str, Any]]) -> None:
    """The server keeps every region as sent (values, ids, sizes, scores); it assigns its own ids
    to tasks and annotations and sets ``completed_by`` to the importing user."""
    by_image = {task["data"]["image"]: task for task in exported}
    assert sorted(by_image) == sorted(task["data"]["image"] for task in sent)
    for task in sent:
        got = by_image[task["data"]["image"]]
        assert isinstance(got["id"], int)  # the server's own id
        assert len(got["annotations"]) == len(task["annotations"])
        for want, have in zip(task["annotations"], got["annotations"], strict=True):
            assert _regions(have) == _regions(want)
            assert have["was_cancelled"] is False
            assert have["completed_by"] is not None
        assert len(got["predictions"]) == len(task["predictions"])
        for want, have in zip(task["predictions"], got["predictions"], strict=True):
            assert _regions(have) == _regions(want)
            assert have["model_version"] == want["model_version"]
            assert have["score"] == want.get("score")


def _by_kind(image: LabeledImage, kind: ProvenanceKind) -> list[Annotation]:
    return [a for a in image.annotations if a.provenance.kind is kind]


def _check_labels(want: ObjectLabels | ClassLabel, got: object, where: str) -> None:
    if isinstance(want, ClassLabel):
        assert isinstance(got, ClassLabel), where
        assert got.class_name == want.class_name, where
        assert got.score == want.score, where
        return
    assert isinstance(got, ObjectLabels), where
    assert got.class_names == want.class_names, where
    np.testing.assert_allclose(got.boxes, want.boxes, rtol=0, atol=TOLERANCE_PX, err_msg=where)
    if want.scores is None:
        assert got.scores is None, where
    else:
        assert got.scores is not None, where
        np.testing.assert_array_equal(got.scores, want.scores, err_msg=where)
    if want.polygons is None:
        assert got.polygons is None, where
    else:
        assert got.polygons is not None and len(got.polygons) == len(want.polygons), where
        for got_rings, want_rings in zip(got.polygons, want.polygons, strict=True):
            assert len(got_rings) == len(want_rings), where
            for got_ring, want_ring in zip(got_rings, want_rings, strict=True):
                np.testing.assert_allclose(got_ring, want_ring, rtol=0, atol=TOLERANCE_PX, err_msg=where)
    if want.masks is None:
        assert got.masks is None, where
    else:
        assert got.masks is not None and len(got.masks) == len(want.masks), where
        for got_mask, want_mask in zip(got.masks, want.masks, strict=True):
            assert got_mask is not None and want_mask is not None, where
            np.testing.assert_array_equal(rle_decode(got_mask), rle_decode(want_mask), err_msg=where)
    if want.keypoints is None:
        assert got.keypoints is None, where
    else:
        assert got.keypoints is not None, where
        np.testing.assert_allclose(got.keypoints, want.keypoints, rtol=0, atol=TOLERANCE_PX, err_msg=where)


def _check_loaded(labels: LabelSet, loaded: LabelSet) -> None:
    assert labels.schema is not None and loaded.schema is not None
    assert loaded.schema.task is labels.schema.task
    assert loaded.schema.classes == labels.schema.classes
    by_name = {image.name: image for image in loaded.images}
    assert sorted(by_name) == sorted(image.name for image in labels.images)
    for image in labels.images:
        got = by_name[image.name]
        has_regions = any(
            not (isinstance(a.label, ObjectLabels) and len(a.label) == 0) for a in image.annotations
        )
        if has_regions:
            assert (got.width, got.height) == (image.width, image.height), image.name
        want_human = _by_kind(image, ProvenanceKind.HUMAN)
        got_human = _by_kind(got, ProvenanceKind.HUMAN)
        assert len(got_human) == len(want_human), image.name
        for want, have in zip(want_human, got_human, strict=True):
            annotator = have.provenance.annotator
            assert annotator is not None and annotator.startswith("labelstudio:"), annotator
            _check_labels(want.label, have.label, f"{image.name} human")  # type: ignore[arg-type]
        want_model = _by_kind(image, ProvenanceKind.MODEL)
        got_model = _by_kind(got, ProvenanceKind.MODEL)
        assert len(got_model) == len(want_model), image.name
        for want, have in zip(want_model, got_model, strict=True):
            assert have.provenance.model_version == want.provenance.model_version, image.name
            assert have.provenance.score == want.provenance.score, image.name
            _check_labels(want.label, have.label, f"{image.name} model")  # type: ignore[arg-type]
        assert not _by_kind(got, ProvenanceKind.AUTO)


@pytest.mark.parametrize("case", list(CASES))
def test_export_from_a_real_server_loads_exactly(
    label_studio: LabelStudio, case: str, tmp_path: Path
) -> None:
    labels = CASES[case]()
    sent, exported, export_path = _round_trip_through_server(label_studio, labels, case, tmp_path)
    _check_raw_export(sent, exported)

    result = LS.load(export_path, LoadOptions(schema=labels.schema))
    assert result.rejections == [], result.rejections
    assert result.imported == result.records > 0
    _check_loaded(labels, result.labels)

    inferred = LS.load(export_path, LoadOptions())  # without a project schema: inferred from the regions
    assert inferred.rejections == []
    assert inferred.labels.schema is not None and inferred.labels.schema.task is labels.schema.task  # type: ignore[union-attr]
