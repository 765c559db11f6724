"""The dashboard's read API: the project overview, gallery pages, an item's history, thumbnails.

Everything here reads; state changes (promote, approve, roll back) stay on ``/v1`` behind the
token. Labels travel in the core's JSON (absolute pixels of the upright image), with each item's
width and height, so a page can draw them over a thumbnail of any size. Thumbnails are made
once per item and size (a draft JPEG decode, then a resize) and kept under the project's
``cache/thumbnails/``, named by the image's sha256: a path never comes from the request.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response
from PIL import Image

from visionloop.active.autolabel import RUN_KIND as AUTOLABEL_KIND
from visionloop.catalog import AnnotationRecord, Catalog, ItemRecord, RunRecord
from visionloop.catalog.browse import (
    PROVENANCES,
    GalleryEntry,
    GalleryFilter,
    gallery_page,
    labeling_progress,
)
from visionloop.core.errors import NotFoundError
from visionloop.core.labels import Label
from visionloop.datasets.records import ImageReader
from visionloop.pipelines.loop import RUN_KIND as LOOP_KIND
from visionloop.pipelines.run_log import LOG_NAME, read_log
from visionloop.pipelines.runner import RUN_KIND as PIPELINE_KIND
from visionloop.pipelines.runner import pipeline_run
from visionloop.project import Project
from visionloop.registry import GateStatus, ModelRegistry, RegistryEvent
from visionloop.storage.filesystem import atomic_write_local
from visionloop.tasks.model_files import model_version
from visionloop.training.run import RUN_KIND as TRAIN_KIND

__all__ = ["PLOTS", "THUMBNAIL_SIZES", "dashboard_api"]

THUMBNAIL_SIZES = (128, 256, 512)
# The evaluation plots a model page may show: files an evaluate run writes into its folder.
PLOTS = ("confusion_matrix", "reliability", "pr_curves", "box_pr_curves", "mask_pr_curves", "robustness")
CACHE_SECONDS = 3600


def dashboard_api(project: Project, catalog: Catalog, registry: ModelRegistry) -> APIRouter:
    router = APIRouter(prefix="/api")
    reader = ImageReader(project.config.s3.fsspec_options())
    thumbnails = project.root / "cache" / "thumbnails"

    @router.get("/overview")
    def overview() -> dict[str, Any]:
        schema = catalog.get_schema() or project.config.labels
        return {
            "project": project.config.name,
            "task": schema.task.value,
            "schema": {**schema.model_dump(mode="json"), "skeleton_indices": schema.skeleton_indices},
            **catalog.summary(),
            "progress": labeling_progress(catalog),
            "loop": _latest_loop(catalog),
        }

    @router.get("/gallery")
    def gallery(
        classes: Annotated[list[str] | None, Query(alias="class", max_length=128)] = None,
        split: Annotated[str | None, Query(max_length=32)] = None,
        provenance: Annotated[str | None, Query(pattern="^(" + "|".join(PROVENANCES) + ")$")] = None,
        min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
        max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
        disagreement: bool = False,
        after: Annotated[int | None, Query(ge=0)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 60,
    ) -> dict[str, Any]:
        chosen = GalleryFilter(
            frozenset(classes or ()), split, provenance, min_confidence, max_confidence, disagreement
        )
        page = gallery_page(catalog, chosen, after=after, limit=limit)
        return {
            "total": page.total,
            "next_after": page.next_after,
            "items": [_entry_json(entry) for entry in page.entries],
        }

    @router.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, Any]:
        record = catalog.get_item(item_id)
        history = catalog.annotation_history(item_id)
        current = catalog.current_annotations([item_id]).get(item_id)
        prediction = catalog.latest_predictions([item_id]).get(item_id)
        return {
            **_item_json(record),
            "annotation": _annotation_json(current),
            "prediction": _prediction_json(prediction),
            "history": [_annotation_json(version) for version in history],
        }

    @router.get("/models")
    def models() -> dict[str, Any]:
        aliases = registry.aliases()
        decisions = registry.decisions()
        autolabels = _autolabel_by_model(catalog)
        return {
            "aliases": aliases,
            "approval_required": list(project.config.registry.approval_required),
            "versions": [
                {
                    **version.to_dict(),
                    "plots": _plot_names(project, version.gate),
                    "approvals": {
                        alias: _decision_json(event)
                        for alias, event in decisions.get(version.version, {}).items()
                    },
                    "autolabel": autolabels.get(model_version(version.run_id, version.weights_sha256)),
                }
                for version in registry.versions()
            ],
            "history": [event.to_dict() for event in registry.history(limit=200)],
        }

    @router.get("/models/{version}/plots/{name}.png")
    def plot(version: int, name: str) -> FileResponse:
        gate = registry.get(version).gate
        if name not in PLOTS or gate is None or name not in _plot_names(project, gate):
            raise NotFoundError(f"model v{version} has no {name} plot")
        return FileResponse(project.run_folder(gate.evaluation_run) / f"{name}.png", media_type="image/png")

    @router.get("/runs")
    def runs(
        kind: Annotated[str | None, Query(max_length=32)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        return {"runs": [_run_json(run) for run in catalog.list_runs(kind=kind, limit=limit)]}

    @router.get("/runs/{run_id}")
    def run(run_id: str) -> dict[str, Any]:
        record = catalog.get_run(run_id)
        series: dict[str, list[dict[str, Any]]] = {}
        for step, epoch, name, value in catalog.run_metrics(run_id):
            series.setdefault(name, []).append({"step": step, "epoch": epoch, "value": value})
        steps = pipeline_run(project, run_id).to_dict()["steps"] if record.kind == PIPELINE_KIND else []
        return {
            **_run_json(record),
            "progress": _progress(record, steps, series),
            "config": record.config,
            "inputs": record.inputs,
            "outputs": record.outputs,
            "metrics": series,
            "steps": steps,
            "children": [_run_json(child) for child in catalog.child_runs(run_id)],
        }

    @router.get("/runs/{run_id}/log")
    def run_log(run_id: str, after: Annotated[int | None, Query(ge=0)] = None) -> dict[str, Any]:
        """Whole lines of a pipeline run's log: the last ones, or those after byte ``after``."""
        record = catalog.get_run(run_id)
        chunk = read_log(project.run_folder(record.id) / LOG_NAME, after)
        return {"text": chunk.text, "start": chunk.start, "next": chunk.end, "size": chunk.size}

    @router.get("/items/{item_id}/thumbnail")
    def thumbnail(item_id: int, size: Annotated[int, Query()] = 256) -> Response:
        if size not in THUMBNAIL_SIZES:
            size = min(THUMBNAIL_SIZES, key=lambda choice: abs(choice - size))
        record = catalog.get_item(item_id)
        path = thumbnails / f"{record.sha256}-{size}.jpg"
        if not path.is_file():
            atomic_write_local(str(path), _thumbnail(reader, record.uri, size))
        headers = {"Cache-Control": f"private, max-age={CACHE_SECONDS}"}
        return Response(path.read_bytes(), media_type="image/jpeg", headers=headers)

    return router


