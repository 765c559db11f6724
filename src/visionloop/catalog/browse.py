"""Browsing the catalog page by page: items with their current label and newest prediction,
filtered by class, split, provenance, model confidence and human-model disagreement.

The dashboard's gallery reads here. An unfiltered page is read straight from the items table (a
range scan on the primary key, then the labels of those items only), so the first page costs
the same on 100 items as on 100,000. Filtered pages use a :class:`GalleryIndex`: one row per
active item (split, current label's provenance and classes, newest prediction's classes and
score) built in one pass and reused until the catalog changes (:func:`change_mark`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, func, select

from visionloop.catalog.catalog import (
    ITEM_COLUMNS,
    REVOKED,
    Catalog,
    counted_annotations,
    current_annotation_query,
    item_record,
)
from visionloop.catalog.engine import read_connection
from visionloop.catalog.records import AnnotationRecord, ItemRecord
from visionloop.catalog.tables import annotation_classes, annotation_versions, media_items, runs
from visionloop.catalog.tables import predictions as predictions_table
from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label

__all__ = [
    "PROVENANCES",
    "GalleryEntry",
    "GalleryFilter",
    "GalleryIndex",
    "GalleryPage",
    "change_mark",
    "gallery_page",
    "labeling_progress",
    "payload_classes",
    "warm_gallery_index",
]

PROVENANCES = ("human", "auto", "model", "none")  # "none": no label of any kind yet
MAX_PAGE = 500


@dataclass(frozen=True)
class GalleryFilter:
    """What the gallery shows; every field set narrows it. ``classes``: the current label has
    one of them. ``min_confidence``/``max_confidence``: bounds on the newest prediction's item
    score (items without a prediction never match). ``disagreement``: a human label whose
    classes differ from the newest prediction's."""

    classes: frozenset[str] = frozenset()
    split: str | None = None
    provenance: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    disagreement: bool = False

    def __post_init__(self) -> None:
        if self.provenance is not None and self.provenance not in PROVENANCES:
            raise ValidationError(
                f"unknown provenance {self.provenance!r}: use one of {', '.join(PROVENANCES)}"
            )
        for bound in (self.min_confidence, self.max_confidence):
            if bound is not None and not 0.0 <= bound <= 1.0:
                raise ValidationError(f"confidence bounds lie within [0, 1], got {bound}")

    @property
    def empty(self) -> bool:
        return self == GalleryFilter()


@dataclass(frozen=True)
class GalleryEntry:
    item: ItemRecord
    annotation: AnnotationRecord | None
    prediction: tuple[str, Label, float | None] | None  # (model version, label, item score)


@dataclass(frozen=True)
class GalleryPage:
    entries: list[GalleryEntry]
    total: int  # items that match, on every page
    next_after: int | None  # pass as ``after`` for the next page; None on the last


def payload_classes(payload: dict[str, Any]) -> frozenset[str]:
    """The class names in a stored label (a class label or objects), without building it."""
    if payload.get("type") == "class":
        return frozenset([str(payload["class_name"])])
    return frozenset(str(name) for name in payload.get("class_names") or ())


def change_mark(engine: Engine) -> tuple[Any, ...]:
    """Moves whenever the index may be stale: items added or (de)activated, annotations or
    predictions added, calibration runs revoked (which withdraws their auto labels)."""
    active = media_items.c.status == "active"
    query = select(
        select(func.max(media_items.c.id)).scalar_subquery(),
        select(func.coalesce(func.sum(media_items.c.id), 0)).where(active).scalar_subquery(),
        select(func.max(annotation_versions.c.id)).scalar_subquery(),
        select(func.max(predictions_table.c.id)).scalar_subquery(),
        select(func.count()).select_from(runs).where(runs.c.status == REVOKED).scalar_subquery(),
    )
    with read_connection(engine) as connection:
        return tuple(connection.execute(query).one())


