"""Classification metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.core.errors import ValidationError
from visionloop.metrics.classification import classification_metrics

CLASSES = ["cat", "dog", "bird"]
TRUTH = ["cat", "cat", "dog", "dog", "bird", "cat"]
PREDICTED = ["cat", "dog", "dog", "dog", "cat", "cat"]


def test_confusion_matrix_and_per_class_scores_match_hand_computation() -> None:
    metrics = classification_metrics(TRUTH, PREDICTED, None, CLASSES)

    assert metrics["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    cat, dog, bird = (metrics["per_class"][name] for name in CLASSES)
    assert (cat["precision"], cat["recall"], cat["f1"], cat["support"]) == pytest.approx(
        (2 / 3, 2 / 3, 2 / 3, 3)
    )
    assert (dog["precision"], dog["recall"], dog["f1"], dog["support"]) == pytest.approx((2 / 3, 1.0, 0.8, 2))
    assert (bird["precision"], bird["recall"], bird["f1"]) == (0.0, 0.0, 0.0)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)
    assert metrics["macro_recall"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert "calibration_error" not in metrics


def test_unused_class_does_not_lower_macro_averages() -> None:
    base = classification_metrics(TRUTH, PREDICTED, None, CLASSES)
    extended = classification_metrics(TRUTH, PREDICTED, None, [*CLASSES, "fish"])
    assert extended["macro_f1"] == pytest.approx(base["macro_f1"])
    assert extended["per_class"]["fish"]["support"] == 0


def test_expected_calibration_error_and_reliability_bins() -> None:
    # top-1 confidences .9 (right), .88 (wrong) share a bin; .85 (wrong), .7 (right), .65 (right) are alone.
    probabilities = np.array([[0.9, 0.1], [0.12, 0.88], [0.85, 0.15], [0.3, 0.7], [0.65, 0.35]])
    truth = ["a", "a", "b", "b", "a"]
    predicted = ["a", "b", "a", "b", "a"]
    metrics = classification_metrics(truth, predicted, probabilities, ["a", "b"])

    expected = (2 * abs(0.5 - 0.89) + abs(0.0 - 0.85) + abs(1.0 - 0.7) + abs(1.0 - 0.65)) / 5
    assert metrics["calibration_error"] == pytest.approx(expected)
    bins = metrics["reliability"]
    assert len(bins) == 15
    assert sum(b["count"] for b in bins) == 5
    shared = bins[13]
    assert (shared["count"], shared["accuracy"], shared["confidence"]) == pytest.approx((2, 0.5, 0.89))
    assert bins[0]["count"] == 0 and bins[0]["accuracy"] is None
    assert metrics["top_k_accuracy"] == {"1": pytest.approx(3 / 5)}


def test_perfect_calibration_has_zero_error() -> None:
    probabilities = np.array([[1.0, 0.0], [0.0, 1.0]])
    metrics = classification_metrics(["a", "b"], ["a", "b"], probabilities, ["a", "b"])
    assert metrics["calibration_error"] == pytest.approx(0.0)


def test_top_k_accuracy() -> None:
    probabilities = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]])
    truth = ["b", "c", "a"]  # ranks 2, 1, 3
    metrics = classification_metrics(truth, ["a", "c", "b"], probabilities, ["a", "b", "c"], top_k=(1, 2, 3))
    assert metrics["top_k_accuracy"] == pytest.approx({"1": 1 / 3, "2": 2 / 3})


@pytest.mark.parametrize(
    ("truth", "predicted", "probabilities", "message"),
    [
        (["cat"], ["cow"], None, "predicted label 'cow'"),
        (["cat", "dog"], ["cat"], None, "2 true labels but 1 predictions"),
        ([], [], None, "at least one sample"),
        (["cat"], ["cat"], np.array([[0.5, 0.5]]), r"shape \(1, 3\)"),
        (["cat"], ["cat"], np.array([[1.5, 0.0, 0.0]]), "within"),
    ],
)
def test_bad_input_is_rejected(
    truth: list[str], predicted: list[str], probabilities: np.ndarray | None, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        classification_metrics(truth, predicted, probabilities, CLASSES)
