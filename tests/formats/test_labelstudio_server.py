"""Label Studio files from a REAL Label Studio server load correctly.

For every task type (classification, detection, polygon and brush segmentation, keypoints), a small
label set with exact coordinates is saved with visionloop's Label Studio saver (human annotations
plus model predictions with ``model_version`` and ``score``), a project is created on a real
Label Studio server (``servers.label_studio_server``, started once per session) with the config from
``labeling_config(schema)``, the tasks are imported with ``POST /api/projects/{id}/import``, the
project is exported through the API both ways Label Studio offers, each export is written to a file
and loaded with visionloop's loader:

- the snapshot export (``POST /api/projects/{id}/exports`` with predictions and ``completed_by``
  expanded, then ``.../exports/{n}/download?exportType=JSON``) holds everything;
- the quick export (``GET /api/projects/{id}/export?exportType=JSON``) holds annotations, but lists
  predictions by id only (``"predictions": [3, 4]``): the loader refuses each such id with a reason
  that names the snapshot export.

Observed server behaviour (Label Studio 1.23.2), asserted below:

- Region ``value``s (percent coordinates, polygon points, brush RLE bytes, keypoint positions),
  region ids, ``parentID``, ``original_width``/``original_height`` and region scores come back
  exactly as sent (the server stores the JSON as is: no rounding), so coordinates are compared
  with ``TOLERANCE_PX`` = 1e-9 px (float noise of visionloop's own percent <-> pixel conversion)
  and brush masks pixel for pixel.
- Tasks and annotations get the server's own ids (the saver's task ``id`` is ignored).
- Imported annotations belong to the importing user (``completed_by``: its id in the quick export,
  ``{id, email, ...}`` in the expanded snapshot, so they load as human labels by
  ``labelstudio:<id>`` or ``labelstudio:<email>``), and are flagged ``ground_truth: true``; the
  snapshot export's "usual" annotation filter excludes ground truth (its source,
  ``data_export/mixins.py``), so the snapshot here asks for ground truth too.
- Predictions keep ``model_version`` and ``score``.

Images are real PNG files under the server's local-files document root, referenced as
``/data/local-files/?d=<path>``; a local-files storage is connected so the server serves them, and
the loader maps the URL back to ``<path>``, the original image name.

The server stores brush RLE without decoding it, so brush masks are also checked against Label
Studio's own codec (``label_studio_sdk.converter.brush``, run in Label Studio's venv): it decodes
visionloop's RLE to the same pixels, and masks it encodes, imported as ML-backend-style
predictions, load pixel for pixel.
"""

from __future__ import annotations

import io
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

from servers import LABEL_STUDIO_USER, LabelStudio, find_label_studio
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats import ls_brush
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


def _brush_masks() -> dict[str, np.ndarray]:
    """Masks with holes, short runs, edge pixels, a lone pixel, noise and a full image."""
    yy, xx = np.mgrid[:48, :64]
    disc = (yy - 20) ** 2 + (xx - 30) ** 2 < 15**2
    disc[18:22, 28:33] = False  # a hole
    stripe = np.zeros((48, 64), dtype=bool)
    stripe[::3, 5:60] = True  # many short runs
    stripe[47, :] = True  # touches the bottom edge
    corner = np.zeros((48, 64), dtype=bool)
    corner[0, 0] = True  # a single pixel
    noise = np.random.default_rng(7).random((80, 100)) < 0.3  # runs of every length
    full = np.ones((80, 100), dtype=bool)
    return {"disc": disc, "stripe": stripe, "corner": corner, "noise": noise, "full": full}