@dataclass
class GalleryIndex:
    """One row per active item, in id order, for filtering without reading labels (splits,
    which change without a trace in :func:`change_mark`, are asked of the database each time)."""

    ids: npt.NDArray[np.int64]
    provenance: npt.NDArray[np.int8]  # index into PROVENANCES
    confidence: npt.NDArray[np.float64]  # newest prediction's score; NaN without one
    disagrees: npt.NDArray[np.bool_]
    by_class: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)  # positions per class

    @classmethod
    def build(cls, engine: Engine) -> GalleryIndex:
        with read_connection(engine) as connection:
            rows = connection.execute(
                select(media_items.c.id).where(media_items.c.status == "active").order_by(media_items.c.id)
            ).scalars()
            ids = np.fromiter(rows, dtype=np.int64)
            current = current_annotation_query().subquery()
            labelled = connection.execute(
                select(current.c.item_id, current.c.provenance, annotation_classes.c.class_name).outerjoin(
                    annotation_classes, annotation_classes.c.annotation_id == current.c.id
                )
            ).all()
            newest = _newest_predictions(connection)
        position = {int(item): index for index, item in enumerate(ids)}
        provenance = np.full(len(ids), PROVENANCES.index("none"), dtype=np.int8)
        human_classes: dict[int, set[str]] = {}
        members: dict[str, list[int]] = {}
        for item_id, kind, class_name in labelled:
            at = position.get(int(item_id))
            if at is None:
                continue
            provenance[at] = PROVENANCES.index(kind)
            if class_name is not None:
                members.setdefault(class_name, []).append(at)
                if kind == "human":
                    human_classes.setdefault(at, set()).add(class_name)
            elif kind == "human":
                human_classes.setdefault(at, set())
        confidence = np.full(len(ids), np.nan)
        disagrees = np.zeros(len(ids), dtype=np.bool_)
        for item_id, score, payload in newest:
            at = position.get(int(item_id))
            if at is None:
                continue
            confidence[at] = np.nan if score is None else float(score)
            if at in human_classes and human_classes[at] != payload_classes(payload):
                disagrees[at] = True
        by_class = {name: np.unique(np.asarray(found, dtype=np.int64)) for name, found in members.items()}
        return cls(ids, provenance, confidence, disagrees, by_class)

    def matching(
        self, chosen: GalleryFilter, split_ids: npt.NDArray[np.int64] | None = None
    ) -> npt.NDArray[np.int64]:
        """The ids of the items that match, in id order; ``split_ids``: the ids in the chosen
        split, when one is chosen."""
        mask = np.ones(len(self.ids), dtype=np.bool_)
        if chosen.classes:
            in_class = np.zeros(len(self.ids), dtype=np.bool_)
            for name in chosen.classes:
                in_class[self.by_class.get(name, np.empty(0, dtype=np.int64))] = True
            mask &= in_class
        if split_ids is not None:
            mask &= np.isin(self.ids, split_ids, assume_unique=True)
        if chosen.provenance is not None:
            mask &= self.provenance == PROVENANCES.index(chosen.provenance)
        with np.errstate(invalid="ignore"):  # NaN (no prediction) compares False: never matches
            if chosen.min_confidence is not None:
                mask &= self.confidence >= chosen.min_confidence
            if chosen.max_confidence is not None:
                mask &= self.confidence <= chosen.max_confidence
        if chosen.disagreement:
            mask &= self.disagrees
        return self.ids[mask]