def _latest_loop(catalog: Catalog) -> dict[str, Any] | None:
    """The newest finished ``visionloop loop`` run: its learning curve and what labels it saved."""
    finished = [run for run in catalog.list_runs(kind=LOOP_KIND, limit=20) if run.status == "succeeded"]
    if not finished or not finished[0].outputs:
        return None
    report = finished[0].outputs
    return {
        "run_id": finished[0].id,
        "headline_metric": report.get("headline_metric"),
        "curve": [{"labels": r["labels"], "value": r["headline"]} for r in report.get("rounds", [])],
        "pool": report.get("pool"),
        "human_labels": report.get("human_labels"),
        "auto_accepted": report.get("auto_accepted"),
        "auto_accuracy": report.get("auto_accuracy"),
    }


def _autolabel_by_model(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Per model (as predictions name it), its newest finished auto-label run: how much it
    accepted and the calibration set's risk-coverage curve behind that."""
    found: dict[str, dict[str, Any]] = {}
    for run in catalog.list_runs(kind=AUTOLABEL_KIND, limit=200):  # newest first
        outputs = run.outputs or {}
        model = outputs.get("model_version")
        if run.status != "succeeded" or not isinstance(model, str) or model in found:
            continue
        found[model] = {
            "run_id": run.id,
            "target_accuracy": run.config.get("target_accuracy"),
            "confidence": run.config.get("confidence"),
            "dry_run": run.config.get("dry_run"),
            "calibration_items": outputs.get("calibration_items"),
            "candidates": outputs.get("candidates"),
            "accepted": outputs.get("accepted"),
            "coverage": outputs.get("coverage"),
            "risk_coverage": outputs.get("risk_coverage") or [],
        }
    return found


def _decision_json(event: RegistryEvent) -> dict[str, Any]:
    return {
        "decision": "approved" if event.action == "approve" else "rejected",
        "actor": event.actor,
        "reason": event.reason,
        "at": event.created_at.isoformat(),
    }


def _progress(
    run: RunRecord, steps: list[dict[str, Any]], metrics: dict[str, list[dict[str, Any]]]
) -> dict[str, Any] | None:
    """How far a run has got, in the units it counts: a pipeline's steps, a training run's epochs."""
    if steps:
        done = sum(step["status"] == "succeeded" for step in steps)
        return {"done": done, "total": len(steps), "unit": "steps"}
    epochs = (run.config.get("optim") or {}).get("epochs") if run.kind == TRAIN_KIND else None
    if isinstance(epochs, int):
        seen = {
            point["epoch"] for series in metrics.values() for point in series if point["epoch"] is not None
        }
        done = epochs if run.status == "succeeded" else min(len(seen), epochs)
        return {"done": done, "total": epochs, "unit": "epochs"}
    return None


def _run_json(run: RunRecord) -> dict[str, Any]:
    """What a runs table shows of a run: who, what, when, how it ended."""
    return {
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "parent_id": run.parent_id,
        "error": run.error,
        "created_at": run.created_at.isoformat(),
        "finished_at": None if run.finished_at is None else run.finished_at.isoformat(),
        "pipeline": run.config.get("pipeline") if run.kind == PIPELINE_KIND else None,
    }


def _plot_names(project: Project, gate: GateStatus | None) -> list[str]:
    """The plots the version's gating evaluation wrote (its run id comes from the registry)."""
    if gate is None:
        return []
    folder = project.run_folder(gate.evaluation_run)
    return [name for name in PLOTS if (folder / f"{name}.png").is_file()]


def _thumbnail(reader: ImageReader, uri: str, size: int) -> bytes:
    pixels, _ = reader.reduced(uri, size, None)
    image = Image.fromarray(pixels)
    image.thumbnail((size, size), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _item_json(record: ItemRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": Path(record.uri).name,
        "uri": record.uri,
        "width": record.width,
        "height": record.height,
        "split": record.split,
        "thumbnail": f"/api/items/{record.id}/thumbnail",
    }


def _annotation_json(annotation: AnnotationRecord | None) -> dict[str, Any] | None:
    if annotation is None:
        return None
    return {
        "version": annotation.version,
        "label": annotation.label.to_dict(),
        "provenance": annotation.provenance.model_dump(mode="json", exclude_none=True),
        "created_at": annotation.created_at.isoformat(),
    }


def _prediction_json(prediction: tuple[str, Label, float | None] | None) -> dict[str, Any] | None:
    if prediction is None:
        return None
    version, label, score = prediction
    return {"model_version": version, "label": label.to_dict(), "score": score}


def _entry_json(entry: GalleryEntry) -> dict[str, Any]:
    return {
        **_item_json(entry.item),
        "annotation": _annotation_json(entry.annotation),
        "prediction": _prediction_json(entry.prediction),
    }