def _segmentation_masks() -> LabelSet:
    schema = LabelSchema(task=TaskType.SEGMENTATION, classes=["road", "car"])
    a, b = _images("brush", ("a.png", "b.png"))
    m = _brush_masks()
    a.annotations += [
        Annotation(_mask_labels([m["disc"], m["stripe"]], ("road", "car")), HUMAN),
        Annotation(_mask_labels([m["corner"]], ("car",), [0.25]), _model("brush-v1", 0.25)),
    ]
    b.annotations += [
        Annotation(_mask_labels([m["noise"]], ("road",)), HUMAN),
        Annotation(_mask_labels([m["full"]], ("road",), [0.5]), _model("brush-v1", 0.75)),
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


@dataclass
class Exports:
    """What went to the server and what came back, through both of its JSON export paths."""

    sent: list[dict[str, Any]]
    quick: list[dict[str, Any]]  # GET /api/projects/{id}/export?exportType=JSON
    snapshot: list[dict[str, Any]]  # POST /api/projects/{id}/exports, then .../download


def _new_project(server: LabelStudio, labels: LabelSet, name: str) -> int:
    """A project with visionloop's labeling config, whose images are written under the document
    root and connected as a local-files storage (so the server serves them)."""
    assert labels.schema is not None
    _write_images(labels, server.files)
    title = f"visionloop {name}"
    project = _api(
        server, "POST", "/api/projects", {"title": title, "label_config": labeling_config(labels.schema)}
    )
    pid: int = project["id"]
    folder = server.files / labels.images[0].name.split("/")[0]
    storage = _api(
        server,
        "POST",
        "/api/storages/localfiles",
        {"project": pid, "path": str(folder), "use_blob_urls": False},
    )
    assert storage["project"] == pid
    first = labels.images[0]  # served from the document root under the URL the tasks name
    png = _get_bytes(server, _local_url(first.name))
    assert Image.open(io.BytesIO(png)).size == (first.width, first.height)
    return pid


def _import(server: LabelStudio, pid: int, tasks: list[dict[str, Any]]) -> None:
    imported = _api(server, "POST", f"/api/projects/{pid}/import", tasks)
    assert imported["task_count"] == len(tasks), imported
    assert imported["annotation_count"] == sum(len(t.get("annotations", [])) for t in tasks), imported
    assert imported["prediction_count"] == sum(len(t.get("predictions", [])) for t in tasks), imported


def _snapshot_export(server: LabelStudio, pid: int) -> list[dict[str, Any]]:
    """A snapshot export with predictions and annotators expanded."""
    options = {
        "title": f"visionloop {pid}",
        "serialization_options": {
            "predictions": {"only_id": False},
            "annotations__completed_by": {"only_id": False},
            "drafts": {"only_id": True},
        },
        # Imported annotations are marked ground truth, which the default filter ("usual") leaves out.
        "annotation_filter_options": {"usual": True, "ground_truth": True, "skipped": True},
    }
    snapshot = _api(server, "POST", f"/api/projects/{pid}/exports/", options)
    assert snapshot["status"] == "completed", snapshot  # without Redis it runs before answering
    tasks = _api(server, "GET", f"/api/projects/{pid}/exports/{snapshot['id']}/download?exportType=JSON")
    assert isinstance(tasks, list)
    return tasks


def _round_trip_through_server(server: LabelStudio, labels: LabelSet, name: str, tmp_path: Path) -> Exports:
    """Save with visionloop, import into a new project, export both ways."""
    tasks_path, _ = LS.save(labels, tmp_path / "saved", SaveOptions())
    sent: list[dict[str, Any]] = json.loads(tasks_path.read_text())
    for task in sent:
        task["data"]["image"] = _local_url(task["data"]["image"])
    pid = _new_project(server, labels, name)
    _import(server, pid, sent)
    quick = _api(server, "GET", f"/api/projects/{pid}/export?exportType=JSON&download_all_tasks=true")
    assert isinstance(quick, list)
    return Exports(sent, quick, _snapshot_export(server, pid))


def _write_export(tasks: list[dict[str, Any]], path: Path) -> Path:
    path.write_text(json.dumps(tasks))
    return path


# -- checks --------------------------------------------------------------------------------------
def _regions(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {region["id"]: region for region in container["result"]}


def _check_raw_export(exports: Exports) -> None:
    """Both exports keep every annotation region as sent (values, ids, sizes); the server assigns
    its own task and annotation ids and sets ``completed_by`` to the importing user. The snapshot
    export also keeps prediction regions (with scores), ``model_version`` and ``score``; the quick
    export lists predictions by id only."""
    sent = {task["data"]["image"]: task for task in exports.sent}
    for exported, expanded in ((exports.quick, False), (exports.snapshot, True)):
        by_image = {task["data"]["image"]: task for task in exported}
        assert sorted(by_image) == sorted(sent)
        for image, task in sent.items():
            got = by_image[image]
            assert isinstance(got["id"], int)  # the server's own id
            assert len(got["annotations"]) == len(task["annotations"])
            for want, have in zip(task["annotations"], got["annotations"], strict=True):
                assert _regions(have) == _regions(want)
                assert have["was_cancelled"] is False
                assert have["ground_truth"] is True
                if expanded:
                    assert have["completed_by"]["email"] == LABEL_STUDIO_USER
                else:
                    assert isinstance(have["completed_by"], int)
            assert len(got["predictions"]) == len(task["predictions"])
            for want, have in zip(task["predictions"], got["predictions"], strict=True):
                if not expanded:
                    assert isinstance(have, int)
                    continue
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


def _check_loaded(labels: LabelSet, loaded: LabelSet, annotator: str, predictions: bool = True) -> None:
    assert labels.schema is not None and loaded.schema is not None
    assert loaded.schema.task is labels.schema.task
    assert loaded.schema.classes == labels.schema.classes
    by_name = {image.name: image for image in loaded.images}
    assert sorted(by_name) == sorted(image.name for image in labels.images)
    for image in labels.images:
        got = by_name[image.name]
        if any(a.provenance.kind is ProvenanceKind.HUMAN or predictions for a in image.annotations):
            assert (got.width, got.height) == (image.width, image.height), image.name
        want_human = _by_kind(image, ProvenanceKind.HUMAN)
        got_human = _by_kind(got, ProvenanceKind.HUMAN)
        assert len(got_human) == len(want_human), image.name
        for want, have in zip(want_human, got_human, strict=True):
            assert have.provenance.annotator == annotator, image.name
            _check_labels(want.label, have.label, f"{image.name} human")
        want_model = _by_kind(image, ProvenanceKind.MODEL) if predictions else []
        got_model = _by_kind(got, ProvenanceKind.MODEL)
        assert len(got_model) == len(want_model), image.name
        for want, have in zip(want_model, got_model, strict=True):
            assert have.provenance.model_version == want.provenance.model_version, image.name
            assert have.provenance.score == want.provenance.score, image.name
            _check_labels(want.label, have.label, f"{image.name} model")
        assert not _by_kind(got, ProvenanceKind.AUTO)


@pytest.mark.parametrize("case", list(CASES))
def test_export_from_a_real_server_loads_exactly(
    label_studio: LabelStudio, case: str, tmp_path: Path
) -> None:
    labels = CASES[case]()
    assert labels.schema is not None
    exports = _round_trip_through_server(label_studio, labels, case, tmp_path)
    _check_raw_export(exports)

    # The snapshot export: everything comes back, coordinates to TOLERANCE_PX, masks exactly.
    snapshot = _write_export(exports.snapshot, tmp_path / "snapshot.json")
    result = LS.load(snapshot, LoadOptions(schema=labels.schema))
    assert result.rejections == [], result.rejections
    assert result.imported == result.records > 0
    _check_loaded(labels, result.labels, f"labelstudio:{LABEL_STUDIO_USER}")
    inferred = LS.load(snapshot, LoadOptions())  # no project schema: inferred from the regions
    assert inferred.rejections == []
    assert inferred.labels.schema is not None and inferred.labels.schema.task is labels.schema.task

    # The quick export: the same human labels (annotator by user id); each prediction, given by its
    # id only, is refused with a reason that points at the snapshot export.
    quick = _write_export(exports.quick, tmp_path / "quick.json")
    result = LS.load(quick, LoadOptions(schema=labels.schema))
    [user_id] = {a["completed_by"] for task in exports.quick for a in task["annotations"]}
    predictions = sum(len(task["predictions"]) for task in exports.sent)
    assert len(result.rejections) == predictions
    for rejection in result.rejections:
        assert "/predictions/" in rejection.locator and "snapshot export" in rejection.reason, rejection
    _check_loaded(labels, result.labels, f"labelstudio:{user_id}", predictions=False)


# -- brush masks written by Label Studio's own encoder -------------------------------------------------
_SDK_SCRIPT = """
import json, sys
import numpy as np
from label_studio_sdk.converter.brush import decode_rle, mask2rle
request = json.load(sys.stdin)
encoded = [[int(v) for v in mask2rle(np.array(m, dtype=np.uint8) * 255)] for m in request["masks"]]
decoded = []
for rle, (h, w) in request["ours"]:
    decoded.append((decode_rle(rle).reshape(h, w, 4)[:, :, 3] > 0).astype(int).tolist())
json.dump({"encoded": encoded, "decoded": decoded}, sys.stdout)
"""


def _label_studio_sdk(
    masks: list[np.ndarray], ours: list[list[int]]
) -> tuple[list[list[int]], list[np.ndarray]]:
    """Encode ``masks`` with Label Studio's SDK (as ML backends do) and decode ``ours`` with it, in
    Label Studio's own venv (it cannot share the main one)."""
    python = find_label_studio().parent / "python"
    request = {
        "masks": [m.astype(int).tolist() for m in masks],
        "ours": [[r, list(m.shape)] for r, m in zip(ours, masks, strict=True)],
    }
    done = subprocess.run(
        [str(python), "-c", _SDK_SCRIPT],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    return answer["encoded"], [np.array(d, dtype=bool) for d in answer["decoded"]]


def test_brush_rle_agrees_with_label_studio_sdk(label_studio: LabelStudio, tmp_path: Path) -> None:
    """Label Studio's Python SDK (``label_studio_sdk.converter.brush``) decodes our brush RLE to
    the same pixels, and brush predictions it encodes, sent through the server like an ML
    backend's, load pixel for pixel."""
    masks = _brush_masks()
    names = list(masks)
    ours = [ls_brush.encode(masks[n]) for n in names]
    encoded, decoded = _label_studio_sdk([masks[n] for n in names], ours)
    for name, got in zip(names, decoded, strict=True):
        np.testing.assert_array_equal(got, masks[name], err_msg=f"SDK decoding of our {name} mask")

    schema = LabelSchema(task=TaskType.SEGMENTATION, classes=["road", "car"])
    images = {"a.png": ["disc", "stripe", "corner"], "b.png": ["noise", "full"]}
    labels = LabelSet(schema, _images("sdk-brush", tuple(images)))
    tasks = []
    for image, mask_names in zip(labels.images, images.values(), strict=True):
        result = []
        for name in mask_names:
            value = {"format": "rle", "rle": encoded[names.index(name)], "brushlabels": ["road"]}
            result.append(
                {"id": name, "type": "brushlabels", "from_name": "brush", "to_name": "image", "value": value}
                | {
                    "original_width": image.width,
                    "original_height": image.height,
                    "image_rotation": 0,
                    "score": 0.5,
                }
            )
        prediction = {"model_version": "sdk-brush", "score": 0.5, "result": result}
        tasks.append({"data": {"image": _local_url(image.name)}, "predictions": [prediction]})
    pid = _new_project(label_studio, labels, "sdk-brush")
    _import(label_studio, pid, tasks)
    export = _write_export(_snapshot_export(label_studio, pid), tmp_path / "snapshot.json")

    loaded = LS.load(export, LoadOptions(schema=schema))
    assert loaded.rejections == [], loaded.rejections
    by_name = {image.name: image for image in loaded.labels.images}
    for image, mask_names in zip(labels.images, images.values(), strict=True):
        [predicted] = by_name[image.name].annotations
        assert predicted.provenance.kind is ProvenanceKind.MODEL
        assert predicted.provenance.model_version == "sdk-brush" and predicted.provenance.score == 0.5
        label = predicted.label
        assert isinstance(label, ObjectLabels) and label.masks is not None
        for name, mask in zip(mask_names, label.masks, strict=True):
            assert mask is not None
            np.testing.assert_array_equal(rle_decode(mask), masks[name], err_msg=f"{image.name} {name}")
