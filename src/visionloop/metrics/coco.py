"""COCO-style average precision for boxes, masks and keypoints, computed by pycocotools' COCOeval.

The COCO objects are built in memory from :class:`~visionloop.core.labels.ObjectLabels` (one per
image, truths and predictions in the same order) and pycocotools' progress printing is swallowed.
The summary numbers are read straight from COCOeval's accumulated precision/recall arrays rather
than from ``summarize()`` (which prints and hard-codes ``maxDets``); an average COCOeval marks as
undefined (-1, e.g. no ground truth in that area range) is reported as ``None``.

Returned keys (all floats or ``None``):

* boxes and masks: ``map`` (AP at IoU .50:.95), ``map50``, ``map75``, ``map_small``,
  ``map_medium``, ``map_large``, ``mar1``, ``mar10``, ``mar100`` (AR given at most 1/10/100
  detections per image), ``mar_small``, ``mar_medium``, ``mar_large``;
* keypoints (OKS instead of IoU, at most 20 detections per image as in COCO): ``map``, ``map50``,
  ``map75``, ``map_medium``, ``map_large``, ``mar20``, ``mar_medium``, ``mar_large``;

plus ``per_class_ap`` (class -> AP at .50:.95 or ``None`` without ground truth), ``pr_curves``
(class -> ``{"recall": [...], "precision": [...]}`` at IoU/OKS 0.5 on COCO's 101 recall points,
only for classes with ground truth), ``iou_type``, ``classes``, ``images``, ``truths`` and
``predictions`` (counts).

Areas (which decide small/medium/large): a ground-truth object's area is its mask area when it has a
mask or polygon, else its box area; a prediction's is its mask area for ``segm`` and its box area
otherwise. Predictions without scores count as score 1.0. An object whose ``attributes`` say
``iscrowd`` is a crowd region, as in COCO.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from visionloop.core.errors import ValidationError
from visionloop.core.labels import ObjectLabels
from visionloop.formats.masks import polygon_area, polygons_to_mask, rle_area

DEFAULT_OKS_SIGMA = 0.05

_BOX_SUMMARY: tuple[tuple[str, bool, float | None, str, int], ...] = (
    ("map", True, None, "all", 100),
    ("map50", True, 0.5, "all", 100),
    ("map75", True, 0.75, "all", 100),
    ("map_small", True, None, "small", 100),
    ("map_medium", True, None, "medium", 100),
    ("map_large", True, None, "large", 100),
    ("mar1", False, None, "all", 1),
    ("mar10", False, None, "all", 10),
    ("mar100", False, None, "all", 100),
    ("mar_small", False, None, "small", 100),
    ("mar_medium", False, None, "medium", 100),
    ("mar_large", False, None, "large", 100),
)
_KEYPOINT_SUMMARY: tuple[tuple[str, bool, float | None, str, int], ...] = (
    ("map", True, None, "all", 20),
    ("map50", True, 0.5, "all", 20),
    ("map75", True, 0.75, "all", 20),
    ("map_medium", True, None, "medium", 20),
    ("map_large", True, None, "large", 20),
    ("mar20", False, None, "all", 20),
    ("mar_medium", False, None, "medium", 20),
    ("mar_large", False, None, "large", 20),
)


def detection_map(
    truths: Sequence[ObjectLabels],
    predictions: Sequence[ObjectLabels],
    image_sizes: Sequence[tuple[int, int]],
    classes: Sequence[str],
) -> dict[str, Any]:
    """Box AP/AR (COCOeval ``bbox``); ``image_sizes`` are ``(height, width)`` per image."""
    return _evaluate("bbox", truths, predictions, image_sizes, classes, None)


def mask_map(
    truths: Sequence[ObjectLabels],
    predictions: Sequence[ObjectLabels],
    image_sizes: Sequence[tuple[int, int]],
    classes: Sequence[str],
) -> dict[str, Any]:
    """Mask AP/AR (COCOeval ``segm``). A ground-truth object's shape is its RLE mask or, where that
    is ``None``, its polygons rasterised as COCO does; every prediction needs an RLE mask."""
    return _evaluate("segm", truths, predictions, image_sizes, classes, None)


def keypoint_map(
    truths: Sequence[ObjectLabels],
    predictions: Sequence[ObjectLabels],
    image_sizes: Sequence[tuple[int, int]],
    classes: Sequence[str],
    sigmas: npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """Keypoint AP/AR by object keypoint similarity (COCOeval ``keypoints``).

    ``sigmas`` holds one OKS falloff per keypoint (COCO's own are 0.025 to 0.107); by default every
    keypoint gets :data:`DEFAULT_OKS_SIGMA`. Ground-truth objects without a labeled keypoint
    (visibility 0 everywhere) are ignored, as in COCO.
    """
    return _evaluate("keypoints", truths, predictions, image_sizes, classes, sigmas)


def _evaluate(
    iou_type: str,
    truths: Sequence[ObjectLabels],
    predictions: Sequence[ObjectLabels],
    image_sizes: Sequence[tuple[int, int]],
    classes: Sequence[str],
    sigmas: npt.ArrayLike | None,
) -> dict[str, Any]:
    names = list(classes)
    if not names:
        raise ValidationError("COCO metrics need at least one class")
    if len(set(names)) != len(names):
        raise ValidationError("class names must be unique")
    if not len(truths) == len(predictions) == len(image_sizes):
        raise ValidationError(
            f"need one truth, prediction and image size per image; got {len(truths)} truths, "
            f"{len(predictions)} predictions and {len(image_sizes)} image sizes"
        )
    category = {name: i + 1 for i, name in enumerate(names)}
    images = []
    for i, size in enumerate(image_sizes):
        height, width = _size(size, i)
        images.append({"id": i + 1, "height": height, "width": width})
    n_keypoints = _keypoint_count(truths, predictions) if iou_type == "keypoints" else 0

    gt_annotations: list[dict[str, Any]] = []
    dt_annotations: list[dict[str, Any]] = []
    for i, (truth, prediction) in enumerate(zip(truths, predictions, strict=True)):
        image = images[i]
        gt_annotations.extend(_truth_annotations(iou_type, truth, image, category, len(gt_annotations)))
        dt_annotations.extend(
            _prediction_annotations(iou_type, prediction, image, category, len(dt_annotations))
        )

    summary = _KEYPOINT_SUMMARY if iou_type == "keypoints" else _BOX_SUMMARY
    out: dict[str, Any] = {key: None for key, *_ in summary}
    out.update(
        {
            "iou_type": iou_type,
            "classes": names,
            "images": len(images),
            "truths": len(gt_annotations),
            "predictions": len(dt_annotations),
            "per_class_ap": dict.fromkeys(names),
            "pr_curves": {},
        }
    )
    if not gt_annotations and not dt_annotations:
        return out

    categories = [{"id": category[name], "name": name} for name in names]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = _coco({"images": images, "categories": categories, "annotations": gt_annotations})
        coco_dt = _coco({"images": images, "categories": categories, "annotations": dt_annotations})
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        if iou_type == "keypoints":
            evaluator.params.kpt_oks_sigmas = _sigmas(sigmas, n_keypoints)
        evaluator.evaluate()
        evaluator.accumulate()

    params = evaluator.params
    precision = np.asarray(evaluator.eval["precision"])  # [T, R, K, A, M]
    recall = np.asarray(evaluator.eval["recall"])  # [T, K, A, M]
    for key, is_ap, iou, area, max_dets in summary:
        a = list(params.areaRngLbl).index(area)
        m = list(params.maxDets).index(max_dets)
        values = precision[..., a, m] if is_ap else recall[..., a, m]
        if iou is not None:
            values = values[np.flatnonzero(np.isclose(params.iouThrs, iou))]
        out[key] = _mean_defined(values)
    last = len(params.maxDets) - 1
    at_50 = int(np.flatnonzero(np.isclose(params.iouThrs, 0.5))[0])
    for k, name in enumerate(names):
        out["per_class_ap"][name] = _mean_defined(precision[:, :, k, 0, last])
        curve = precision[at_50, :, k, 0, last]
        if np.all(curve > -1):
            out["pr_curves"][name] = {
                "recall": [float(r) for r in params.recThrs],
                "precision": [float(p) for p in curve],
            }
    return out


def _coco(dataset: dict[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    return coco


def _mean_defined(values: npt.NDArray[np.float64]) -> float | None:
    defined = values[values > -1]
    return float(defined.mean()) if defined.size else None


def _size(size: tuple[int, int], index: int) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValidationError(f"image {index}: size must be (height, width), got {size!r}") from None
    if height <= 0 or width <= 0:
        raise ValidationError(f"image {index}: size must be positive, got {size!r}")
    return height, width


def _keypoint_count(truths: Sequence[ObjectLabels], predictions: Sequence[ObjectLabels]) -> int:
    counts = {
        labels.keypoints.shape[1]
        for labels in (*truths, *predictions)
        if labels.keypoints is not None and len(labels)
    }
    if len(counts) > 1:
        raise ValidationError(f"every object needs the same number of keypoints, got {sorted(counts)}")
    if not counts:
        return 0
    return int(counts.pop())


def _sigmas(sigmas: npt.ArrayLike | None, n_keypoints: int) -> npt.NDArray[np.float64]:
    if sigmas is None:
        return np.full(n_keypoints, DEFAULT_OKS_SIGMA)
    values = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if n_keypoints and values.shape != (n_keypoints,):
        raise ValidationError(f"expected {n_keypoints} OKS sigmas (one per keypoint), got {values.size}")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValidationError("OKS sigmas must be positive numbers")
    return values


def _category(name: str, category: dict[str, int], where: str) -> int:
    try:
        return category[name]
    except KeyError:
        raise ValidationError(
            f"{where}: unknown class {name!r}; known classes: {', '.join(category)}"
        ) from None


def _box(box: npt.NDArray[np.float64]) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def _compressed(rle: dict[str, Any], image: dict[str, Any], where: str) -> dict[str, Any]:
    """An RLE mask in the compressed form COCOeval works on, checked against the image size."""
    size = [int(v) for v in rle.get("size", ())]
    if size != [image["height"], image["width"]]:
        raise ValidationError(
            f"{where}: mask size {size} does not match the image size {[image['height'], image['width']]}"
        )
    counts = rle["counts"]
    if isinstance(counts, list):
        encoded = mask_utils.frPyObjects({"size": size, "counts": counts}, *size)
        return {"size": size, "counts": encoded["counts"]}
    if isinstance(counts, str):
        return {"size": size, "counts": counts.encode("ascii")}
    if isinstance(counts, bytes):
        return {"size": size, "counts": counts}
    raise ValidationError(f"{where}: RLE counts must be a list or a compressed string")


def _truth_shape(labels: ObjectLabels, j: int, image: dict[str, Any], where: str) -> dict[str, Any] | None:
    mask = labels.masks[j] if labels.masks is not None else None
    if mask is not None:
        return _compressed(mask, image, where)
    rings = labels.polygons[j] if labels.polygons is not None else ()
    if rings:
        binary = polygons_to_mask(rings, image["height"], image["width"])
        encoded = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
        return {"size": [image["height"], image["width"]], "counts": encoded["counts"]}
    return None


def _truth_area(labels: ObjectLabels, j: int, box: list[float]) -> float:
    """Mask area, else polygon area, else box area (cheap: no rasterising for box metrics)."""
    mask = labels.masks[j] if labels.masks is not None else None
    if mask is not None:
        return float(rle_area(mask))
    rings = labels.polygons[j] if labels.polygons is not None else ()
    if rings:
        return float(sum(polygon_area(ring) for ring in rings))
    return box[2] * box[3]


def _truth_annotations(
    iou_type: str, labels: ObjectLabels, image: dict[str, Any], category: dict[str, int], first: int
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for j in range(len(labels)):
        where = f"image {image['id'] - 1}, ground-truth object {j}"
        box = _box(labels.boxes[j])
        attributes = labels.attributes[j] if labels.attributes is not None else {}
        annotation: dict[str, Any] = {
            "id": first + len(out) + 1,  # COCOeval treats id 0 as "unmatched"
            "image_id": image["id"],
            "category_id": _category(labels.class_names[j], category, where),
            "bbox": box,
            "iscrowd": int(bool(attributes.get("iscrowd", False))),
        }
        if iou_type == "segm":
            shape = _truth_shape(labels, j, image, where)
            if shape is None:
                raise ValidationError(f"{where} has neither a mask nor a polygon; mask AP needs one")
            annotation["segmentation"] = shape
            annotation["area"] = float(mask_utils.area(shape))
        else:
            annotation["area"] = _truth_area(labels, j, box)
        if iou_type == "keypoints":
            if labels.keypoints is None:
                raise ValidationError(f"{where} has no keypoints; keypoint AP needs them")
            points = labels.keypoints[j]
            annotation["keypoints"] = [float(v) for v in points.reshape(-1)]
            annotation["num_keypoints"] = int(np.count_nonzero(points[:, 2] > 0))
        out.append(annotation)
    return out


def _prediction_annotations(
    iou_type: str, labels: ObjectLabels, image: dict[str, Any], category: dict[str, int], first: int
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    scores = labels.scores if labels.scores is not None else np.ones(len(labels))
    for j in range(len(labels)):
        where = f"image {image['id'] - 1}, predicted object {j}"
        box = _box(labels.boxes[j])
        annotation: dict[str, Any] = {
            "id": first + len(out) + 1,
            "image_id": image["id"],
            "category_id": _category(labels.class_names[j], category, where),
            "bbox": box,
            "score": float(scores[j]),
            "iscrowd": 0,
            "area": box[2] * box[3],
        }
        if iou_type == "segm":
            mask = labels.masks[j] if labels.masks is not None else None
            if mask is None:
                raise ValidationError(f"{where} has no mask; mask AP needs a mask for every prediction")
            annotation["segmentation"] = _compressed(mask, image, where)
            annotation["area"] = float(mask_utils.area(annotation["segmentation"]))
        if iou_type == "keypoints":
            if labels.keypoints is None:
                raise ValidationError(f"{where} has no keypoints; keypoint AP needs them")
            annotation["keypoints"] = [float(v) for v in labels.keypoints[j].reshape(-1)]
        out.append(annotation)
    return out
