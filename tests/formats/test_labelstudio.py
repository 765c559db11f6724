"""Label Studio: brush RLE, lossless round trips, labeling configs, and clear rejections."""

from __future__ import annotations

import dataclasses
import json
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from strategies import assert_label_sets_equal, label_sets

from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats import ls_brush
from visionloop.formats.labelstudio import labeling_config
from visionloop.formats.masks import rle_decode
from visionloop.formats.model import Annotation, ImportResult, LabeledImage, LabelSet
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format

LS = get_format("labelstudio")
ROUND_TRIP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A 1x1 set pixel, derived by hand from the rle-pack layout (MSB first):
# 32 bits count 4 | 5 bits word size - 1 = 7 | sizes - 1: 2, 3, 7, 15 (4 bits each)
# | run: flag 1, size index 00, length - 1 = 3 in 3 bits, value 0xFF | 5 zero pad bits.
ONE_SET_PIXEL = [0, 0, 0, 4, 57, 27, 252, 127, 224]
# The same pixel as a literal chunk of four words 0, 0, 0, 255 (flag 0, index 00, length - 1 = 3).
ONE_PIXEL_LITERAL = [0, 0, 0, 4, 57, 27, 248, 96, 0, 0, 31, 224]


# -- brush RLE -------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    mask=st.tuples(st.integers(1, 40), st.integers(1, 40)).flatmap(
        lambda shape: arrays(bool, shape, elements=st.booleans())
    )
)
def test_brush_round_trip_random_masks(mask: np.ndarray) -> None:
    encoded = ls_brush.encode(mask)
    assert all(isinstance(b, int) and 0 <= b <= 255 for b in encoded)
    np.testing.assert_array_equal(ls_brush.decode(encoded, *mask.shape), mask)


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (300, 300)])
@pytest.mark.parametrize("fill", [False, True])
def test_brush_empty_and_full_masks(shape: tuple[int, int], fill: bool) -> None:
    """300x300x4 = 360000 values needs runs split at 65536."""
    mask = np.full(shape, fill)
    np.testing.assert_array_equal(ls_brush.decode(ls_brush.encode(mask), *shape), mask)


def test_brush_known_vectors() -> None:
    assert ls_brush.encode(np.ones((1, 1), dtype=bool)) == ONE_SET_PIXEL
    assert ls_brush.decode(ONE_SET_PIXEL, 1, 1).tolist() == [[True]]
    assert ls_brush.decode(ONE_PIXEL_LITERAL, 1, 1).tolist() == [[True]]
    # The same 1x1 stream with alpha 0: the value byte 0xFF becomes 0x00.
    empty = [0, 0, 0, 4, 57, 27, 252, 96, 0]
    assert ls_brush.decode(empty, 1, 1).tolist() == [[False]]
    assert ls_brush.encode(np.zeros((1, 1), dtype=bool)) == empty


def test_brush_reads_alpha_channel_only() -> None:
    """Label Studio's canvas gives colored RGB with alpha; only alpha decides."""
    # 2 pixels: (255, 0, 0, 0) and (0, 0, 0, 128), as a literal chunk of 8 words.
    bits = f"{8:032b}001110010001101111111" + "0" + "01" + f"{7:04b}"
    bits += "".join(f"{v:08b}" for v in (255, 0, 0, 0, 0, 0, 0, 128))
    bits += "0" * (-len(bits) % 8)
    rle = [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]
    assert ls_brush.decode(rle, 1, 2).tolist() == [[False, True]]


