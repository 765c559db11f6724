"""Classification metrics: accuracy, per-class precision/recall/F1, confusion matrix, calibration.

Pure numpy. Conventions (the same as scikit-learn's ``zero_division=0``): a class that was never
predicted has precision 0, a class that never occurs has recall 0; macro averages run over the
classes that occur in the truth or in the predictions, so listing an unused class in ``classes``
does not drag them down.

Calibration uses the top-1 confidence: the largest probability of each row, with "correct" meaning
the class of that largest probability is the true class. Confidences fall into ``bins``
equal-width bins over ``[0, 1]`` (the first bin also takes 0, every bin includes its upper edge),
and the expected calibration error (ECE) is ``sum_b (n_b / N) * |accuracy_b - confidence_b|``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError

CALIBRATION_BINS = 15
TOP_K = (1, 3, 5)


def classification_metrics(
    truth: Sequence[str],
    predicted: Sequence[str],
    probabilities: npt.ArrayLike | None,
    classes: Sequence[str],
    *,
    bins: int = CALIBRATION_BINS,
    top_k: Sequence[int] = TOP_K,
) -> dict[str, Any]:
    """Metrics of one classifier on ``N`` samples.

    ``probabilities`` is ``(N, C)`` with column ``j`` for ``classes[j]`` (or ``None``). Returns a
    JSON-ready dict: ``accuracy``, ``count``, ``classes``, ``per_class`` (name -> precision,
    recall, f1, support), ``macro_precision``, ``macro_recall``, ``macro_f1``,
    ``confusion_matrix`` (rows = truth, columns = prediction, in ``classes`` order), and with
    probabilities also ``calibration_error`` (ECE), ``reliability`` (one dict per bin: lower,
    upper, confidence, accuracy, count; confidence/accuracy ``None`` for empty bins) and
    ``top_k_accuracy`` (``{"1": ..., "3": ...}`` for each ``k`` in ``top_k`` below ``C``, and 1).
    """
    names = list(classes)
    if not names:
        raise ValidationError("classification metrics need at least one class")
    if len(set(names)) != len(names):
        raise ValidationError("class names must be unique")
    if len(truth) != len(predicted):
        raise ValidationError(f"got {len(truth)} true labels but {len(predicted)} predictions")
    if not truth:
        raise ValidationError("classification metrics need at least one sample")
    index = {name: i for i, name in enumerate(names)}
    y_true = _indices(truth, index, "true label")
    y_pred = _indices(predicted, index, "predicted label")
    n_classes = len(names)

    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    true_positive = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted_count = matrix.sum(axis=0)
    precision = _ratio(true_positive, predicted_count)
    recall = _ratio(true_positive, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    present = (support > 0) | (predicted_count > 0)

    out: dict[str, Any] = {
        "count": len(truth),
        "classes": names,
        "accuracy": float(true_positive.sum() / len(truth)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "macro_precision": float(precision[present].mean()),
        "macro_recall": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "confusion_matrix": matrix.tolist(),
    }
    if probabilities is not None:
        probs = _checked_probabilities(probabilities, len(truth), n_classes)
        ece, reliability = calibration(probs, y_true, bins=bins)
        out["calibration_error"] = ece
        out["reliability"] = reliability
        out["top_k_accuracy"] = top_k_accuracy(probs, y_true, top_k)
    return out


def calibration(
    probabilities: npt.NDArray[np.float64], truth: npt.NDArray[np.int64], *, bins: int = CALIBRATION_BINS
) -> tuple[float, list[dict[str, Any]]]:
    """Expected calibration error and the reliability-diagram bins (see the module docstring)."""
    if bins < 1:
        raise ValidationError(f"calibration needs at least one bin, got {bins}")
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == truth).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece = 0.0
    table: list[dict[str, Any]] = []
    for b in range(bins):
        in_bin = which == b
        count = int(in_bin.sum())
        mean_confidence = float(confidence[in_bin].mean()) if count else None
        mean_accuracy = float(correct[in_bin].mean()) if count else None
        if mean_confidence is not None and mean_accuracy is not None:
            ece += count / len(confidence) * abs(mean_accuracy - mean_confidence)
        table.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "confidence": mean_confidence,
                "accuracy": mean_accuracy,
                "count": count,
            }
        )
    return float(ece), table


def top_k_accuracy(
    probabilities: npt.NDArray[np.float64], truth: npt.NDArray[np.int64], ks: Sequence[int] = TOP_K
) -> dict[str, float]:
    """Fraction of rows whose true class is among the ``k`` most probable, for each useful ``k``
    (1, and every ``k`` below the number of classes); ties go to the lower class index."""
    n_classes = probabilities.shape[1]
    order = np.argsort(-probabilities, axis=1, kind="stable")
    rank = np.argmax(order == truth[:, None], axis=1)
    wanted = sorted({k for k in ks if k == 1 or 1 <= k < n_classes})
    return {str(k): float(np.mean(rank < k)) for k in wanted}


def _indices(labels: Sequence[str], index: dict[str, int], what: str) -> npt.NDArray[np.int64]:
    out = np.empty(len(labels), dtype=np.int64)
    for i, label in enumerate(labels):
        try:
            out[i] = index[label]
        except KeyError:
            raise ValidationError(
                f"{what} {label!r} (sample {i}) is not one of the classes: {', '.join(index)}"
            ) from None
    return out


def _ratio(numerator: npt.ArrayLike, denominator: npt.ArrayLike) -> npt.NDArray[np.float64]:
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _checked_probabilities(values: npt.ArrayLike, n: int, n_classes: int) -> npt.NDArray[np.float64]:
    probs = np.asarray(values, dtype=np.float64)
    if probs.shape != (n, n_classes):
        raise ValidationError(f"expected probabilities of shape ({n}, {n_classes}), got {probs.shape}")
    if not np.all(np.isfinite(probs)) or np.any((probs < 0) | (probs > 1)):
        raise ValidationError("probabilities must be finite numbers within [0, 1]")
    return probs
