"""Moving labels between files and the catalog: ``visionloop import`` and ``visionloop export``.

Imports match each labeled image to a catalog item by its path under an image root (ingesting
that root first, incrementally), then write every accepted label in one transaction: human and
auto labels as annotation versions, model labels as predictions. Exports always go through a
snapshot, so the exact item and annotation versions written can be rebuilt later.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from visionloop.catalog import Catalog, ItemRecord
from visionloop.core.errors import ConfigError, StorageError, ValidationError
from visionloop.core.labels import Label, ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema
from visionloop.formats.model import Annotation, ImportResult, LabeledImage, LabelSet, Rejection
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format
from visionloop.storage import is_remote


@dataclass
class ImportReport:
    """``records == imported + rejected`` counts the file's own records; ``images_not_found``
    lists labeled images that match no catalog item (their labels are not written)."""

    format: str
    path: str
    records: int = 0
    imported: int = 0
    rejected: int = 0
    annotations_written: int = 0
    predictions_written: int = 0
    images_not_found: list[str] = field(default_factory=list)
    rejections: list[dict[str, str]] = field(default_factory=list)
    written: bool = False
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_labels(
    catalog: Catalog,
    format_name: str,
    path: Path,
    *,
    image_root: str,
    schema: LabelSchema,
    as_kind: ProvenanceKind | None = None,
    model_version: str | None = None,
    strict: bool = False,
    reference: Path | None = None,
    ingest_images: Callable[[str], None] | None = None,
) -> ImportReport:
    """Load ``path`` in ``format_name`` and record its labels on the items under ``image_root``."""
    spec = get_format(format_name)
    override = _override(as_kind, model_version, path)
    result = spec.load(path, LoadOptions(schema=schema, provenance=override, reference=reference))
    report = ImportReport(spec.name, str(path), records=result.records, imported=result.imported)
    report.rejected = len(result.rejections)
    report.rejections = [asdict(r) for r in result.rejections]
    if ingest_images is not None:
        ingest_images(image_root)
    annotations, predictions = _resolve(catalog, result, image_root, report)
    if strict and (result.rejections or report.images_not_found):
        return report  # --strict: any problem and nothing is written
    run_id = catalog.start_run(
        "import",
        config={"format": spec.name, "as": as_kind.value if as_kind else None, "strict": strict},
        inputs={"path": str(path), "image_root": image_root},
    )
    catalog.add_labels(annotations, predictions, run_id=run_id)
    report.annotations_written, report.predictions_written = len(annotations), len(predictions)
    report.written, report.run_id = True, run_id
    catalog.finish_run(run_id, outputs={k: v for k, v in report.to_dict().items() if k != "rejections"})
    return report


def read_item_labels(
    catalog: Catalog,
    format_name: str,
    path: Path,
    *,
    image_root: str,
    schema: LabelSchema,
) -> tuple[dict[int, Label], ImportReport]:
    """The labels a file gives the catalog's items under ``image_root``, without writing them
    (e.g. hidden ground truth for a simulated annotator): one label per item, the file's first."""
    spec = get_format(format_name)
    result = spec.load(path, LoadOptions(schema=schema))
    report = ImportReport(spec.name, str(path), records=result.records, imported=result.imported)
    report.rejected = len(result.rejections)
    report.rejections = [asdict(r) for r in result.rejections]
    annotations, _ = _resolve(catalog, result, image_root, report)
    labels: dict[int, Label] = {}
    for item_id, label, _provenance in annotations:
        labels.setdefault(item_id, label)
    return labels, report


def _override(as_kind: ProvenanceKind | None, model_version: str | None, path: Path) -> Provenance | None:
    if as_kind is ProvenanceKind.HUMAN:
        return Provenance.human(f"import:{path.name}")
    if as_kind is ProvenanceKind.MODEL:
        return Provenance.model(model_version or f"import:{path.name}")
    if as_kind is ProvenanceKind.AUTO:
        raise ConfigError("auto labels come only from a calibration run, not from an import")
    return None