@pytest.mark.parametrize(
    ("rle", "height", "width", "reason"),
    [
        (ONE_SET_PIXEL[:6], 1, 1, "truncated"),
        (ONE_SET_PIXEL[:7], 1, 1, "truncated"),
        (ONE_SET_PIXEL, 2, 2, "declares 4 values, expected"),
        ([255, 255, 255, 252, 57, 27, 252, 127, 224], 1, 1, "declares"),
        ([0, 0, 0, 2, 57, 27, 252, 127, 224], 1, 1, "declares"),
        (ONE_SET_PIXEL + [0] * 8, 1, 1, "unused bytes"),
        ([*ONE_SET_PIXEL[:-1], 256], 1, 1, "0..255"),
        ([0.5, *ONE_SET_PIXEL[1:]], 1, 1, "integers"),
        ("abc", 1, 1, "list"),
        (ONE_SET_PIXEL, 0, 1, "positive"),
        (ONE_SET_PIXEL, 40000, 40000, "exceeds"),
    ],
)
def test_brush_rejects_corrupt_streams(rle: Any, height: int, width: int, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        ls_brush.decode(rle, height, width)


def test_brush_run_overflow_is_rejected() -> None:
    # count 4 but a run of 8 values (length - 1 = 7)
    bits = f"{4:032b}001110010001101111111" + "1" + "00" + "111" + "11111111"
    bits += "0" * (-len(bits) % 8)
    rle = [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]
    with pytest.raises(ValueError, match="overflows"):
        ls_brush.decode(rle, 1, 1)


# -- round trips -----------------------------------------------------------------------------
def _round_trip(labels: LabelSet, schema: bool = True) -> ImportResult:
    with tempfile.TemporaryDirectory() as tmp:
        tasks, config = LS.save(labels, Path(tmp), SaveOptions())
        assert tasks.name == "tasks.json" and config.name == "labeling_config.xml"
        result = LS.load(tasks, LoadOptions(schema=labels.schema if schema else None))
    assert result.rejections == [], result.rejections
    assert result.imported == result.records
    return result


def _hidden_as_visible(labels: LabelSet) -> LabelSet:
    """Label Studio has no 'labeled but hidden': v=1 comes back as v=2."""
    images = []
    for image in labels.images:
        annotations = []
        for annotation in image.annotations:
            label = annotation.label
            if isinstance(label, ObjectLabels) and label.keypoints is not None:
                points = label.keypoints.copy()
                points[:, :, 2][points[:, :, 2] == 1] = 2
                label = dataclasses.replace(label, keypoints=points)
            annotations.append(Annotation(label, annotation.provenance))
        images.append(LabeledImage(image.name, image.width, image.height, annotations))
    return LabelSet(labels.schema, images)


@ROUND_TRIP
@given(labels=label_sets(TaskType.CLASSIFICATION, predictions=True))
def test_classification_round_trip_with_predictions(labels: LabelSet) -> None:
    back = _round_trip(labels).labels
    assert_label_sets_equal(labels, back)
    for image in labels.images:
        [model] = [a for a in image.annotations if a.provenance.kind is ProvenanceKind.MODEL]
        [got] = [
            a
            for i in back.images
            if i.name == image.name
            for a in i.annotations
            if a.provenance.kind is ProvenanceKind.MODEL
        ]
        assert got.provenance.model_version == "m-1"
        assert isinstance(got.label, ClassLabel) and isinstance(model.label, ClassLabel)
        assert got.label.score == pytest.approx(model.label.score)
        assert got.provenance.score == pytest.approx(model.provenance.score)


@ROUND_TRIP
@given(labels=label_sets(TaskType.DETECTION, predictions=True))
def test_detection_round_trip_with_predictions(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels).labels)


@ROUND_TRIP
@given(labels=label_sets(TaskType.SEGMENTATION, polygons=True, predictions=True))
def test_polygon_segmentation_round_trip(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels).labels)


@ROUND_TRIP
@given(labels=label_sets(TaskType.SEGMENTATION, masks=True))
def test_brush_segmentation_round_trip(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels).labels, mask_pixels=0)


@ROUND_TRIP
@given(labels=label_sets(TaskType.KEYPOINTS))
def test_keypoints_round_trip_hidden_points_become_visible(labels: LabelSet) -> None:
    assert_label_sets_equal(_hidden_as_visible(labels), _round_trip(labels).labels)


