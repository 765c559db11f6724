"""``visionloop evaluate``: a saved model against a snapshot's test split, as a stored run.

Images stream through in batches: each batch is predicted clean and under every corruption of
the robustness suite, so memory stays flat however large the test split. The task's metrics,
the robustness summary and the project's gate end up in ``metrics.json`` and ``report.html``
(with plots and, for classifiers, Integrated Gradients explanations) in the run's folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import NotFoundError, ValidationError
from visionloop.core.labels import ClassLabel, Label
from visionloop.core.schema import TaskType
from visionloop.datasets.records import ImageReader, LabeledRecord, snapshot_records
from visionloop.evaluation.corruptions import CORRUPTIONS, corrupt
from visionloop.evaluation.gate import GateResult, evaluate_gate, robustness_summary
from visionloop.evaluation.report import write_report
from visionloop.project import Project
from visionloop.project.config import GateConfig
from visionloop.tasks.registry import TrainedModel, load_project_model

__all__ = ["EvaluationResult", "evaluate_model", "evaluate_records"]

RUN_KIND = "evaluate"
DEFAULT_SEVERITY = 3


@dataclass(frozen=True)
class EvaluationResult:
    metrics: dict[str, Any]
    gate: GateResult
    json_path: Path | None = None
    html_path: Path | None = None
    run_id: str | None = None
    plots: dict[str, Path] = field(default_factory=dict)


def evaluate_records(
    trained: TrainedModel,
    records: Sequence[LabeledRecord],
    read_image: Callable[[str], npt.NDArray[np.uint8]],
    *,
    corruptions: Sequence[str] = tuple(CORRUPTIONS),
    severity: int = DEFAULT_SEVERITY,
    gate: GateConfig | None = None,
    batch_size: int = 16,
    seed: int = 0,
) -> tuple[dict[str, Any], GateResult, list[tuple[npt.NDArray[np.uint8], Label, Label]]]:
    """Metrics, robustness and gate for ``records``; also returns a few (image, truth, prediction)
    samples for explanations."""
    unknown = sorted(set(corruptions) - set(CORRUPTIONS))
    if unknown:
        raise ValidationError(f"unknown corruptions {unknown}; choose from {', '.join(CORRUPTIONS)}")
    truths: list[Label | None] = []
    clean: list[Label] = []
    corrupted: dict[str, list[Label]] = {name: [] for name in corruptions}
    sizes: list[tuple[int, int]] = []
    samples: list[tuple[npt.NDArray[np.uint8], Label, Label]] = []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        images = [read_image(record.uri) for record in chunk]
        predictions = trained.predict(images)
        clean.extend(predictions)
        truths.extend(record.label for record in chunk)
        sizes.extend((int(image.shape[0]), int(image.shape[1])) for image in images)
        for name in corruptions:
            altered = [
                corrupt(image, name, severity, np.random.default_rng([seed, start + i]))
                for i, image in enumerate(images)
            ]
            corrupted[name].extend(trained.predict(altered))
        for image, record, prediction in zip(images, chunk, predictions, strict=True):
            if len(samples) < 8 and record.label is not None:
                samples.append((image, record.label, prediction))
    spec = trained.spec
    metrics = dict(spec.metrics(truths, clean, trained.schema, sizes))
    headline = metrics.get(spec.headline_metric)
    metrics["headline_metric"] = spec.headline_metric
    metrics["evaluated_images"] = sum(1 for truth in truths if truth is not None)
    if corruptions and isinstance(headline, int | float):
        values = {
            name: {
                severity: _headline(
                    spec.metrics(truths, corrupted[name], trained.schema, sizes), spec.headline_metric
                )
            }
            for name in corruptions
        }
        metrics["robustness"] = _robustness(float(headline), values)
        metrics["robustness"]["severity"] = severity
    verdict = evaluate_gate(gate or GateConfig(), metrics)
    return metrics, verdict, samples


def _robustness(clean: float, values: dict[str, dict[int, float]]) -> dict[str, Any]:
    """Relative drops per corruption; undefined (``None``) when the clean metric is zero."""
    if clean > 0:
        return robustness_summary(clean, values)
    return {
        "clean": clean,
        "corruptions": {
            name: {"values": by_severity, "drops": None, "mean_drop": None}
            for name, by_severity in values.items()
        },
        "mean_drop": None,
        "max_drop": None,
        "worst": None,
        "note": "the clean metric is 0, so relative drops are undefined",
    }


def _headline(metrics: dict[str, Any], key: str) -> float:
    value = metrics.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def evaluate_model(
    project: Project,
    model: str,
    *,
    snapshot: str | None = None,
    split: str = "test",
    corruptions: Sequence[str] = tuple(CORRUPTIONS),
    severity: int = DEFAULT_SEVERITY,
    explain: int = 4,
    limit: int | None = None,
) -> EvaluationResult:
    folder, trained = load_project_model(project, model, "evaluate")
    with project.open_catalog() as catalog:
        snapshot_id = snapshot or catalog.create_snapshot(name="evaluate").id
        records = [
            record
            for record in snapshot_records(catalog, snapshot_id)
            if record.split == split and record.label is not None
        ][:limit]
        if not records:
            raise ValidationError(f"snapshot {snapshot_id} has no labelled items in the {split!r} split")
        run_id = catalog.start_run(
            RUN_KIND,
            {
                "corruptions": list(corruptions),
                "severity": severity,
                "split": split,
                "gate": project.config.gate.model_dump(),
            },
            {"model": str(folder), "model_sha256": trained.artifact.weights_sha256, "snapshot": snapshot_id},
            parent_id=trained.artifact.run_id
            if trained.artifact.run_id and _run_exists(catalog, trained.artifact.run_id)
            else None,
        )
        try:
            metrics, verdict, samples = evaluate_records(
                trained,
                records,
                ImageReader(project.config.s3.fsspec_options()),
                corruptions=corruptions,
                severity=severity,
                gate=project.config.gate,
            )
            out = project.run_folder(run_id)
            plots = _plots(trained, metrics, samples[:explain], out)
            title = f"{project.config.name}: {trained.schema.task} model {folder.parent.name}"
            json_path, html_path = write_report(out, metrics, verdict, plots, title)
        except Exception as exc:
            catalog.finish_run(run_id, {}, error=f"{type(exc).__name__}: {exc}")
            raise
        catalog.finish_run(
            run_id,
            {
                "metrics": _scalars(metrics),
                "gate": {"passed": verdict.passed, "reasons": verdict.reasons},
                "report": str(html_path),
                "metrics_json": str(json_path),
            },
        )
    return EvaluationResult(metrics, verdict, json_path, html_path, run_id, plots)


def _run_exists(catalog: Any, run_id: str) -> bool:
    try:
        catalog.get_run(run_id)
    except NotFoundError:
        return False
    return True


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {
        key: value for key, value in metrics.items() if isinstance(value, int | float | str) or value is None
    }
    robustness = metrics.get("robustness")
    if isinstance(robustness, dict):
        out["robustness_max_drop"] = robustness.get("max_drop")
    return out


def _plots(
    trained: TrainedModel,
    metrics: dict[str, Any],
    samples: list[tuple[npt.NDArray[np.uint8], Label, Label]],
    folder: Path,
) -> dict[str, Path]:
    from visionloop.evaluation import plots

    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    if "confusion_matrix" in metrics:
        made["confusion matrix"] = plots.plot_confusion_matrix(
            metrics["confusion_matrix"], trained.schema.classes, folder / "confusion_matrix.png"
        )
    if metrics.get("reliability"):
        made["reliability diagram"] = plots.plot_reliability(
            metrics["reliability"], folder / "reliability.png"
        )
    for prefix in ("", "mask_", "oks_"):
        curves = metrics.get(f"{prefix}pr_curves")
        if curves:
            made[f"{prefix or 'box_'}pr curves".replace("_", " ")] = plots.plot_pr_curves(
                curves, folder / f"{prefix}pr_curves.png"
            )
    if isinstance(metrics.get("robustness"), dict) and metrics["robustness"].get("max_drop") is not None:
        made["robustness"] = plots.plot_robustness(metrics["robustness"], folder / "robustness.png")
    if trained.schema.task is TaskType.CLASSIFICATION and samples:
        made |= _explanations(trained, samples, folder)
    return made


def _explanations(
    trained: TrainedModel, samples: list[tuple[npt.NDArray[np.uint8], Label, Label]], folder: Path
) -> dict[str, Path]:
    import torch

    from visionloop.evaluation.explain import integrated_gradients, save_explanation
    from visionloop.tasks.preprocess import normalised_tensor, resize_image

    side = trained.artifact.model.image_size
    classes = trained.schema.classes
    inputs = torch.stack([normalised_tensor(image, side) for image, _, _ in samples])
    targets = [classes.index(p.class_name) if isinstance(p, ClassLabel) else 0 for _, _, p in samples]
    attributions = integrated_gradients(trained.network, inputs, targets)
    made: dict[str, Path] = {}
    for i, ((image, truth, prediction), heat) in enumerate(zip(samples, attributions, strict=True)):
        shown = resize_image(image, (side, side))
        truth_name = truth.class_name if isinstance(truth, ClassLabel) else "?"
        predicted = prediction.class_name if isinstance(prediction, ClassLabel) else "?"
        made[f"explanation {i + 1}"] = save_explanation(
            shown,
            heat,
            folder / f"explanation_{i + 1}.png",
            title=f"true {truth_name}, predicted {predicted}",
        )
    return made
