"""COCO: lossless round trips, files pycocotools reads and writes, and clear rejections."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from strategies import assert_label_sets_equal, label_sets

from visionloop.core.schema import TaskType
from visionloop.formats.masks import rle_decode
from visionloop.formats.model import LabelSet
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format

COCO_FORMAT = get_format("coco")
ROUND_TRIP = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _round_trip(labels: LabelSet, predictions: bool = False) -> LabelSet:
    with tempfile.TemporaryDirectory() as tmp:
        [path] = COCO_FORMAT.save(labels, Path(tmp), SaveOptions())
        result = COCO_FORMAT.load(path, LoadOptions())
        assert result.rejections == [], result.rejections
        if predictions:
            [results] = COCO_FORMAT.save(labels, Path(tmp) / "results.json", SaveOptions(predictions=True))
            predicted = COCO_FORMAT.load(results, LoadOptions(reference=path))
            assert predicted.rejections == []
            by_name = {image.name: image for image in result.labels.images}
            for image in predicted.labels.images:
                by_name[image.name].annotations.extend(image.annotations)
        return result.labels


@ROUND_TRIP
@given(labels=label_sets(TaskType.DETECTION, predictions=True))
def test_detection_round_trip_with_predictions(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels, predictions=True))


@ROUND_TRIP
@given(labels=label_sets(TaskType.SEGMENTATION, polygons=True))
def test_polygon_segmentation_round_trip(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels))


@ROUND_TRIP
@given(labels=label_sets(TaskType.SEGMENTATION, masks=True))
def test_rle_segmentation_round_trip(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels))


@ROUND_TRIP
@given(labels=label_sets(TaskType.KEYPOINTS))
def test_keypoints_round_trip_keeps_the_skeleton(labels: LabelSet) -> None:
    back = _round_trip(labels)
    assert back.schema == labels.schema
    assert_label_sets_equal(labels, back)


def _gt_file(tmp_path: Path) -> Path:
    """A COCO file as pycocotools-based tools write it: compressed RLE, polygons, keypoints."""
    mask = np.zeros((40, 60), dtype=np.uint8, order="F")
    mask[5:15, 10:30] = 1
    rle = coco_mask.encode(mask)
    rle["counts"] = rle["counts"].decode("ascii")
    data = {
        "images": [{"id": 7, "file_name": "imgs/x.jpg", "width": 60, "height": 40}],
        "categories": [{"id": 3, "name": "cell"}, {"id": 9, "name": "blob"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 3,
                "bbox": [10, 5, 20, 10],
                "iscrowd": 1,
                "segmentation": rle,
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 9,
                "bbox": [1.5, 2.5, 10, 10],
                "iscrowd": 0,
                "segmentation": [[1.5, 2.5, 11.5, 2.5, 11.5, 12.5]],
            },
        ],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(data))
    return path


def test_reads_pycocotools_rle_and_polygons_exactly(tmp_path: Path) -> None:
    path = _gt_file(tmp_path)
    result = COCO_FORMAT.load(path, LoadOptions())
    assert result.rejections == [] and result.records == 2 + 1 + 2
    [image] = result.labels.images
    [annotation] = image.annotations
    label = annotation.label
    reference = COCO(str(path))
    assert label.masks is not None and label.masks[0] is not None  # type: ignore[union-attr]
    np.testing.assert_array_equal(
        rle_decode(label.masks[0]), reference.annToMask(reference.anns[1]).astype(bool)
    )  # type: ignore[union-attr]
    np.testing.assert_allclose(label.boxes, [[10, 5, 30, 15], [1.5, 2.5, 11.5, 12.5]])  # type: ignore[union-attr]
    assert label.attributes[0] == {"iscrowd": 1}  # type: ignore[union-attr]


def test_exported_files_load_in_pycocotools_with_identical_masks(tmp_path: Path) -> None:
    labels = COCO_FORMAT.load(_gt_file(tmp_path), LoadOptions()).labels
    [out] = COCO_FORMAT.save(labels, tmp_path / "out.json", SaveOptions())
    original, exported = COCO(str(tmp_path / "gt.json")), COCO(str(out))
    assert len(exported.anns) == 2
    for ann in exported.anns.values():
        match = next(
            a for a in original.anns.values() if a["category_id"] == {1: 3, 2: 9}[ann["category_id"]]
        )
        np.testing.assert_array_equal(exported.annToMask(ann), original.annToMask(match))
        np.testing.assert_allclose(ann["bbox"], match["bbox"])


@pytest.mark.parametrize(
    ("annotation", "reason"),
    [
        ({"image_id": 1, "category_id": 1, "bbox": [1, 1, -5, 4]}, "zero or negative size"),
        ({"image_id": 1, "category_id": 1, "bbox": [90, 1, 50, 4]}, "outside the 100x50 image"),
        ({"image_id": 1, "category_id": 1, "bbox": [1, 1, "a", 4]}, "finite numbers"),
        (
            {"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 4], "segmentation": [[1, 1, 2, 2]]},
            "at least 3",
        ),
        ({"image_id": 1, "category_id": 42, "bbox": [1, 1, 5, 4]}, "unknown category id 42"),
        ({"image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 4]}, "missing image id 99"),
        ({"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 4], "score": 3}, "score must be"),
        (
            {
                "image_id": 1,
                "category_id": 1,
                "bbox": [1, 1, 5, 4],
                "segmentation": {"size": [9, 9], "counts": []},
            },
            "does not match",
        ),
        ("not an object", "must be an object"),
    ],
)
def test_invalid_annotations_are_rejected_with_pointer_and_reason(
    tmp_path: Path, annotation: object, reason: str
) -> None:
    good = {"id": 100, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 4]}
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [good, annotation],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    result = COCO_FORMAT.load(path, LoadOptions())
    assert result.records == 4 and result.imported == 3
    [rejection] = result.rejections
    assert rejection.file == str(path) and rejection.locator == "/annotations/1"
    assert reason in rejection.reason


def test_duplicates_traversal_and_unknown_classes(tmp_path: Path) -> None:
    from visionloop.core.schema import LabelSchema

    data = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 10, "height": 10},
            {"id": 1, "file_name": "b.jpg", "width": 10, "height": 10},
            {"id": 2, "file_name": "../../etc/passwd", "width": 10, "height": 10},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "zebra"}],
        "annotations": [
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]},
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 3, 3]},
            {"id": 6, "image_id": 1, "category_id": 2, "bbox": [0, 0, 3, 3]},
        ],
    }
    path = tmp_path / "dupes.json"
    path.write_text(json.dumps(data))
    schema = LabelSchema(task=TaskType.DETECTION, classes=["cat"])
    result = COCO_FORMAT.load(path, LoadOptions(schema=schema))
    reasons = {r.locator: r.reason for r in result.rejections}
    assert "duplicate image id" in reasons["/images/1"]
    assert "'..' segments" in reasons["/images/2"]
    assert "duplicate annotation id" in reasons["/annotations/1"]
    assert "unknown class 'zebra'" in reasons["/annotations/2"]
    assert result.imported + len(result.rejections) == result.records


def test_list_or_object_ids_are_rejected_not_raised(tmp_path: Path) -> None:
    """Found by the fuzz harness: an unhashable id crashed the fast path with a TypeError."""
    annotations = [
        {"id": [1], "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 4]},
        {"id": 2, "image_id": {"a": 1}, "category_id": 1, "bbox": [1, 1, 5, 4]},
        {"id": 3, "image_id": 1, "category_id": [1], "bbox": [1, 1, 5, 4]},
    ]
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": annotations,
    }
    path = tmp_path / "ids.json"
    path.write_text(json.dumps(data))
    result = COCO_FORMAT.load(path, LoadOptions())
    reasons = [r.reason for r in result.rejections]
    assert reasons == [
        "id must be a number or string, got list",
        "image_id must be a number or string, got dict",
        "category_id must be a number or string, got list",
    ]
    assert result.imported + len(result.rejections) == result.records


_BROKEN = {
    "empty.json": "",
    "truncated.json": '{"images": [{"id": 1',
    "unclosed-list.json": "[1, 2",
    "images-not-list.json": '{"images": 5}',
    "null.json": "null",
    "binary.json": "\xff\xfe\x00garbage",
    "nan.json": '{"images": [{"id": 1, "file_name": "a.jpg", "width": NaN, "height": 1}]}',
    "deep.json": "[" * 5000 + "]" * 5000,
    "string-ids.json": '{"images": [{"id": true, "file_name": "a.jpg", "width": 1, "height": 1}]}',
    "absolute-name.json": '{"images": [{"id": 1, "file_name": "/etc/passwd", "width": 1, "height": 1}]}',
    "huge-size.json": '{"images": [{"id": 1, "file_name": "a.jpg", "width": -4, "height": 1e400}]}',
    "results-without-reference.json": '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]',
    "bad-skeleton.json": '{"categories": [{"id": 1, "name": "p", "keypoints": ["a"], "skeleton": [[1, 9]]}]}',
    "bad-rle.json": (
        '{"images": [{"id": 1, "file_name": "a.jpg", "width": 2, "height": 2}],'
        ' "categories": [{"id": 1, "name": "c"}], "annotations": [{"id": 1, "image_id": 1,'
        ' "category_id": 1, "bbox": [0, 0, 1, 1],'
        ' "segmentation": {"size": [2, 2], "counts": [1, 99999999999]}}]}'
    ),
}


def malformed_inputs(folder: Path) -> list[Path]:
    """Broken COCO files for the shared bad-input corpus."""
    paths = []
    for name, text in _BROKEN.items():
        path = folder / name
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        paths.append(path)
    return paths


def test_malformed_files_are_rejected_not_raised(tmp_path: Path) -> None:
    for path in malformed_inputs(tmp_path):
        result = COCO_FORMAT.load(path, LoadOptions())
        assert result.rejections, path.name
        assert all(r.file == str(path) and r.locator and r.reason for r in result.rejections), path.name
        assert result.imported + len(result.rejections) == result.records, path.name


def test_results_file_with_unusable_reference_is_rejected_not_raised(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]))
    for text in ("{broken", "[1, 2]"):
        reference = tmp_path / "gt.json"
        reference.write_text(text)
        result = COCO_FORMAT.load(results, LoadOptions(reference=reference))
        assert (result.records, result.imported) == (1, 0)
        assert "unusable reference file" in result.rejections[0].reason