@ROUND_TRIP
@given(labels=label_sets(TaskType.DETECTION, min_objects=1))
def test_schema_is_inferred_without_a_project_schema(labels: LabelSet) -> None:
    schema = _round_trip(labels, schema=False).labels.schema
    assert schema is not None and schema.task is TaskType.DETECTION
    used = {n for i in labels.images for a in i.annotations for n in a.label.class_names}  # type: ignore[union-attr]
    assert set(schema.classes) == used


# -- loading real-shaped exports ---------------------------------------------------------------
def _write(tmp_path: Path, data: Any, name: str = "export.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _rect(x: float, y: float, w: float, h: float, label: str = "cat", **extra: Any) -> dict[str, Any]:
    region = {
        "id": extra.pop("id", "r1"),
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": 200,
        "original_height": 100,
        "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]},
    }
    region.update(extra)
    return region


def test_reads_a_label_studio_export(tmp_path: Path) -> None:
    mask = np.zeros((100, 200), dtype=bool)
    mask[10:20, 30:50] = True
    tasks = [
        {
            "id": 1,
            "data": {"image": "/data/local-files/?d=photos/a%20b.jpg"},
            "annotations": [
                {
                    "id": 11,
                    "completed_by": {"id": 3, "email": "ann@example.com"},
                    "result": [
                        _rect(10, 20, 30, 40, id="p1"),
                        {
                            "id": "k1",
                            "type": "keypointlabels",
                            "from_name": "kp",
                            "to_name": "image",
                            "original_width": 200,
                            "original_height": 100,
                            "parentID": "p1",
                            "value": {"x": 15, "y": 30, "width": 0.5, "keypointlabels": ["tail"]},
                        },
                    ],
                },
                {"completed_by": 4, "was_cancelled": True, "result": [_rect(1, 1, 1, 1)]},
            ],
            "predictions": [
                {
                    "model_version": "yolo-3",
                    "score": 0.7,
                    "result": [
                        {
                            "id": "b1",
                            "type": "brushlabels",
                            "from_name": "brush",
                            "to_name": "image",
                            "original_width": 200,
                            "original_height": 100,
                            "score": 0.9,
                            "value": {"format": "rle", "rle": ls_brush.encode(mask), "brushlabels": ["dog"]},
                        }
                    ],
                }
            ],
        },
        {"id": 2, "data": {"image": "s3://bucket/deep/key.png"}, "annotations": []},
        {"id": 3, "data": {"image": "/data/upload/7/abc123-x.jpg"}},
        {"id": 4, "data": {"image": "https://host.example/imgs/y.jpg?sig=1"}},
    ]
    result = LS.load(_write(tmp_path, tasks), LoadOptions())
    assert result.rejections == [] and result.records == 3
    names = [image.name for image in result.labels.images]
    assert names == ["photos/a b.jpg", "deep/key.png", "abc123-x.jpg", "imgs/y.jpg"]
    schema = result.labels.schema
    assert schema is not None and schema.task is TaskType.KEYPOINTS
    assert schema.classes == ["cat", "dog"] and schema.keypoints == ["tail"]
    image = result.labels.images[0]
    assert (image.width, image.height) == (200, 100)
    human, model = image.annotations
    assert human.provenance.annotator == "labelstudio:ann@example.com"
    assert isinstance(human.label, ObjectLabels) and human.label.keypoints is not None
    np.testing.assert_allclose(human.label.boxes, [[20, 20, 80, 60]])
    np.testing.assert_allclose(human.label.keypoints, [[[30, 30, 2]]])
    assert model.provenance.model_version == "yolo-3" and model.provenance.score == 0.7
    assert isinstance(model.label, ObjectLabels) and model.label.masks is not None
    np.testing.assert_allclose(model.label.boxes, [[30, 10, 50, 20]])
    np.testing.assert_allclose(model.label.scores, [0.9])  # type: ignore[arg-type]
    np.testing.assert_array_equal(rle_decode(model.label.masks[0]), mask)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("wrap", "prefix"),
    [(lambda t: t, "/0"), (lambda t: {"tasks": t}, "/tasks/0"), (lambda t: t[0], "")],
    ids=["list", "tasks", "single"],
)
def test_accepts_export_import_and_single_task_shapes(tmp_path: Path, wrap: Any, prefix: str) -> None:
    tasks = [{"data": {"image": "a.jpg"}, "annotations": [{"result": [_rect(0, 0, 10, 10), "bad"]}]}]
    result = LS.load(_write(tmp_path, wrap(tasks)), LoadOptions())
    assert result.records == 2 and result.imported == 1
    [rejection] = result.rejections
    assert rejection.locator == f"{prefix}/annotations/0/result/1"


