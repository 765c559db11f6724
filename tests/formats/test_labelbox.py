"""Labelbox NDJSON: round trips per task, points grouped per data row, and line-level rejections."""

from __future__ import annotations

import base64
import io
import json
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from checks import load_malformed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from strategies import assert_label_sets_equal, label_sets

from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.masks import rle_decode
from visionloop.formats.model import Annotation, LabeledImage, LabelSet
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format

LABELBOX = get_format("labelbox")
ROUND_TRIP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DETECTION = LabelSchema(task=TaskType.DETECTION, classes=["cat", "dog"])
KEYPOINTS = LabelSchema(task=TaskType.KEYPOINTS, classes=["cat"], keypoints=["nose", "tail"])


def _round_trip(labels: LabelSet, predictions: bool = False) -> LabelSet:
    """Save ground truth (and predictions to a second file), load both with the project schema."""
    options = LoadOptions(schema=labels.schema)
    with tempfile.TemporaryDirectory() as tmp:
        [path] = LABELBOX.save(labels, Path(tmp), SaveOptions())
        result = LABELBOX.load(path, options)
        assert result.rejections == [], result.rejections
        assert result.imported == result.records == len(path.read_text().splitlines())
        if predictions:
            [predicted_path] = LABELBOX.save(labels, Path(tmp), SaveOptions(predictions=True))
            predicted = LABELBOX.load(predicted_path, options)
            assert predicted.rejections == [], predicted.rejections
            for image in predicted.labels.images:
                result.labels.image(image.name).annotations.extend(image.annotations)
        return result.labels


def _one_visible_instance(labels: LabelSet) -> LabelSet:
    """What Labelbox can express for keypoints: one instance per image, no visibility flag."""
    for image in labels.images:
        label = image.annotations[0].label
        assert isinstance(label, ObjectLabels) and label.keypoints is not None
        keypoints = label.keypoints[:1].copy()
        keypoints[:, :, 2] = np.where(keypoints[:, :, 2] > 0, 2.0, 0.0)
        first = ObjectLabels(label.boxes[:1], label.class_names[:1], keypoints=keypoints)
        image.annotations = [Annotation(first, image.annotations[0].provenance)]
    return labels


@ROUND_TRIP
@given(labels=label_sets(TaskType.CLASSIFICATION, predictions=True))
def test_classification_round_trip_with_predictions(labels: LabelSet) -> None:
    back = _round_trip(labels, predictions=True)
    assert_label_sets_equal(labels, back)
    for image in labels.images:
        [want] = [a for a in image.annotations if a.provenance.kind is ProvenanceKind.MODEL]
        [got] = [a for a in back.image(image.name).annotations if a.provenance.kind is ProvenanceKind.MODEL]
        assert isinstance(got.label, ClassLabel) and isinstance(want.label, ClassLabel)
        assert got.label.score == pytest.approx(want.label.score)
        assert got.provenance.model_version == "labelbox-import"


@ROUND_TRIP
@given(labels=label_sets(TaskType.DETECTION, predictions=True, min_objects=1))
def test_detection_round_trip_with_confidences(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels, predictions=True))


@ROUND_TRIP
@given(labels=label_sets(TaskType.SEGMENTATION, polygons=True, min_objects=1))
def test_polygon_round_trip(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels))


@ROUND_TRIP
@given(labels=label_sets(TaskType.SEGMENTATION, masks=True, min_objects=1))
def test_mask_round_trip_is_pixel_exact(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels), mask_pixels=0)


@ROUND_TRIP
@given(labels=label_sets(TaskType.KEYPOINTS, min_objects=1).map(_one_visible_instance))
def test_keypoints_round_trip_one_instance_per_data_row(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels))


def test_saving_twice_gives_identical_files_with_unique_uuids(tmp_path: Path) -> None:
    image = LabeledImage("a.jpg", annotations=[Annotation(ClassLabel("cat"), Provenance.human("x"))])
    labels = LabelSet(LabelSchema(task=TaskType.CLASSIFICATION, classes=["cat"]), [image])
    [first] = LABELBOX.save(labels, tmp_path / "one.ndjson", SaveOptions())
    [second] = LABELBOX.save(labels, tmp_path / "two.ndjson", SaveOptions())
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(first.read_text())["answer"] == {"name": "cat"}


def _png(array: np.ndarray[Any, Any], mode: str = "L") -> str:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).convert(mode).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _line(geometry: dict[str, Any], key: str = "u", row: str = "img.jpg", name: str = "cat") -> str:
    return json.dumps({"uuid": key, "dataRow": {"globalKey": row}, "name": name, **geometry})


