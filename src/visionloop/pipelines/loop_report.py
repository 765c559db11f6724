"""The loop's report: one self-contained HTML page a person would want to look at.

It answers the questions a team asks of a labeling loop: did selecting items beat labelling at
random (learning curve), how much did auto-labeling take off the humans and was it as accurate
as promised (risk-coverage curve, accuracy against the truth), where is the model still wrong
(confusion matrix), and what do the hard and the auto-accepted items look like (galleries).
Plots are PNG files next to the page; gallery thumbnails are inline data URIs.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from visionloop.active.autolabel import agrees
from visionloop.active.uncertainty import item_confidence
from visionloop.core.errors import VisionloopError
from visionloop.core.labels import ClassLabel, Label, ObjectLabels
from visionloop.core.provenance import ProvenanceKind
from visionloop.core.schema import TaskType
from visionloop.datasets.records import ImageReader
from visionloop.evaluation.page import PAGE_CSS, escape, format_value, html_table
from visionloop.evaluation.plots import new_figure, plot_confusion_matrix, save_figure
from visionloop.pipelines.loop import LoopReport, learning_curve
from visionloop.project import Project
from visionloop.storage.filesystem import atomic_write_local

__all__ = ["REPORT_FILE", "write_loop_report"]

REPORT_FILE = "report.html"
THUMBNAIL = 128
GALLERY = 24


def write_loop_report(
    project: Project,
    report: LoopReport,
    *,
    truth: Mapping[int, Label] | None = None,
    baseline: LoopReport | None = None,
    gallery: int = GALLERY,
) -> Path:
    """Write ``report.html`` and its plots into the loop run's folder; returns the page's path.

    ``truth`` (the oracle's labels) marks gallery items right or wrong; ``baseline`` is another
    loop (e.g. random selection) drawn on the learning curve."""
    folder = Path(report.folder)
    folder.mkdir(parents=True, exist_ok=True)
    plots: dict[str, str] = {}
    plots["Learning curve"] = _plot_learning_curve(report, baseline, folder / "learning_curve.png").name
    if report.autolabel.get("risk_coverage"):
        plots["Risk-coverage of auto-labels"] = _plot_risk_coverage(report, folder / "risk_coverage.png").name
    final_metrics = _final_metrics(project, report)
    matrix, classes = final_metrics.get("confusion_matrix"), final_metrics.get("classes")
    if matrix is not None and classes:
        plots["Confusion matrix (last model, evaluation split)"] = plot_confusion_matrix(
            matrix, classes, folder / "confusion_matrix.png"
        ).name
    uncertain, accepted = _gallery_items(project, report, gallery)
    reader = ImageReader(project.config.s3.fsspec_options())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(project.config.name)}: labeling loop</title><style>{PAGE_CSS}</style></head><body>",
        f"<h1>{escape(project.config.name)}: labeling loop ({escape(report.strategy)} selection)</h1>",
        _summary(report, baseline),
        _rounds_table(report, baseline),
    ]
    parts.append("<h2>Plots</h2><div>")
    for caption, name in plots.items():
        parts.append(
            f'<figure><img src="{escape(name)}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    parts.append("</div>")
    parts.append(
        _gallery(
            "Most uncertain items left in the pool",
            "What the last model is least sure of: the next items worth a human's time.",
            uncertain,
            reader,
            truth,
            project.config.labels.task,
            report.match,
        )
    )
    parts.append(
        _gallery(
            "Auto-accepted items (a random sample)",
            "Labels accepted without a human, each certified by the calibration run.",
            accepted,
            reader,
            truth,
            project.config.labels.task,
            report.match,
        )
    )
    parts.append("</body></html>\n")
    path = folder / REPORT_FILE
    atomic_write_local(str(path), "\n".join(parts).encode("utf-8"))
    return path


def _summary(report: LoopReport, baseline: LoopReport | None) -> str:
    auto = report.autolabel
    last = report.rounds[-1] if report.rounds else None
    rows = [
        ["rounds", str(len(report.rounds))],
        ["human labels paid for", str(report.human_labels)],
        [
            "of which",
            f"{report.seed_items} seed, {sum(r.selected for r in report.rounds)} selected, "
            f"{report.calibration_items} calibration, {report.audit.get('audited', 0)} audit",
        ],
        ["evaluation items (oracle truth, not counted)", str(report.eval_items)],
    ]
    if last is not None:
        rows.append([f"last model: {report.headline_metric}", format_value(last.headline)])
    if baseline is not None and baseline.rounds:
        rows.append(
            [
                f"{baseline.strategy} selection: {report.headline_metric}",
                f"{format_value(baseline.rounds[-1].headline)} with {baseline.rounds[-1].labels} labels",
            ]
        )
    if auto:
        rows.append(
            [
                "auto-labelled",
                f"{report.auto_accepted} of {auto.get('candidates', 0)} pool items "
                f"({float(auto.get('coverage', 0.0)):.1%})",
            ]
        )
        accuracy = "n/a" if report.auto_accuracy is None else f"{report.auto_accuracy:.2%}"
        rows.append(["auto-label accuracy against the hidden truth", accuracy])
        rows.append(["calibration run", escape(auto.get("run_id", ""))])
        for group, entry in auto.get("thresholds", {}).items():
            threshold = entry.get("threshold")
            rows.append(
                [
                    f"threshold ({group})",
                    "none certified: " + escape(entry.get("reason", ""))
                    if threshold is None
                    else f"{threshold:.4f} (error bound {entry.get('error_bound', 0.0):.3f})",
                ]
            )
    if report.audit:
        verdict = "revoked" if report.audit.get("revoked") else "upheld"
        rows.append(["audit", f"{verdict}: {escape(report.audit.get('reason', ''))}"])
    return "<h2>Summary</h2>" + html_table(["", "value"], [[escape(k), v] for k, v in rows])


def _rounds_table(report: LoopReport, baseline: LoopReport | None) -> str:
    header = ["round", "human labels", report.headline_metric, "selected next", "seconds"]
    if baseline is not None:
        header.insert(3, f"{baseline.strategy}: {report.headline_metric}")
    rows: list[list[str]] = []
    for index, entry in enumerate(report.rounds):
        row = [
            str(entry.round),
            str(entry.labels),
            format_value(entry.headline),
            str(entry.selected),
            f"{entry.seconds:.0f}",
        ]
        if baseline is not None:
            other = baseline.rounds[index].headline if index < len(baseline.rounds) else None
            row.insert(3, format_value(other))
        rows.append(row)
    return "<h2>Rounds</h2>" + html_table(header, rows)


def _plot_learning_curve(report: LoopReport, baseline: LoopReport | None, path: Path) -> Path:
    figure = new_figure(6.0, 4.0)
    axes = figure.add_subplot()
    for loop, style in ((report, "o-"), (baseline, "s--")):
        if loop is None or not loop.rounds:
            continue
        labels, values = learning_curve(loop)
        axes.plot(labels, values, style, label=f"{loop.strategy} selection")
    axes.set_xlabel("human labels in training")
    axes.set_ylabel(report.headline_metric)
    axes.set_title("Learning curve")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return save_figure(figure, path)


def _plot_risk_coverage(report: LoopReport, path: Path) -> Path:
    curve = report.autolabel["risk_coverage"]
    coverage = [point["coverage"] for point in curve]
    figure = new_figure(6.0, 4.0)
    axes = figure.add_subplot()
    axes.plot(coverage, [point["error"] for point in curve], "o-", markersize=3, label="observed error")
    axes.plot(coverage, [point["bound"] for point in curve], "--", label="upper bound (Clopper-Pearson)")
    allowed = 1.0 - report.target_accuracy
    axes.axhline(allowed, color="grey", linewidth=1, label=f"allowed error ({allowed:.2f})")
    certified = [e for e in report.autolabel.get("thresholds", {}).values() if e.get("threshold") is not None]
    for entry in certified[:1]:
        share = entry["accepted_items"] / max(1, entry["calibration_items"])
        axes.axvline(share, color="green", linewidth=1, label=f"certified coverage ({share:.0%})")
    if report.auto_accuracy is not None:
        axes.plot(
            [float(report.autolabel.get("coverage", 0.0))],
            [1.0 - report.auto_accuracy],
            "r*",
            markersize=12,
            label="realised on the pool (hidden truth)",
        )
    axes.set_xlabel("coverage (share of calibration items accepted, most confident first)")
    axes.set_ylabel("error of accepted labels")
    axes.set_title("Risk-coverage of auto-labels")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def _final_metrics(project: Project, report: LoopReport) -> dict[str, Any]:
    if not report.rounds:
        return {}
    path = project.run_folder(report.rounds[-1].evaluate_run) / "metrics.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _gallery_items(
    project: Project, report: LoopReport, count: int
) -> tuple[list[tuple[int, str, Label]], list[tuple[int, str, Label]]]:
    """The pool's most uncertain predictions and a random sample of the auto-accepted labels."""
    if not report.rounds or report.rounds[-1].prelabel_run is None:
        return [], []
    calibration_run = report.autolabel.get("run_id")
    with project.open_catalog() as catalog:
        current = catalog.current_annotations()
        predictions = catalog.run_predictions(report.rounds[-1].prelabel_run)
        open_items = [(item, label) for item, (label, _) in predictions.items() if item not in current]
        open_items.sort(key=lambda entry: item_confidence(entry[1]))
        auto = sorted(
            (item, annotation.label)
            for item, annotation in current.items()
            if annotation.provenance.kind is ProvenanceKind.AUTO
            and annotation.provenance.calibration_run == calibration_run
        )
        rng = np.random.default_rng(0)
        sample = [auto[int(i)] for i in sorted(rng.permutation(len(auto))[:count])]
        chosen = [*open_items[:count], *sample]
        uris = {item: catalog.get_item(item).uri for item, _ in chosen}
    return (
        [(item, uris[item], label) for item, label in open_items[:count]],
        [(item, uris[item], label) for item, label in sample],
    )


def _gallery(
    title: str,
    note: str,
    items: Sequence[tuple[int, str, Label]],
    reader: ImageReader,
    truth: Mapping[int, Label] | None,
    task: TaskType,
    match: float,
) -> str:
    if not items:
        return f"<h2>{escape(title)}</h2><p class='muted'>none</p>"
    tiles = []
    for item, uri, label in items:
        try:
            image = reader(uri)
        except (VisionloopError, OSError) as exc:
            tiles.append(f"<div class='tile'>item {item}: {escape(exc)}</div>")
            continue
        thumbnail = _thumbnail(image, label)
        caption = f"{escape(_describe(label))} ({item_confidence(label):.2f})"
        verdict = ""
        if truth is not None and item in truth:
            right = agrees(task, truth[item], label, match)
            shown = escape(_describe(truth[item]))
            verdict = (
                "<br><span class='right'>right</span>"
                if right
                else f"<br><span class='wrong'>truth: {shown}</span>"
            )
        tiles.append(
            f"<div class='tile'><img alt='item {item}' src='data:image/png;base64,{thumbnail}'>"
            f"<br>{caption}{verdict}</div>"
        )
    heading = f"<h2>{escape(title)}</h2><p class='muted'>{escape(note)}</p>"
    return f"{heading}<div class='gallery'>{''.join(tiles)}</div>"


def _describe(label: Label) -> str:
    if isinstance(label, ClassLabel):
        return label.class_name
    if isinstance(label, ObjectLabels):
        return f"{len(label.class_names)} objects"
    return type(label).__name__


def _thumbnail(image: npt.NDArray[np.uint8], label: Label) -> str:
    """A PNG data-URI payload at most THUMBNAIL px, with the label's boxes drawn on it."""
    picture = Image.fromarray(image)
    scale = THUMBNAIL / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BILINEAR
    picture = picture.resize(size, resample)
    if isinstance(label, ObjectLabels) and len(label.boxes):
        draw = ImageDraw.Draw(picture)
        for box in np.asarray(label.boxes, dtype=np.float64) * scale:
            if all(math.isfinite(v) for v in box):
                draw.rectangle([float(v) for v in box], outline=(230, 40, 40), width=2)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