REGION_CASES = [
    ({**_rect(1, 1, 5, 5), "value": {**_rect(1, 1, 5, 5)["value"], "rotation": 30}}, "rotated boxes"),
    (_rect(90, 10, 20, 10), "outside the 200x100 image"),
    (_rect(10, 10, -5, 10), "zero or negative size"),
    (_rect(10, 10, "a", 10), "finite numbers"),  # type: ignore[arg-type]
    (_rect(10, 10, 5, 5, label="zebra"), "unknown class 'zebra'"),
    ({**_rect(1, 1, 5, 5), "original_width": None}, "original_width and original_height"),
    ({**_rect(1, 1, 5, 5), "original_height": 2.5}, "original_height must be an integer"),
    ({**_rect(1, 1, 5, 5), "type": "ellipselabels"}, "unsupported region type 'ellipselabels'"),
    ({**_rect(1, 1, 5, 5), "value": {"x": 1, "y": 1, "width": 5, "height": 5}}, "rectanglelabels"),
    (
        {**_rect(1, 1, 5, 5), "value": {**_rect(1, 1, 5, 5)["value"], "rectanglelabels": ["cat", "dog"]}},
        "exactly one",
    ),
    (
        {
            **_rect(0, 0, 0, 0),
            "type": "polygonlabels",
            "value": {"points": [[1, 1], [2, 2]], "polygonlabels": ["cat"]},
        },
        "at least 3",
    ),
    (
        {
            **_rect(0, 0, 0, 0),
            "type": "brushlabels",
            "value": {"format": "rle", "rle": ONE_SET_PIXEL, "brushlabels": ["cat"]},
        },
        "declares 4 values",
    ),
    (
        {
            **_rect(0, 0, 0, 0),
            "type": "keypointlabels",
            "parentID": "nope",
            "value": {"x": 1, "y": 1, "keypointlabels": ["nose"]},
        },
        "missing parent region 'nope'",
    ),
    ({**_rect(1, 1, 5, 5), "original_width": 300}, "differs from 200x100"),
    ({"type": "choices", "value": {"choices": ["cat"]}, "score": 2}, "score must be"),
    ("not a region", "must be a JSON object"),
]


@pytest.mark.parametrize(("region", "reason"), REGION_CASES)
def test_invalid_regions_are_rejected_with_pointer_and_reason(
    tmp_path: Path, region: Any, reason: str
) -> None:
    schema = LabelSchema(task=TaskType.KEYPOINTS, classes=["cat", "dog"], keypoints=["nose"])
    tasks = [
        {"data": {"image": "a.jpg"}},
        {
            "data": {"image": "b.jpg"},
            "predictions": [{"model_version": "m", "result": [_rect(1, 1, 5, 5, id="ok"), region]}],
        },
    ]
    path = _write(tmp_path, tasks)
    result = LS.load(path, LoadOptions(schema=schema))
    assert result.records == 2 and result.imported == 1
    [rejection] = result.rejections
    assert rejection.file == str(path)
    assert rejection.locator == "/1/predictions/0/result/1"
    assert reason in rejection.reason


