"""Helpers loaders and savers share: default provenance, grouping objects, picking labels to save."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain, pairwise
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.core.labels import ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.formats.model import Annotation, LabeledImage

DEFAULT_MODEL_VERSION = "imported"


def human_provenance(path: Path, override: Provenance | None) -> Provenance:
    """Labels a file does not attribute are a human's, named after the file (or ``--as``)."""
    return override if override is not None else Provenance.human(f"import:{path.name}")


def model_provenance(version: str | None, score: float | None, override: Provenance | None) -> Provenance:
    if override is not None and override.kind is ProvenanceKind.MODEL:
        return Provenance.model(override.model_version or DEFAULT_MODEL_VERSION, score)
    return Provenance.model(version or DEFAULT_MODEL_VERSION, score)


@dataclass
class ObjectRow:
    """One object while a loader collects them; :func:`objects_label` makes the column form."""

    box: list[float]
    class_name: str
    score: float | None = None
    polygons: list[Any] = field(default_factory=list)
    mask: dict[str, Any] | None = None
    keypoints: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)


def objects_label(rows: list[ObjectRow], keypoint_count: int = 0) -> ObjectLabels:
    """Column-oriented labels from rows; optional columns appear only when some row has them."""
    has = {
        "score": any(r.score is not None for r in rows),
        "polygons": any(r.polygons for r in rows),
        "mask": any(r.mask is not None for r in rows),
        "keypoints": keypoint_count > 0 and any(r.keypoints is not None for r in rows),
        "attributes": any(r.attributes for r in rows),
    }
    keypoints = None
    if has["keypoints"]:
        keypoints = np.zeros((len(rows), keypoint_count, 3))
        for i, row in enumerate(rows):
            if row.keypoints is not None:
                keypoints[i] = row.keypoints
    return ObjectLabels(
        boxes=np.array([r.box for r in rows], dtype=np.float64).reshape(-1, 4),
        class_names=tuple(r.class_name for r in rows),
        scores=np.array([r.score if r.score is not None else 1.0 for r in rows]) if has["score"] else None,
        masks=tuple(r.mask for r in rows) if has["mask"] else None,
        keypoints=keypoints,
        polygons=_polygon_arrays(rows) if has["polygons"] else None,
        attributes=tuple(r.attributes for r in rows) if has["attributes"] else None,
    )


def _polygon_arrays(rows: list[ObjectRow]) -> tuple[tuple[Any, ...], ...]:
    """Rings as ``(N, 2)`` arrays. Rings given as flat ``[x0, y0, x1, ...]`` lists are converted
    with one numpy call for the whole image instead of one per ring."""
    flat_rings = [ring for row in rows for ring in row.polygons if not isinstance(ring, np.ndarray)]
    if flat_rings:
        lengths = [len(ring) for ring in flat_rings]
        values = np.fromiter(chain.from_iterable(flat_rings), dtype=np.float64, count=sum(lengths))
        bounds = np.cumsum([0, *lengths])
        converted = iter([values[a:b].reshape(-1, 2) for a, b in pairwise(bounds)])
    out = []
    for row in rows:
        rings = [ring if isinstance(ring, np.ndarray) else next(converted) for ring in row.polygons]
        out.append(tuple(rings))
    return tuple(out)


def labels_to_save(image: LabeledImage, predictions: bool) -> Iterable[Annotation]:
    """The annotations an export writes: the current ground truth (human before auto, newest
    first) or, for a predictions export, every model annotation."""
    if predictions:
        return [a for a in image.annotations if a.provenance.kind is ProvenanceKind.MODEL]
    for kind in (ProvenanceKind.HUMAN, ProvenanceKind.AUTO):
        chosen = [a for a in image.annotations if a.provenance.kind is kind]
        if chosen:
            return chosen[-1:]
    return []