class _IndexCache:
    """The newest index per catalog, rebuilt when its :func:`change_mark` moves."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[tuple[Any, ...], GalleryIndex]] = {}

    def get(self, engine: Engine) -> GalleryIndex:
        mark = change_mark(engine)
        key = str(engine.url)
        with self.lock:
            cached = self.entries.get(key)
            if cached is not None and cached[0] == mark:
                return cached[1]
            index = GalleryIndex.build(engine)
            self.entries[key] = (mark, index)
            return index


_CACHE = _IndexCache()


def warm_gallery_index(catalog: Catalog) -> None:
    """Build the filter index now (a server calls this in the background as it starts), so
    the first filtered gallery page does not wait for it."""
    _CACHE.get(catalog.engine)


def gallery_page(
    catalog: Catalog, chosen: GalleryFilter | None = None, after: int | None = None, limit: int = 60
) -> GalleryPage:
    """Up to ``limit`` matching items with ids above ``after``, with their labels."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"a page holds 1 to {MAX_PAGE} items, not {limit}")
    chosen = chosen or GalleryFilter()
    if chosen.empty:
        ids, total = _plain_ids(catalog.engine, after, limit + 1)
    else:
        matching = _CACHE.get(catalog.engine).matching(chosen, _split_ids(catalog.engine, chosen.split))
        start = 0 if after is None else int(np.searchsorted(matching, after, side="right"))
        ids, total = [int(item) for item in matching[start : start + limit + 1]], len(matching)
    shown = ids[:limit]
    next_after = shown[-1] if len(ids) > limit else None
    return GalleryPage(_entries(catalog, shown), total, next_after)


def _plain_ids(engine: Engine, after: int | None, count: int) -> tuple[list[int], int]:
    active = media_items.c.status == "active"
    query = select(media_items.c.id).where(active).order_by(media_items.c.id).limit(count)
    if after is not None:
        query = query.where(media_items.c.id > after)
    with read_connection(engine) as connection:
        ids = [int(item) for item in connection.execute(query).scalars()]
        total = int(connection.execute(select(func.count()).where(active)).scalar_one())
    return ids, total


def _split_ids(engine: Engine, split: str | None) -> npt.NDArray[np.int64] | None:
    if split is None:
        return None
    with read_connection(engine) as connection:
        found = connection.execute(select(media_items.c.id).where(media_items.c.split == split)).scalars()
        return np.fromiter(found, dtype=np.int64)


def _entries(catalog: Catalog, ids: Sequence[int]) -> list[GalleryEntry]:
    if not ids:
        return []
    with read_connection(catalog.engine) as connection:
        items = {
            row.id: item_record(row)
            for row in connection.execute(select(*ITEM_COLUMNS).where(media_items.c.id.in_(list(ids))))
        }
    annotations = catalog.current_annotations(ids)
    predictions = catalog.latest_predictions(ids)
    return [GalleryEntry(items[i], annotations.get(i), predictions.get(i)) for i in ids if i in items]


def _newest_predictions(connection: Any) -> Iterable[tuple[int, float | None, dict[str, Any]]]:
    ranked = select(
        predictions_table.c.item_id,
        predictions_table.c.score,
        predictions_table.c.payload,
        func.row_number()
        .over(partition_by=predictions_table.c.item_id, order_by=predictions_table.c.id.desc())
        .label("rank"),
    ).subquery()
    rows = connection.execute(
        select(ranked.c.item_id, ranked.c.score, ranked.c.payload).where(ranked.c.rank == 1)
    )
    return [(int(item), score, payload) for item, score, payload in rows]


def labeling_progress(catalog: Catalog) -> list[dict[str, Any]]:
    """Per day, how many items had a human (and an auto) label by then: each item counts from its
    first label of that kind; cumulative, oldest day first."""
    first = (
        select(
            annotation_versions.c.item_id,
            annotation_versions.c.provenance,
            func.min(annotation_versions.c.created_at).label("at"),
        )
        .where(annotation_versions.c.provenance.in_(("human", "auto")) & counted_annotations())
        .group_by(annotation_versions.c.item_id, annotation_versions.c.provenance)
        .subquery()
    )
    day = func.date(first.c.at)
    query = select(day, first.c.provenance, func.count()).group_by(day, first.c.provenance).order_by(day)
    totals = {"human": 0, "auto": 0}
    days: dict[str, dict[str, Any]] = {}
    with read_connection(catalog.engine) as connection:
        for when, kind, count in connection.execute(query):
            totals[kind] += int(count)
            days[str(when)] = {"day": str(when), **totals}
    return list(days.values())