def test_whole_tasks_and_containers_are_one_record_each(tmp_path: Path) -> None:
    tasks = [
        {"data": {"image": "../../etc/passwd"}, "annotations": [{"result": [_rect(1, 1, 5, 5)]}]},
        {"data": {"image": "/abs/x.jpg"}},
        {"data": {"image": 5}},
        "not a task",
        {"data": {"image": "ok.jpg"}, "annotations": {"result": []}},
        {"data": {"image": "ok2.jpg"}, "annotations": [{"result": "x"}, 3]},
        {"data": {"image": "ok3.jpg"}, "predictions": [{"score": "high", "result": []}]},
        {"data": {"image": "ftp://h/x.jpg"}},
    ]
    result = LS.load(_write(tmp_path, tasks), LoadOptions())
    reasons = {r.locator: r.reason for r in result.rejections}
    assert "'..' segments" in reasons["/0"]
    assert "absolute" in reasons["/1"]
    assert "data.image" in reasons["/2"]
    assert "JSON object" in reasons["/3"]
    assert "must be a list" in reasons["/4/annotations"]
    assert "'result' must be a list" in reasons["/5/annotations/0"]
    assert "JSON object" in reasons["/5/annotations/1"]
    assert "prediction score" in reasons["/6/predictions/0"]
    assert "scheme 'ftp'" in reasons["/7"]
    assert result.records == len(result.rejections) == 9 and result.imported == 0


def test_id_only_predictions_of_the_quick_export_are_refused_with_a_hint(tmp_path: Path) -> None:
    """Label Studio's quick export (GET /api/projects/<id>/export) lists predictions by id only."""
    task = {"data": {"image": "a.jpg"}, "annotations": [{"result": [_rect(1, 1, 5, 5)]}], "predictions": [7]}
    result = LS.load(_write(tmp_path, [task]), LoadOptions())
    [rejection] = result.rejections
    assert rejection.locator == "/0/predictions/0"
    assert "prediction 7 is only an id" in rejection.reason and "snapshot export" in rejection.reason
    assert result.records == 2 and result.imported == 1


