"""The data model validates its input with messages that say what was expected."""

from __future__ import annotations

from contextlib import AbstractContextManager
from contextlib import nullcontext as does_not_raise
from typing import Any

import numpy as np
import pytest

from visionloop.core.errors import (
    ConfigError,
    NotFoundError,
    UnsafePathError,
    ValidationError,
    VisionloopError,
    http_status_for,
)
from visionloop.core.labels import ClassLabel, ObjectLabels, label_from_dict
from visionloop.core.media import Split, split_for_hash
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType, parse_skeleton


@pytest.mark.parametrize(
    ("kwargs", "expectation"),
    [
        ({"task": "classification", "classes": ["cat", "dog"]}, does_not_raise()),
        ({"task": "classification", "classes": []}, pytest.raises(ValueError, match="at least one class")),
        ({"task": "detection", "classes": ["a", "a"]}, pytest.raises(ValueError, match="duplicate class")),
        ({"task": "detection", "classes": ["a,b"]}, pytest.raises(ValueError, match="without commas")),
        (
            {"task": "keypoints", "classes": ["person"]},
            pytest.raises(ValueError, match="needs keypoint names"),
        ),
        (
            {"task": "detection", "classes": ["a"], "keypoints": ["nose"]},
            pytest.raises(ValueError, match="only apply to keypoints"),
        ),
        (
            {"task": "keypoints", "classes": ["p"], "keypoints": ["a", "b"], "skeleton": [("a", "c")]},
            pytest.raises(ValueError, match="unknown keypoint 'c'"),
        ),
    ],
)
def test_label_schema_validation(
    kwargs: dict[str, object], expectation: AbstractContextManager[object]
) -> None:
    with expectation:
        LabelSchema.model_validate(kwargs)


def test_skeleton_parses_indices_and_names() -> None:
    names = ["nose", "left_eye", "right_eye"]
    assert parse_skeleton("1-2, 1-3", names) == [("nose", "left_eye"), ("nose", "right_eye")]
    assert parse_skeleton("nose-right_eye", names) == [("nose", "right_eye")]
    schema = LabelSchema(
        task=TaskType.KEYPOINTS, classes=["face"], keypoints=names, skeleton=[("nose", "right_eye")]
    )
    assert schema.skeleton_indices == [(0, 2)]
    with pytest.raises(ValueError, match=r"outside 1\.\.3"):
        parse_skeleton("0-1", names)
    with pytest.raises(ValueError, match="must look like"):
        parse_skeleton("1-2-3", names)