def _resolve(
    catalog: Catalog, result: ImportResult, image_root: str, report: ImportReport
) -> tuple[list[tuple[int, Label, Provenance]], list[tuple[int, str, Label, float | None]]]:
    labeled = [image for image in result.labels.images if image.annotations]
    uris = {image.name: _join(image_root, image.name) for image in labeled}
    items = catalog.item_ids_for_uris(list(uris.values()))
    annotations: list[tuple[int, Label, Provenance]] = []
    predictions: list[tuple[int, str, Label, float | None]] = []
    for image in labeled:
        item_id = items.get(uris[image.name])
        if item_id is None:
            report.images_not_found.append(uris[image.name])
            continue
        for annotation in image.annotations:
            provenance = annotation.provenance
            if provenance.kind is ProvenanceKind.MODEL:
                predictions.append(
                    (item_id, provenance.model_version or "imported", annotation.label, provenance.score)
                )
            else:
                annotations.append((item_id, annotation.label, provenance))
    return annotations, predictions


def _join(root: str, name: str) -> str:
    if is_remote(root):
        return posixpath.join(root.rstrip("/"), name)
    return os.path.normpath(os.path.join(os.path.abspath(root), name))


@dataclass
class ExportReport:
    format: str
    out: str
    snapshot: str
    images: int
    labels: int
    files: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_labels(
    catalog: Catalog,
    format_name: str,
    out: Path,
    *,
    schema: LabelSchema,
    snapshot_id: str | None = None,
    split: str | None = None,
    predictions: bool = False,
) -> ExportReport:
    """Write a snapshot's labels (or its items' newest predictions) in ``format_name``."""
    spec = get_format(format_name)
    snapshot = catalog.get_snapshot(snapshot_id) if snapshot_id else catalog.create_snapshot(split=split)
    rows = [(item, annotation) for item, annotation in catalog.snapshot_annotations(snapshot.id)]
    if split is not None:
        rows = [(item, annotation) for item, annotation in rows if item.split == split]
    root, names = export_names([item for item, _ in rows])
    latest = catalog.latest_predictions([item.id for item, _ in rows]) if predictions else {}
    labels = LabelSet(schema)
    count = 0
    for item, annotation in rows:
        image = LabeledImage(names[item.id], item.width, item.height)
        if annotation is not None:
            image.annotations.append(Annotation(annotation.label, annotation.provenance))
            count += 1
        if item.id in latest:
            version, label, score = latest[item.id]
            image.annotations.append(Annotation(label, Provenance.model(version, score)))
            count += 1
        labels.images.append(image)
    _check_labels_fit(labels, schema)
    source = Path(root) if root and not is_remote(root) else None
    try:
        written = spec.save(labels, out, SaveOptions(predictions=predictions, image_source=source))
    except OSError as exc:
        raise StorageError(f"{str(out)[:200]}: cannot write the export: {exc.strerror or exc}") from exc
    except RecursionError as exc:  # Path.mkdir(parents=True) recurses once per missing folder
        raise StorageError(f"{str(out)[:200]}: cannot write the export: too many nested folders") from exc
    return ExportReport(
        spec.name, str(out), snapshot.id, len(labels.images), count, [str(p) for p in written]
    )


def export_names(items: list[ItemRecord]) -> tuple[str | None, dict[int, str]]:
    """Names for exported images: paths relative to the items' common folder, so files with the
    same name in different folders never collide (URIs are unique, so these are too)."""
    if not items:
        return None, {}
    uris = [item.uri for item in items]
    if all(not is_remote(uri) for uri in uris):
        root = os.path.commonpath([os.path.dirname(uri) for uri in uris])
        return root, {item.id: Path(os.path.relpath(item.uri, root)).as_posix() for item in items}
    # Mixed or remote locations: keep scheme and bucket in the name.
    return None, {item.id: item.uri.replace("://", "/", 1) for item in items}


def _check_labels_fit(labels: LabelSet, schema: LabelSchema) -> None:
    for image in labels.images:
        for annotation in image.annotations:
            label = annotation.label
            names = label.class_names if isinstance(label, ObjectLabels) else (label.class_name,)
            unknown = sorted(set(names) - set(schema.classes))
            if unknown:
                raise ValidationError(f"{image.name}: classes {unknown} are not in the project schema")


__all__ = [
    "ExportReport",
    "ImportReport",
    "Rejection",
    "export_labels",
    "export_names",
    "import_labels",
    "read_item_labels",
]