@pytest.mark.parametrize("text", ["", "{", "[1, 2", '{"images": 5}', "null", "\xff\xfe"])
def test_malformed_files_become_one_rejection(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(text.encode("latin-1"))
    result = LS.load(path, LoadOptions())
    assert result.rejections and all(r.file == str(path) and r.reason for r in result.rejections)
    assert result.imported + len(result.rejections) == result.records


def malformed_inputs(folder: Path) -> list[Path]:
    """Distinct malformed Label Studio files: each must load without an exception escaping."""
    rect = _rect(1, 1, 5, 5)
    huge_header = [255, 255, 255, 255, 57, 27, 252, 127, 224]
    contents: dict[str, Any] = {
        "garbage.json": b"\x00\x01garbage\xff",
        "truncated.json": b'[{"data": {"image": "a.jpg"}, "annotations": [{"result": [',
        "number.json": 42,
        "string_tasks.json": ["a", "b"],
        "data_list.json": [{"data": [1, 2]}],
        "annotations_string.json": [{"data": {"image": "a.jpg"}, "annotations": "x"}],
        "result_dict.json": [{"data": {"image": "a.jpg"}, "annotations": [{"result": {"a": 1}}]}],
        "value_list.json": [
            {"data": {"image": "a.jpg"}, "annotations": [{"result": [rect | {"value": []}]}]}
        ],
        "absurd.json": [
            {"data": {"image": "a.jpg"}, "annotations": [{"result": [rect | {"original_width": 10**30}]}]}
        ],
        "nan.json": b'[{"data": {"image": "a.jpg"}, "annotations": [{"result": [{"type": "rectanglelabels",'
        b' "original_width": 10, "original_height": 10, "value": {"x": NaN, "y": Infinity, "width": 1,'
        b' "height": 1, "rectanglelabels": ["a"]}}]}]}]',
        "traversal.json": [{"data": {"image": "/data/local-files/?d=..%2F..%2Fetc%2Fpasswd"}}],
        "traversal_url.json": [{"data": {"image": "http://x/%2e%2e/%2e%2e/etc/passwd"}}],
        "huge_rle.json": [
            {
                "data": {"image": "a.jpg"},
                "annotations": [
                    {
                        "result": [
                            rect
                            | {
                                "type": "brushlabels",
                                "original_width": 1000,
                                "original_height": 1000,
                                "value": {"format": "rle", "rle": huge_header, "brushlabels": ["a"]},
                            }
                        ]
                    }
                ],
            }
        ],
        "huge_size_rle.json": [
            {
                "data": {"image": "a.jpg"},
                "annotations": [
                    {
                        "result": [
                            rect
                            | {
                                "type": "brushlabels",
                                "original_width": 30000,
                                "original_height": 30000,
                                "value": {"format": "rle", "rle": huge_header, "brushlabels": ["a"]},
                            }
                        ]
                    }
                ],
            }
        ],
        "brush_no_size.json": [
            {
                "data": {"image": "a.jpg"},
                "annotations": [
                    {
                        "result": [
                            {
                                "type": "brushlabels",
                                "value": {"format": "rle", "rle": ONE_SET_PIXEL, "brushlabels": ["a"]},
                            }
                        ]
                    }
                ],
            }
        ],
        "brush_rle_strings.json": [
            {
                "data": {"image": "a.jpg"},
                "annotations": [
                    {
                        "result": [
                            rect
                            | {"type": "brushlabels", "value": {"rle": ["x", None], "brushlabels": ["a"]}}
                        ]
                    }
                ],
            }
        ],
        "dangling_parent.json": [
            {
                "data": {"image": "a.jpg"},
                "annotations": [
                    {
                        "result": [
                            rect
                            | {
                                "type": "keypointlabels",
                                "parentID": "ghost",
                                "value": {"x": 1, "y": 1, "keypointlabels": ["nose"]},
                            }
                        ]
                    }
                ],
            }
        ],
        "wrong_types.json": [
            {
                "data": {"image": "a.jpg"},
                "annotations": [{"completed_by": [1], "result": [{"type": 5, "value": 3}]}],
                "predictions": [{"model_version": {"v": 1}, "score": True, "result": [None]}],
            }
        ],
        "polygon_points_bad.json": [
            {
                "data": {"image": "a.jpg"},
                "annotations": [
                    {
                        "result": [
                            rect
                            | {
                                "type": "polygonlabels",
                                "value": {"points": [[1], "x", 3], "polygonlabels": ["a"]},
                            }
                        ]
                    }
                ],
            }
        ],
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "tasks_not_list.json": {"tasks": {"a": 1}},
    }
    paths = []
    for name, content in contents.items():
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode("utf-8"))
        paths.append(path)
    return paths


def test_there_are_enough_malformed_inputs(tmp_path: Path) -> None:
    assert len({p.read_bytes() for p in malformed_inputs(tmp_path)}) == MALFORMED_COUNT >= 15


MALFORMED_COUNT = 21


@pytest.mark.parametrize("index", range(MALFORMED_COUNT))
def test_malformed_inputs_never_raise(tmp_path: Path, index: int) -> None:
    path = malformed_inputs(tmp_path)[index]
    result = LS.load(path, LoadOptions())
    assert result.rejections, path.name
    assert all(r.file == str(path) and r.locator.startswith("/") and r.reason for r in result.rejections)
    assert result.imported + len(result.rejections) == result.records
    assert result.imported == 0


# -- labeling config -------------------------------------------------------------------------
CONFIG_SCHEMAS = [
    LabelSchema(task=TaskType.CLASSIFICATION, classes=["cat", 'say "hi" & <b>']),
    LabelSchema(task=TaskType.DETECTION, classes=["cat", "dog"]),
    LabelSchema(task=TaskType.SEGMENTATION, classes=["cell"]),
    LabelSchema(task=TaskType.KEYPOINTS, classes=["person"], keypoints=["nose", "left_eye"]),
]