def test_provenance_requires_the_fields_of_its_kind() -> None:
    assert Provenance.human("alice").kind is ProvenanceKind.HUMAN
    assert Provenance.auto("m1", "cal-7", 0.97).calibration_run == "cal-7"
    with pytest.raises(ValueError, match="annotator"):
        Provenance(kind=ProvenanceKind.HUMAN)
    with pytest.raises(ValueError, match="model version"):
        Provenance(kind=ProvenanceKind.MODEL)
    with pytest.raises(ValueError, match="calibration run"):
        Provenance(kind=ProvenanceKind.AUTO, model_version="m1")
    with pytest.raises(ValueError):
        Provenance.model("m1", score=1.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"boxes": np.zeros((2, 4)), "class_names": ("a",)}, "expected 2 class names"),
        ({"boxes": np.array([[5.0, 0, 1, 1]]), "class_names": ("a",)}, "x1 >= x0"),
        ({"boxes": np.array([[0, 0, np.nan, 1]]), "class_names": ("a",)}, "finite"),
        ({"boxes": np.zeros((1, 4)), "class_names": ("a",), "scores": np.array([2.0])}, "within"),
        ({"boxes": np.zeros((1, 4)), "class_names": ("a",), "keypoints": np.zeros((1, 3))}, "shape"),
        (
            {"boxes": np.zeros((1, 4)), "class_names": ("a",), "keypoints": np.full((1, 2, 3), 5.0)},
            "visibility",
        ),
        ({"boxes": np.zeros((1, 4)), "class_names": ("a",), "masks": ({"rle": 1},)}, "COCO RLE"),
        ({"boxes": np.zeros((1, 4)), "class_names": ("a",), "keypoint_scores": np.ones((1, 2))}, "need"),
        (
            {
                "boxes": np.zeros((1, 4)),
                "class_names": ("a",),
                "keypoints": np.zeros((1, 2, 3)),
                "keypoint_scores": np.ones((1, 3)),
            },
            "shape",
        ),
        (
            {
                "boxes": np.zeros((1, 4)),
                "class_names": ("a",),
                "keypoints": np.zeros((1, 2, 3)),
                "keypoint_scores": np.array([[0.5, np.nan]]),
            },
            "within",
        ),
    ],
)
def test_object_labels_reject_inconsistent_columns(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ObjectLabels(**kwargs)  # type: ignore[arg-type]


def test_labels_round_trip_through_dicts() -> None:
    label = ObjectLabels(boxes=np.array([[1, 2, 3, 4]]), class_names=("cat",), scores=np.array([0.5]))
    again = label_from_dict(label.to_dict())
    assert isinstance(again, ObjectLabels)
    np.testing.assert_array_equal(again.boxes, label.boxes)
    posed = ObjectLabels(
        boxes=np.array([[1, 2, 3, 4]]),
        class_names=("cat",),
        keypoints=np.array([[[1.5, 2.5, 2], [2.0, 3.0, 1]]]),
        keypoint_scores=np.array([[0.9, 0.1]]),
    )
    posed_again = label_from_dict(posed.to_dict())
    assert isinstance(posed_again, ObjectLabels)
    np.testing.assert_array_equal(posed_again.keypoint_scores, posed.keypoint_scores)  # type: ignore[arg-type]
    assert label_from_dict(ClassLabel("dog", 0.25).to_dict()) == ClassLabel("dog", 0.25)
    spread = ClassLabel("dog", 0.75, probabilities=(0.25, 0.75))
    assert label_from_dict(spread.to_dict()) == spread
    with pytest.raises(ValidationError, match="sum to 1"):
        ClassLabel("dog", 0.5, probabilities=(0.5, 0.6))
    assert len(ObjectLabels(boxes=np.zeros((0, 4)), class_names=())) == 0
    with pytest.raises(ValidationError, match="unknown label type"):
        label_from_dict({"type": "polygon"})
    with pytest.raises(ValidationError, match="malformed objects label"):
        label_from_dict({"type": "objects", "boxes": [[0, 0, 1, 1]]})


def test_auto_split_is_deterministic_and_follows_ratios() -> None:
    ratios = {Split.TRAIN: 0.7, Split.VAL: 0.2, Split.TEST: 0.1}
    shas = [f"{i:064x}" for i in range(3000)]
    first = [split_for_hash(sha, ratios) for sha in shas]
    assert first == [split_for_hash(sha, ratios) for sha in shas]
    share = first.count(Split.TRAIN) / len(first)
    assert 0.65 < share < 0.75
    assert {split_for_hash(sha, {Split.VAL: 1.0}) for sha in shas[:50]} == {Split.VAL}


def test_every_error_maps_to_an_http_status() -> None:
    assert http_status_for(UnsafePathError("x")) == 400
    assert http_status_for(NotFoundError("x")) == 404
    assert http_status_for(ConfigError("x")) == 400
    assert http_status_for(VisionloopError("x")) == 500


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "objects", "boxes": [[0, 0, 10**400, 1]], "class_names": ["a"]},
        {"type": "objects", "boxes": [[0, 0, 1, 1]], "class_names": ["a"], "scores": [-(10**400)]},
        {"type": "class", "class_name": "a", "probabilities": [10**400]},
    ],
)
def test_numbers_too_large_for_a_float_are_malformed_labels(payload: dict[str, Any]) -> None:
    """Found by the fuzz harness: OverflowError escaped ``label_from_dict``."""
    with pytest.raises(ValidationError, match="int too large"):
        label_from_dict(payload)
