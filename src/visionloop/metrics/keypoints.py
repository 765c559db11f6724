"""DeepLabCut-style keypoint errors in pixels, and PCK.

Per image, predicted instances are matched one-to-one to ground-truth instances greedily by mean
keypoint distance (the closest pair first; with one instance each that is simply the pair).
Distances are Euclidean, in pixels, over ground-truth keypoints that are labeled (visibility > 0)
and predicted (finite coordinates and visibility > 0). DeepLabCut's "p-cutoff" error keeps only
predicted keypoints whose likelihood (``keypoint_scores``) is at least the cutoff; predictions
without scores count as likelihood 1. PCK counts a labeled keypoint as correct when its prediction
lies within ``pck_fraction`` of the ground-truth box diagonal; labeled keypoints that were not
predicted, or whose instance found no match, count as wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError
from visionloop.core.labels import ObjectLabels

FloatArray = npt.NDArray[np.float64]

DEFAULT_LIKELIHOOD_CUTOFF = 0.6
DEFAULT_PCK_FRACTION = 0.1


def keypoint_pixel_error(
    truths: Sequence[ObjectLabels],
    predictions: Sequence[ObjectLabels],
    likelihood_cutoff: float = DEFAULT_LIKELIHOOD_CUTOFF,
    *,
    keypoint_names: Sequence[str] | None = None,
    pck_fraction: float = DEFAULT_PCK_FRACTION,
) -> dict[str, Any]:
    """Pixel errors of keypoint predictions against ground truth (one ``ObjectLabels`` per image).

    Returns ``mean_error``, ``median_error`` (pixels, ``None`` when nothing could be compared),
    ``per_keypoint_error`` (name -> mean error or ``None``), ``mean_error_cutoff``,
    ``median_error_cutoff`` and ``kept_fraction`` (share of compared keypoints whose likelihood
    passes ``likelihood_cutoff``), ``pck`` (at ``pck_fraction`` of the box diagonal), and the counts
    ``labeled_keypoints``, ``compared_keypoints``, ``matched_instances``, ``unmatched_truths``,
    ``unmatched_predictions``. Keypoints are named ``keypoint_names`` or ``kp0, kp1, ...``.
    """
    if len(truths) != len(predictions):
        raise ValidationError(f"got {len(truths)} truths but {len(predictions)} predictions")
    if not 0.0 <= likelihood_cutoff <= 1.0:
        raise ValidationError(f"the likelihood cutoff must lie within [0, 1], got {likelihood_cutoff}")
    if pck_fraction <= 0:
        raise ValidationError(f"the PCK fraction must be positive, got {pck_fraction}")
    n_keypoints = _keypoint_count(truths, predictions)
    names = list(keypoint_names) if keypoint_names is not None else [f"kp{k}" for k in range(n_keypoints)]
    if n_keypoints and len(names) != n_keypoints:
        raise ValidationError(f"expected {n_keypoints} keypoint names, got {len(names)}")

    errors: list[FloatArray] = []  # per matched pair: (K,) distances, NaN where not compared
    likelihoods: list[FloatArray] = []
    labeled = 0
    correct = 0
    matched = unmatched_truths = unmatched_predictions = 0
    for truth, prediction in zip(truths, predictions, strict=True):
        gt_points = _points(truth)
        pred_points = _points(prediction)
        gt_labeled = [i for i in range(len(truth)) if np.any(gt_points[i, :, 2] > 0)]
        labeled += int(sum(np.count_nonzero(gt_points[i, :, 2] > 0) for i in gt_labeled))
        pairs = _greedy_match(gt_points, pred_points, gt_labeled)
        matched += len(pairs)
        unmatched_truths += len(gt_labeled) - len(pairs)
        unmatched_predictions += len(prediction) - len(pairs)
        for g, p in pairs:
            distance = _distances(gt_points[g], pred_points[p])
            errors.append(distance)
            scores = prediction.keypoint_scores
            likelihoods.append(scores[p] if scores is not None else np.ones(len(distance)))
            x0, y0, x1, y1 = truth.boxes[g]
            threshold = pck_fraction * float(np.hypot(x1 - x0, y1 - y0))
            correct += int(np.count_nonzero(distance <= threshold))  # NaN compares False

    table = np.stack(errors) if errors else np.zeros((0, n_keypoints))
    likelihood = np.stack(likelihoods) if likelihoods else np.zeros((0, n_keypoints))
    compared = ~np.isnan(table)
    kept = compared & (likelihood >= likelihood_cutoff)
    n_compared = int(compared.sum())
    return {
        "mean_error": _stat(np.mean, table[compared]),
        "median_error": _stat(np.median, table[compared]),
        "per_keypoint_error": {
            name: _stat(np.mean, table[compared[:, k], k]) for k, name in enumerate(names)
        },
        "likelihood_cutoff": likelihood_cutoff,
        "mean_error_cutoff": _stat(np.mean, table[kept]),
        "median_error_cutoff": _stat(np.median, table[kept]),
        "kept_fraction": float(kept.sum() / n_compared) if n_compared else None,
        "pck": float(correct / labeled) if labeled else None,
        "pck_fraction": pck_fraction,
        "labeled_keypoints": labeled,
        "compared_keypoints": n_compared,
        "matched_instances": matched,
        "unmatched_truths": unmatched_truths,
        "unmatched_predictions": unmatched_predictions,
    }


def _stat(function: Any, values: FloatArray) -> float | None:
    return float(function(values)) if values.size else None


def _keypoint_count(truths: Sequence[ObjectLabels], predictions: Sequence[ObjectLabels]) -> int:
    counts = set()
    for i, labels in enumerate((*truths, *predictions)):
        if not len(labels):
            continue
        if labels.keypoints is None:
            side = "truth" if i < len(truths) else "prediction"
            raise ValidationError(f"a {side} with objects but no keypoints cannot be scored")
        counts.add(labels.keypoints.shape[1])
    if len(counts) > 1:
        raise ValidationError(f"every object needs the same number of keypoints, got {sorted(counts)}")
    return counts.pop() if counts else 0


def _points(labels: ObjectLabels) -> FloatArray:
    if labels.keypoints is None:
        return np.zeros((len(labels), 0, 3))
    return labels.keypoints


def _distances(truth: FloatArray, prediction: FloatArray) -> FloatArray:
    """Per keypoint distance, NaN where the truth is unlabeled or the prediction is missing."""
    present = (truth[:, 2] > 0) & (prediction[:, 2] > 0) & np.all(np.isfinite(prediction[:, :2]), axis=1)
    distance = np.full(len(truth), np.nan)
    delta = truth[present, :2] - prediction[present, :2]
    distance[present] = np.hypot(delta[:, 0], delta[:, 1])
    return distance


def _greedy_match(truth: FloatArray, prediction: FloatArray, candidates: list[int]) -> list[tuple[int, int]]:
    """Pairs ``(truth, prediction)`` in order of increasing mean keypoint distance."""
    costs = []
    for g in candidates:
        for p in range(len(prediction)):
            distance = _distances(truth[g], prediction[p])
            if np.any(~np.isnan(distance)):
                costs.append((float(np.nanmean(distance)), g, p))
    costs.sort()
    used_truth: set[int] = set()
    used_prediction: set[int] = set()
    pairs = []
    for _, g, p in costs:
        if g not in used_truth and p not in used_prediction:
            used_truth.add(g)
            used_prediction.add(p)
            pairs.append((g, p))
    return pairs