@pytest.mark.parametrize("schema", CONFIG_SCHEMAS, ids=lambda s: str(s.task))
def test_labeling_config_per_task(schema: LabelSchema) -> None:
    root = ET.fromstring(labeling_config(schema))  # noqa: S314 - our own output
    assert root.tag == "View"
    image = root.find("Image")
    assert image is not None and image.get("name") == "image" and image.get("value") == "$image"
    controls = {child.tag: child for child in root if child.tag != "Image"}
    expected = {
        TaskType.CLASSIFICATION: {"Choices": "choice"},
        TaskType.DETECTION: {"RectangleLabels": "label"},
        TaskType.SEGMENTATION: {
            "RectangleLabels": "label",
            "PolygonLabels": "polygon",
            "BrushLabels": "brush",
        },
        TaskType.KEYPOINTS: {"RectangleLabels": "label", "KeyPointLabels": "kp"},
    }[schema.task]
    assert {tag: c.get("name") for tag, c in controls.items()} == expected
    for tag, control in controls.items():
        assert control.get("toName") == "image"
        values = [child.get("value") for child in control]
        assert values == (schema.keypoints if tag == "KeyPointLabels" else schema.classes)


def test_save_writes_config_names_that_match_regions(tmp_path: Path) -> None:
    schema = LabelSchema(task=TaskType.KEYPOINTS, classes=["person"], keypoints=["nose", "eye"])
    label = ObjectLabels(
        boxes=np.array([[10.0, 10.0, 50.0, 40.0]]),
        class_names=("person",),
        keypoints=np.array([[[20.0, 20.0, 2.0], [0.0, 0.0, 0.0]]]),
    )
    from visionloop.core.provenance import Provenance

    image = LabeledImage("x.jpg", 100, 50, [Annotation(label, Provenance.human("t"))])
    tasks_path, config_path = LS.save(LabelSet(schema, [image]), tmp_path / "out.json", SaveOptions())
    assert tasks_path == tmp_path / "out.json" and config_path == tmp_path / "labeling_config.xml"
    root = ET.fromstring(config_path.read_text())  # noqa: S314 - our own output
    names = {c.get("name") for c in root}
    [task] = json.loads(tasks_path.read_text())
    regions = task["annotations"][0]["result"]
    assert {r["from_name"] for r in regions} <= names
    assert [r["type"] for r in regions] == ["rectanglelabels", "keypointlabels"]
    assert regions[1]["parentID"] == regions[0]["id"]
    assert len({r["id"] for r in regions}) == len(regions)
    value = regions[0]["value"]
    assert value.pop("rectanglelabels") == ["person"]
    assert value == pytest.approx({"x": 10.0, "y": 20.0, "width": 40.0, "height": 60.0, "rotation": 0})
    assert regions[1]["value"]["x"] == pytest.approx(20.0) and regions[1]["value"]["y"] == pytest.approx(40.0)


def test_a_malformed_image_url_is_rejected_not_raised(tmp_path: Path) -> None:
    """Found by fuzzing: urlsplit's ValueError ("Invalid IPv6 URL") escaped the loader."""
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([{"data": {"image": "http://[a/b.png"}}]))
    result = LS.load(path, LoadOptions())
    [rejection] = result.rejections
    assert rejection.locator == "/0" and "malformed" in rejection.reason


def test_labels_that_cannot_be_schema_names_are_rejected_not_raised(tmp_path: Path) -> None:
    """Found by fuzzing: a control character or comma in a label reached the inferred schema,
    whose pydantic ValidationError escaped the loader."""
    keypoint = {
        "type": "keypointlabels",
        "original_width": 200,
        "original_height": 100,
        "parentID": "r1",
        "value": {"x": 20, "y": 30, "keypointlabels": ["no\x08se"]},
    }
    tasks = [
        {"data": {"image": "a.jpg"}, "annotations": [{"result": [_rect(10, 20, 30, 40), keypoint]}]},
        {"data": {"image": "b.jpg"}, "annotations": [{"result": [_rect(1, 1, 5, 5, label="a,b")]}]},
    ]
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks))
    result = LS.load(path, LoadOptions())
    reasons = [r.reason for r in result.rejections]
    assert len(reasons) == 2 and all("is not a valid name" in reason for reason in reasons), reasons
    assert result.labels.schema is not None and result.labels.schema.classes == ["cat"]
