"""COCO AP for boxes, masks and keypoints on tiny synthetic scenes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from visionloop.core.errors import ValidationError
from visionloop.core.labels import ObjectLabels
from visionloop.formats.masks import rle_compress, rle_encode
from visionloop.metrics.coco import detection_map, keypoint_map, mask_map

SIZE = (120, 160)  # height, width
CLASSES = ["cat", "dog"]
BOXES = np.array([[10.0, 10.0, 60.0, 70.0], [80.0, 20.0, 150.0, 100.0]])


def objects(boxes: np.ndarray, names: tuple[str, ...], **kwargs: Any) -> ObjectLabels:
    return ObjectLabels(boxes=boxes, class_names=names, **kwargs)


def empty() -> ObjectLabels:
    return ObjectLabels(boxes=np.zeros((0, 4)), class_names=())


def box_mask(box: np.ndarray, size: tuple[int, int] = SIZE) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    x0, y0, x1, y1 = box.astype(int)
    mask[y0:y1, x0:x1] = True
    return mask


def test_perfect_boxes_give_ap_one() -> None:
    truth = objects(BOXES, ("cat", "dog"))
    prediction = objects(BOXES, ("cat", "dog"), scores=np.array([0.9, 0.8]))
    metrics = detection_map([truth, empty()], [prediction, empty()], [SIZE, SIZE], CLASSES)
    assert metrics["map"] == pytest.approx(1.0)
    assert metrics["map50"] == pytest.approx(1.0)
    assert metrics["mar100"] == pytest.approx(1.0)
    assert metrics["per_class_ap"] == pytest.approx({"cat": 1.0, "dog": 1.0})
    assert metrics["map_small"] is None  # no small objects: COCOeval's -1 becomes None
    curve = metrics["pr_curves"]["cat"]
    assert len(curve["recall"]) == len(curve["precision"]) == 101
    assert min(curve["precision"]) == pytest.approx(1.0)
    assert (metrics["images"], metrics["truths"], metrics["predictions"]) == (2, 2, 2)


def test_shifted_boxes_lower_ap() -> None:
    truth = objects(BOXES, ("cat", "dog"))
    shifted = objects(BOXES + np.array([15.0, 0.0, 15.0, 0.0]), ("cat", "dog"))  # IoU 0.54 and 0.65
    metrics = detection_map([truth], [shifted], [SIZE], CLASSES)
    assert metrics["map50"] == pytest.approx(1.0)
    assert metrics["map75"] == pytest.approx(0.0)
    assert metrics["map"] == pytest.approx((1 / 10 + 3 / 10) / 2)  # thresholds .50 / .50-.60 pass


def test_false_positives_and_missing_predictions() -> None:
    truths = [objects(BOXES[:1], ("cat",)), objects(BOXES[1:], ("dog",)), empty()]
    predictions = [
        objects(BOXES[:1], ("cat",), scores=np.array([0.5])),
        empty(),  # the dog is missed
        objects(BOXES[:1], ("cat",), scores=np.array([0.9])),  # a confident false positive
    ]
    metrics = detection_map(truths, predictions, [SIZE] * 3, CLASSES)
    assert metrics["per_class_ap"]["dog"] == pytest.approx(0.0)
    assert 0.0 < metrics["per_class_ap"]["cat"] < 1.0
    assert metrics["mar100"] == pytest.approx(0.5)


def test_all_empty_gives_none_metrics() -> None:
    metrics = detection_map([empty()], [empty()], [SIZE], CLASSES)
    assert metrics["map"] is None and metrics["mar100"] is None
    assert metrics["per_class_ap"] == {"cat": None, "dog": None}
    assert metrics["pr_curves"] == {}
    assert detection_map([], [], [], CLASSES)["map"] is None


def test_predictions_without_ground_truth_leave_ap_undefined() -> None:
    metrics = detection_map([empty()], [objects(BOXES[:1], ("cat",))], [SIZE], CLASSES)
    assert metrics["map"] is None


def test_mask_ap_judges_the_mask_not_the_box() -> None:
    gt_masks = tuple(rle_encode(box_mask(box)) for box in BOXES)
    truth = objects(BOXES, ("cat", "dog"), masks=gt_masks)
    right = objects(BOXES, ("cat", "dog"), masks=gt_masks)
    # right boxes, but each mask covers only a thin strip of its box
    strips = []
    for box in BOXES:
        mask = box_mask(box)
        mask[int(box[1]) + 5 :, :] = False
        strips.append(rle_encode(mask))
    wrong = objects(BOXES, ("cat", "dog"), masks=tuple(strips))

    assert mask_map([truth], [right], [SIZE], CLASSES)["map"] == pytest.approx(1.0)
    assert mask_map([truth], [wrong], [SIZE], CLASSES)["map"] == pytest.approx(0.0)
    assert detection_map([truth], [wrong], [SIZE], CLASSES)["map"] == pytest.approx(1.0)


def test_mask_ground_truth_from_polygons_and_compressed_predictions() -> None:
    box = BOXES[0]
    x0, y0, x1, y1 = box
    ring = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    truth = objects(box[None], ("cat",), polygons=((ring,),))
    predicted_mask = rle_compress(rle_encode(box_mask(box)))
    assert isinstance(predicted_mask["counts"], str)
    prediction = objects(box[None], ("cat",), masks=(predicted_mask,))
    assert mask_map([truth], [prediction], [SIZE], CLASSES)["map"] > 0.9


def test_mask_map_rejects_missing_shapes_and_wrong_sizes() -> None:
    truth = objects(BOXES[:1], ("cat",))
    prediction = objects(BOXES[:1], ("cat",), masks=(rle_encode(box_mask(BOXES[0])),))
    with pytest.raises(ValidationError, match="neither a mask nor a polygon"):
        mask_map([truth], [prediction], [SIZE], CLASSES)
    with_mask = objects(BOXES[:1], ("cat",), masks=(rle_encode(box_mask(BOXES[0])),))
    with pytest.raises(ValidationError, match="has no mask"):
        mask_map([with_mask], [truth], [SIZE], CLASSES)
    with pytest.raises(ValidationError, match="does not match the image size"):
        mask_map([with_mask], [prediction], [(100, 100)], CLASSES)


def keypoint_objects(offset: float, **kwargs: Any) -> ObjectLabels:
    points = np.array([[[20.0, 20.0, 2], [40.0, 30.0, 2], [30.0, 60.0, 1], [0.0, 0.0, 0]]])
    points[:, :, :2] += offset
    return objects(BOXES[:1], ("cat",), keypoints=points, **kwargs)


def test_keypoint_ap_is_one_for_exact_keypoints_and_drops_with_offset() -> None:
    truth = keypoint_objects(0.0)
    assert keypoint_map([truth], [keypoint_objects(0.0)], [SIZE], CLASSES)["map"] == pytest.approx(1.0)
    near = keypoint_map([truth], [keypoint_objects(3.0)], [SIZE], CLASSES)["map"]
    far = keypoint_map([truth], [keypoint_objects(15.0)], [SIZE], CLASSES)["map"]
    assert 0.0 <= far < near < 1.0
    # larger sigmas forgive the same offset
    lenient = keypoint_map([truth], [keypoint_objects(3.0)], [SIZE], CLASSES, sigmas=np.full(4, 0.5))["map"]
    assert lenient == pytest.approx(1.0)


def test_keypoint_map_checks_sigmas_and_keypoints() -> None:
    truth = keypoint_objects(0.0)
    with pytest.raises(ValidationError, match="4 OKS sigmas"):
        keypoint_map([truth], [truth], [SIZE], CLASSES, sigmas=[0.1, 0.1])
    with pytest.raises(ValidationError, match="no keypoints"):
        keypoint_map([truth], [objects(BOXES[:1], ("cat",))], [SIZE], CLASSES)


def test_bad_input_is_rejected() -> None:
    truth = objects(BOXES[:1], ("cow",))
    with pytest.raises(ValidationError, match="unknown class 'cow'"):
        detection_map([truth], [empty()], [SIZE], CLASSES)
    with pytest.raises(ValidationError, match="one truth, prediction and image size"):
        detection_map([empty()], [], [SIZE], CLASSES)
    with pytest.raises(ValidationError, match="size must be positive"):
        detection_map([empty()], [empty()], [(0, 10)], CLASSES)
