"""``dlc-train``: a DeepLabCut project zip -> import -> train keypoints -> evaluate -> export next to it.

The seeds' "upload a DeepLabCut project to S3 and get a model back" flow. The zip (a local path
or an s3:// object) is fetched and extracted with the safe extractor (no path escapes, links or
bombs) into ``uploads/<stem>-<zip sha256 prefix>/`` of the project, so the same upload always
lands in the same place and its images keep a stable home for the catalog. Its labels are
imported as human keypoints (the project must be a keypoints project whose keypoints are the
DeepLabCut bodyparts), a pose model trains on them, is evaluated and exported to ONNX, and the
model folder (ONNX graph, weights, metadata) and ``evaluation.json`` are written next to the
upload, under ``<zip without .zip>.visionloop/`` by default.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from visionloop.catalog.tables import annotation_versions
from visionloop.core.errors import ConfigError, ValidationError
from visionloop.core.schema import TaskType
from visionloop.formats.safeio import extract_zip
from visionloop.pipelines.runner import Pipeline, Step, StepContext
from visionloop.pipelines.steps import evaluate_trained, project_ingest_options, train_model
from visionloop.storage import is_remote

__all__ = ["PIPELINE", "DlcTrainParams"]

UPLOADS = "uploads"
EXPORT_KIND = "export-model"


class DlcTrainParams(BaseModel):
    """``zip``: the DeepLabCut project archive (path or s3:// URI). ``out``: where the model and its
    evaluation go (default: next to the zip, ``<zip without .zip>.visionloop/``)."""

    model_config = ConfigDict(extra="forbid")

    zip: str
    out: str | None = None
    train: dict[str, Any] = Field(default_factory=lambda: {"model": {"family": "heatmap"}})
    eval_split: str = "test"


def _params(ctx: StepContext) -> DlcTrainParams:
    params: DlcTrainParams = ctx.params
    return params


def _fetch(ctx: StepContext) -> dict[str, Any]:
    """Copy the zip into the project and extract it (again, whole, if an attempt was interrupted)."""
    params = _params(ctx)
    if not params.zip.lower().endswith(".zip"):
        raise ValidationError(f"{params.zip}: a DeepLabCut upload must be a .zip archive")
    data = ctx.project.filesystem_for(params.zip).read_bytes(params.zip)
    digest = hashlib.sha256(data).hexdigest()
    stem = posixpath.basename(params.zip)[: -len(".zip")] or "upload"
    safe_stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:80] or "upload"
    folder = ctx.project.root / UPLOADS / f"{safe_stem}-{digest[:12]}"
    done_marker = folder / ".extracted"
    if not done_marker.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        archive = folder.with_suffix(".zip")
        archive.write_bytes(data)
        try:
            extract_zip(archive, folder / "project")
        finally:
            archive.unlink(missing_ok=True)
        done_marker.write_text(digest)
    project_dir = _project_dir(folder / "project")
    return {"zip": params.zip, "sha256": digest, "folder": str(project_dir)}


def _project_dir(root: Path) -> Path:
    """The folder holding config.yaml: the archive's root or its single top folder."""
    if (root / "config.yaml").is_file():
        return root
    found = sorted(path.parent for path in root.glob("*/config.yaml"))
    if len(found) != 1:
        raise ValidationError(
            "the zip holds no DeepLabCut project (config.yaml at its root or in one folder)"
        )
    return found[0]


def _import(ctx: StepContext) -> dict[str, Any]:
    """Ingest the project's frames and import its labels once (an import that wrote is reused)."""
    from visionloop.formats.registry import LoadOptions, get_format
    from visionloop.formats.transfer import import_labels
    from visionloop.ingest import ingest

    folder = Path(str(ctx.output("fetch", "folder")))
    project = ctx.project
    schema = project.config.labels
    if schema.task is not TaskType.KEYPOINTS:
        raise ConfigError(f"dlc-train needs a keypoints project; this one is {schema.task.value}")
    found = get_format("deeplabcut").load(folder, LoadOptions()).labels.schema
    if found is None or list(found.keypoints) != list(schema.keypoints):
        theirs = list(found.keypoints) if found else "none"
        raise ConfigError(
            f"the DeepLabCut bodyparts {theirs} differ from the project's keypoints {list(schema.keypoints)}"
        )
    with project.open_catalog() as catalog:
        for run in catalog.list_runs(kind="import", limit=200):
            if run.inputs.get("path") == str(folder) and _wrote(catalog, run.id):
                return {
                    "import_run": run.id,
                    **{k: (run.outputs or {}).get(k) for k in ("imported", "rejected")},
                }

        def ingest_images(root: str) -> None:
            ingest(catalog, project.filesystem_for(root), project_ingest_options(project))

        report = import_labels(
            catalog, "deeplabcut", folder, image_root=str(folder), schema=schema, ingest_images=ingest_images
        )
    ctx.log(f"    {report.annotations_written} labelled frames imported, {report.rejected} records rejected")
    if not report.annotations_written:
        raise ValidationError(f"{ctx.output('fetch', 'zip')}: no labelled frame could be imported")
    return {"import_run": report.run_id, "imported": report.imported, "rejected": report.rejected}


def _wrote(catalog: Any, run_id: str) -> bool:
    """Did this import's transaction land? (A crash may leave its run 'running' after it did.)"""
    with catalog.engine.connect() as connection:
        query = (
            select(func.count())
            .select_from(annotation_versions)
            .where(annotation_versions.c.run_id == run_id)
        )
        return bool(connection.execute(query).scalar())


def _train(ctx: StepContext) -> dict[str, Any]:
    return train_model(ctx, _params(ctx).train)


def _evaluate(ctx: StepContext) -> dict[str, Any]:
    return evaluate_trained(
        ctx, str(ctx.output("train", "run_id")), _params(ctx).eval_split, robustness=False
    )


def _export(ctx: StepContext) -> dict[str, Any]:
    """ONNX export, then the model folder and the evaluation copied next to the upload."""
    from visionloop.tasks.onnx_export import export_project_model

    params = _params(ctx)
    model_folder = Path(str(ctx.output("train", "model_path")))
    if ctx.state.get("export_run") is None:
        run_id, export = export_project_model(ctx.project, str(model_folder), parity_images=16)
        ctx.save_state(export_run=run_id, onnx_sha256=export.onnx_sha256)
    out = (params.out or params.zip[: -len(".zip")] + ".visionloop").rstrip("/")
    if not is_remote(out):
        (Path(out) / "model").mkdir(parents=True, exist_ok=True)
    target = ctx.project.filesystem_for(out)
    written = []
    for path in sorted(model_folder.iterdir()):
        if path.is_file():
            written.append(target.write_bytes(f"model/{path.name}", path.read_bytes()))
    evaluation = {
        "zip": params.zip,
        "zip_sha256": ctx.output("fetch", "sha256"),
        "pipeline_run": ctx.run_id,
        "train_run": ctx.output("train", "run_id"),
        "evaluate_run": ctx.output("evaluate", "run_id"),
        "metrics": ctx.output("evaluate", "metrics"),
        "onnx_sha256": ctx.state.get("onnx_sha256"),
    }
    written.append(target.write_bytes("evaluation.json", json.dumps(evaluation, indent=2).encode()))
    ctx.log(f"    model and evaluation written to {out}")
    return {"out": out, "files": written, "export_run": ctx.state.get("export_run")}


PIPELINE = Pipeline(
    name="dlc-train",
    description=(
        "A DeepLabCut project zip (local or s3://): import its labelled frames, train a pose model, "
        "evaluate it and write the ONNX model and evaluation.json next to the upload."
    ),
    params=DlcTrainParams,
    steps=(
        Step("fetch", _fetch, "copy and safely extract the zip"),
        Step("import", _import, "ingest the frames, import the labels as human keypoints"),
        Step("train", _train, "train a pose model (heatmap by default)"),
        Step("evaluate", _evaluate, "evaluate on the test split"),
        Step("export", _export, "export to ONNX and write model + evaluation.json next to the zip"),
    ),
)
