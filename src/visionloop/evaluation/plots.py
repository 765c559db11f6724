"""PNG plots of evaluation results: confusion matrix, precision-recall curves, reliability diagram,
robustness under corruptions.

Figures are drawn on ``matplotlib.figure.Figure`` with an Agg canvas attached directly, so pyplot's
global state and the process-wide backend stay untouched. Every writer returns the path it wrote,
atomically (temporary file in the same folder, then ``os.replace``). Text that comes from data
(class names, titles) has ``$`` escaped so matplotlib never reads it as math markup.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import MissingDependencyError, ValidationError
from visionloop.storage.filesystem import atomic_write_local

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_DPI = 100
_ANNOTATE_UP_TO = 25  # classes; larger confusion matrices get no per-cell numbers


def new_figure(width: float, height: float) -> Figure:
    """A ``Figure`` with an Agg canvas; raises :class:`MissingDependencyError` without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError("matplotlib", "torch", "plotting evaluation results") from exc
    figure = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: Path) -> Path:
    """Render ``figure`` as PNG and write it atomically to ``path``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    atomic_write_local(str(path), buffer.getvalue())
    return Path(path)


def plain_text(text: str) -> str:
    """``text`` safe from matplotlib's mathtext (``$`` escaped)."""
    return str(text).replace("$", r"\$")


def plot_confusion_matrix(matrix: npt.ArrayLike, classes: Sequence[str], path: Path) -> Path:
    """Rows are true classes, columns predictions; colour is the row-normalised share, cells show
    counts (up to 25 classes)."""
    counts = np.asarray(matrix, dtype=np.float64)
    n = len(classes)
    if counts.shape != (n, n):
        raise ValidationError(f"expected a {n}x{n} confusion matrix for {n} classes, got {counts.shape}")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    side = float(min(30.0, max(4.5, 0.45 * n + 2.5)))
    figure = new_figure(side + 1.0, side)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of true class")
    labels = [plain_text(name) for name in classes]
    axes.set_xticks(range(n), labels=labels, rotation=45, ha="right")
    axes.set_yticks(range(n), labels=labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix")
    if n <= _ANNOTATE_UP_TO:
        for row in range(n):
            for column in range(n):
                colour = "white" if shares[row, column] > 0.5 else "black"
                axes.text(column, row, f"{int(counts[row, column])}", ha="center", va="center", color=colour)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_pr_curves(curves: Mapping[str, Any], path: Path) -> Path:
    """One precision-recall curve per class. Each value is a ``(recall, precision)`` pair of
    sequences or a ``{"recall": [...], "precision": [...]}`` dict (``coco_metrics``' ``pr_curves``)."""
    figure = new_figure(6.5, 5.0)
    axes = figure.add_subplot()
    for name, curve in curves.items():
        if isinstance(curve, Mapping):
            recall, precision = curve["recall"], curve["precision"]
        else:
            recall, precision = curve
        r = np.asarray(recall, dtype=np.float64)
        p = np.asarray(precision, dtype=np.float64)
        if r.shape != p.shape or r.ndim != 1:
            raise ValidationError(f"curve {name!r}: recall and precision must be 1-D of the same length")
        axes.plot(r, p, label=plain_text(name))
    if curves:
        axes.legend(loc="lower left", fontsize="small")
    else:
        axes.text(0.5, 0.5, "no curves (no ground truth)", ha="center", va="center")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.05)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_title("Precision-recall (IoU 0.5)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_reliability(bins: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Reliability diagram from ``classification_metrics(...)["reliability"]``: per confidence bin
    the accuracy (bars) against the diagonal of perfect calibration, and the sample count."""
    figure = new_figure(6.0, 6.5)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    lower = np.array([float(b["lower"]) for b in bins])
    upper = np.array([float(b["upper"]) for b in bins])
    accuracy = np.array([float(b["accuracy"]) if b["accuracy"] is not None else 0.0 for b in bins])
    confidence = np.array([float(b["confidence"]) if b["confidence"] is not None else np.nan for b in bins])
    count = np.array([int(b["count"]) for b in bins])
    width = upper - lower
    top.bar(lower, accuracy, width=width, align="edge", edgecolor="black", label="accuracy")
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    centres = (lower + upper) / 2
    top.scatter(centres, confidence, color="crimson", marker="_", s=160, zorder=3, label="mean confidence")
    top.set_ylim(0.0, 1.0)
    top.set_ylabel("accuracy")
    top.set_title("Reliability diagram")
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(lower, count, width=width, align="edge", edgecolor="black", color="grey")
    bottom.set_xlim(0.0, 1.0)
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("count")
    figure.tight_layout()
    return save_figure(figure, path)


def plot_robustness(summary: Mapping[str, Any], path: Path) -> Path:
    """The metric per severity for each corruption (from ``robustness_summary``), with the clean
    value as a dashed line."""
    figure = new_figure(6.5, 4.5)
    axes = figure.add_subplot()
    for name, entry in summary.get("corruptions", {}).items():
        severities = sorted(entry["values"], key=int)
        axes.plot(
            [int(s) for s in severities],
            [float(entry["values"][s]) for s in severities],
            marker="o",
            label=plain_text(name),
        )
    axes.axhline(float(summary["clean"]), linestyle="--", color="black", label="clean")
    axes.set_xticks([1, 2, 3, 4, 5])
    axes.set_xlabel("severity")
    axes.set_ylabel("metric")
    worst = summary.get("worst")
    title = "Robustness to corruptions"
    if worst is not None and summary.get("max_drop") is not None:
        title += f" (worst {plain_text(worst)}: drop {float(summary['max_drop']):.1%})"
    axes.set_title(title, fontsize="medium")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)
