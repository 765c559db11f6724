"""Every plot writes a valid PNG atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionloop.core.errors import ValidationError
from visionloop.evaluation.gate import robustness_summary
from visionloop.evaluation.plots import (
    plot_confusion_matrix,
    plot_pr_curves,
    plot_reliability,
    plot_robustness,
)
from visionloop.metrics.classification import classification_metrics

pytest.importorskip("matplotlib")


def assert_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 100 and image.height > 100
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary files left


def test_confusion_matrix(tmp_path: Path) -> None:
    classes = ["cat", "$dog$", "<bird>"]  # '$' must not be read as math
    path = plot_confusion_matrix([[3, 1, 0], [0, 2, 0], [1, 0, 0]], classes, tmp_path / "confusion.png")
    assert path == tmp_path / "confusion.png"
    assert_png(path)
    with pytest.raises(ValidationError, match="3x3"):
        plot_confusion_matrix([[1, 2]], classes, tmp_path / "bad.png")


def test_pr_curves_accepts_pairs_and_coco_dicts(tmp_path: Path) -> None:
    recall = np.linspace(0, 1, 101)
    curves = {
        "cat": (recall, 1 - recall**2),
        "dog": {"recall": list(recall), "precision": list(np.ones(101))},
    }
    assert_png(plot_pr_curves(curves, tmp_path / "pr.png"))
    assert_png(plot_pr_curves({}, tmp_path / "empty" / "pr.png"))


def test_reliability(tmp_path: Path) -> None:
    probabilities = np.array([[0.9, 0.1], [0.3, 0.7], [0.55, 0.45]])
    metrics = classification_metrics(["a", "a", "b"], ["a", "b", "a"], probabilities, ["a", "b"])
    assert_png(plot_reliability(metrics["reliability"], tmp_path / "reliability.png"))


def test_robustness(tmp_path: Path) -> None:
    summary = robustness_summary(0.8, {"gaussian_noise": {1: 0.7, 2: 0.6, 3: 0.5}, "brightness": {1: 0.79}})
    assert_png(plot_robustness(summary, tmp_path / "robustness.png"))