GOOD = _line({"bbox": {"top": 1, "left": 2, "height": 3, "width": 4}}, key="good")
SQUARE = np.pad(np.ones((3, 3)), 2)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (_line({"bbox": {"top": 1, "left": 2, "height": 3, "width": 4}}, key="good"), "duplicate uuid"),
        (json.dumps({"dataRow": {"globalKey": "a.jpg"}, "name": "cat", "bbox": {}}), "'uuid'"),
        (_line({"bbox": {"top": 1, "left": 2, "height": 3, "width": 4}}, row="../etc/passwd"), "'..'"),
        (_line({"bbox": {"top": 1, "left": 2, "height": 3, "width": 4}}, row="/etc/passwd"), "absolute"),
        (_line({"bbox": {"top": 1, "left": 2, "height": -3, "width": 4}}), "zero or negative size"),
        (_line({"bbox": {"top": "1", "left": 2, "height": 3, "width": 4}}), "finite numbers"),
        (_line({"bbox": {"top": 1, "left": 2, "height": 3, "width": 4}, "confidence": 2}), "confidence"),
        (_line({"polygon": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}), "at least 3"),
        (_line({"mask": {"instanceURI": "https://x/m.png", "colorRGB": [255, 0, 0]}}), "not fetched"),
        (_line({"mask": {"png": _png(SQUARE * 255)}}), "values must be 0 or 1, found 255"),
        (_line({"mask": {"png": _png(SQUARE, "RGB")}}), "single channel"),
        (_line({"mask": {"png": "!!not base64!!"}}), "not valid base64"),
        (_line({"mask": {"png": _png(np.zeros((4, 4)))}}), "mask is empty"),
        (_line({"answer": {"name": "cat"}}), "classification answer in a detection project"),
        (_line({"bbox": {"top": 1, "left": 2, "height": 3, "width": 4}}, name="zebra"), "unknown class"),
        (_line({"line": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}), "polyline"),
        (_line({"point": {"x": 1, "y": 1}}), "points are only imported in keypoints projects"),
        (_line({"bbox": {"top": 1, "left": 2, "height": 3, "width": 4}}, name="a,b"), "invalid name 'a,b'"),
    ],
)
def test_bad_lines_are_rejected_with_line_and_reason(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text(f"{GOOD}\n\n{line}\n")
    result = LABELBOX.load(path, LoadOptions(schema=DETECTION))
    assert result.records == 2 and result.imported == 1
    [rejection] = result.rejections
    assert (rejection.file, rejection.locator) == (str(path), "line 3")
    assert reason in rejection.reason


def test_checklists_radios_and_confidences(tmp_path: Path) -> None:
    lines = [
        _line({"answer": {"name": "cat"}}, key="1", row="a.jpg", name="animal"),
        _line({"answer": [{"name": "dog"}]}, key="2", row="b.jpg", name="animal"),
        _line({"answer": [{"name": "dog"}, {"name": "cat"}]}, key="3", row="c.jpg", name="animal"),
        _line({"answer": {"name": "dog", "confidence": 0.25}}, key="4", row="a.jpg", name="animal"),
        _line({"answer": "free text"}, key="5", row="d.jpg", name="animal"),
    ]
    path = tmp_path / "classes.ndjson"
    path.write_text("\n".join(lines))
    result = LABELBOX.load(path, LoadOptions())
    assert result.labels.schema is not None and result.labels.schema.classes == ["cat", "dog"]
    assert {r.locator: r.reason for r in result.rejections} == {
        "line 3": "multi-label classification is not supported (checklist with 2 answers)",
        "line 5": "free-text answers are not supported",
    }
    a = result.labels.image("a.jpg")
    kinds = sorted((ann.provenance.kind.value, ann.label.to_dict()["class_name"]) for ann in a.annotations)
    assert kinds == [("human", "cat"), ("model", "dog")]
    assert result.imported + len(result.rejections) == result.records == 5


def test_points_group_into_one_instance_per_data_row(tmp_path: Path) -> None:
    lines = [
        _line({"bbox": {"top": 0, "left": 0, "height": 10, "width": 10}}, key="1", row="a.jpg"),
        _line({"point": {"x": 1, "y": 2}}, key="2", row="a.jpg", name="nose"),
        _line({"point": {"x": 3, "y": 4}}, key="3", row="a.jpg", name="tail"),
        _line({"point": {"x": 5, "y": 6}}, key="4", row="a.jpg", name="nose"),
        _line({"point": {"x": 7, "y": 8}}, key="5", row="b.jpg", name="tail"),
        _line({"point": {"x": 7, "y": 8}}, key="6", row="b.jpg", name="ear"),
    ]
    path = tmp_path / "points.ndjson"
    path.write_text("\n".join(lines))
    result = LABELBOX.load(path, LoadOptions(schema=KEYPOINTS))
    reasons = {r.locator: r.reason for r in result.rejections}
    assert "duplicate point 'nose'" in reasons["line 4"] and "unknown keypoint 'ear'" in reasons["line 6"]
    [a] = result.labels.image("a.jpg").annotations
    assert isinstance(a.label, ObjectLabels) and a.label.keypoints is not None
    np.testing.assert_array_equal(a.label.keypoints, [[[1, 2, 2], [3, 4, 2]]])
    np.testing.assert_array_equal(a.label.boxes, [[0, 0, 10, 10]])
    [b] = result.labels.image("b.jpg").annotations  # no box: the points' extent, first class
    assert isinstance(b.label, ObjectLabels) and b.label.class_names == ("cat",)
    np.testing.assert_array_equal(b.label.boxes, [[7, 8, 7, 8]])
    assert result.imported == 4 and result.records == 6


def test_mask_png_is_decoded_from_bytes(tmp_path: Path) -> None:
    mask = np.zeros((6, 8), dtype=np.uint8)
    mask[1:4, 2:7] = 1
    path = tmp_path / "mask.ndjson"
    path.write_text(_line({"mask": {"png": _png(mask)}, "confidence": 0.5}))
    result = LABELBOX.load(path, LoadOptions())
    [annotation] = result.labels.image("img.jpg").annotations
    label = annotation.label
    assert isinstance(label, ObjectLabels) and label.masks is not None and label.masks[0] is not None
    np.testing.assert_array_equal(rle_decode(label.masks[0]), mask.astype(bool))
    np.testing.assert_array_equal(label.boxes, [[2, 1, 7, 4]])
    assert annotation.provenance == Provenance.model("labelbox-import", 0.5)
    assert result.labels.schema is not None and result.labels.schema.task is TaskType.SEGMENTATION


def _png_header_only(width: int, height: int) -> str:
    """A PNG that claims a huge size: it must be refused before pixels are decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return base64.b64encode(data + chunk(b"IEND", b"")).decode("ascii")


def malformed_inputs(folder: Path) -> list[Path]:
    """Distinct broken or hostile NDJSON inputs; each must end as rejections, never a crash."""
    bbox = {"bbox": {"top": 1, "left": 2, "height": 3, "width": 4}}
    texts: dict[str, bytes] = {
        "empty.ndjson": b"",
        "latin1.ndjson": "caf\xe9 {}".encode("latin-1"),
        "array.ndjson": b"[1, 2, 3]\n",
        "null.ndjson": b"null\n",
        "truncated.ndjson": GOOD[:30].encode(),
        "nested.ndjson": ("[" * 100_000 + "]" * 100_000).encode(),
        "nan.ndjson": _line({"bbox": {"top": float("nan"), "left": 2, "height": 3, "width": 4}}).encode(),
        "traversal.ndjson": _line(bbox, row="..%2F..%2Fetc/passwd").encode(),
        "absolute.ndjson": _line(bbox, row="C:/Windows/system.ini").encode(),
        "nodatarow.ndjson": json.dumps({"uuid": "x", "name": "cat", **bbox}).encode(),
        "two_geometries.ndjson": _line({**bbox, "point": {"x": 1, "y": 1}}).encode(),
        "png_bomb.ndjson": _line({"mask": {"png": _png_header_only(200_000, 200_000)}}).encode(),
        "png_garbage.ndjson": _line({"mask": {"png": base64.b64encode(b"GIF89a....").decode()}}).encode(),
        "answer_list_of_str.ndjson": _line({"answer": ["a"]}).encode(),
        "polygon_not_list.ndjson": _line({"polygon": {"x": 1}}).encode(),
        "dupes.ndjson": f"{GOOD}\n{GOOD}\n".encode(),
        "comma_class.ndjson": _line(bbox, name="cat,dog").encode(),
    }
    paths = []
    for name, data in texts.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    (folder / "a_directory.ndjson").mkdir()
    paths += [folder / "a_directory.ndjson", folder / "missing.ndjson"]
    return paths


@pytest.mark.parametrize("index", range(19))
@pytest.mark.parametrize("schema", [None, DETECTION], ids=["inferred", "detection"])
def test_malformed_inputs_never_crash(tmp_path: Path, index: int, schema: LabelSchema | None) -> None:
    inputs = malformed_inputs(tmp_path)
    assert len(inputs) >= 12 and len({p.name for p in inputs}) == len(inputs)
    path = inputs[index]
    result = load_malformed(LABELBOX, path, LoadOptions(schema=schema), watch=tmp_path)
    if result is None:
        return
    assert all(r.file == str(path) and r.locator and r.reason for r in result.rejections)
    assert result.imported + len(result.rejections) == result.records
    if path.name not in ("empty.ndjson", "dupes.ndjson"):
        assert result.rejections, path.name


@given(st.text(max_size=200))
@settings(max_examples=50, deadline=None)
def test_arbitrary_text_never_crashes(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.ndjson"
        path.write_text(text, encoding="utf-8")
        result = LABELBOX.load(path, LoadOptions())
        assert result.imported + len(result.rejections) == result.records
