"""The catalog facade: one object to record items, labels, predictions, runs and snapshots.

Nothing is overwritten. Annotations are versions that supersede each other; the label an item
*has* is resolved at read time, human before auto before model, newest first within a kind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from visionloop.catalog.engine import (
    create_catalog_engine,
    migrate,
    read_connection,
    redacted_url,
    write_transaction,
)
from visionloop.catalog.ingest_store import (
    FileIndex,
    FileOutcome,
    ProbedFile,
    load_file_index,
    load_rejection_reasons,
    mark_missing,
    record_probed_files,
)
from visionloop.catalog.records import (
    AnnotationRecord,
    ItemRecord,
    RunRecord,
    SnapshotRecord,
    utcnow,
)
from visionloop.catalog.tables import (
    SPLIT_MAX_LENGTH,
    annotation_classes,
    annotation_versions,
    files,
    label_schemas,
    media_items,
    run_metrics,
    runs,
    snapshot_entries,
    snapshots,
)
from visionloop.catalog.tables import (
    predictions as predictions_table,
)
from visionloop.core.errors import CatalogError, NotFoundError, ValidationError
from visionloop.core.labels import Label, label_from_dict
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema

REVOKED = "revoked"  # the status of a calibration run whose auto labels no longer count
_PRECEDENCE = {
    ProvenanceKind.HUMAN.value: 0,
    ProvenanceKind.AUTO.value: 1,
    ProvenanceKind.MODEL.value: 2,
}


class Catalog:
    """Typed access to one catalog database (SQLite file or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Catalog:
        """Open (creating and migrating as needed) the catalog at ``url``."""
        engine = create_catalog_engine(url)
        try:
            migrate(engine)
        except (OperationalError, IntegrityError) as exc:
            engine.dispose()
            raise CatalogError(f"cannot open catalog {redacted_url(url)}: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            engine.dispose()
            raise CatalogError(f"cannot open catalog {redacted_url(url)}: {exc}") from exc
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- label schema ---------------------------------------------------------------------
    def set_schema(self, schema: LabelSchema) -> bool:
        """Record ``schema`` as current unless it already is; returns whether it changed."""
        payload = schema.model_dump(mode="json")
        with write_transaction(self.engine) as connection:
            current = connection.execute(
                select(label_schemas.c.payload).order_by(label_schemas.c.id.desc()).limit(1)
            ).scalar()
            if current == payload:
                return False
            connection.execute(
                insert(label_schemas).values(task=schema.task.value, payload=payload, created_at=utcnow())
            )
            return True

    def get_schema(self) -> LabelSchema | None:
        with read_connection(self.engine) as connection:
            payload = connection.execute(
                select(label_schemas.c.payload).order_by(label_schemas.c.id.desc()).limit(1)
            ).scalar()
        return None if payload is None else LabelSchema.model_validate(payload)

    # -- ingest ---------------------------------------------------------------------------
    def file_index(self, root: str) -> FileIndex:
        """``{uri: (fingerprint, status)}`` of every indexed path at or under ``root``."""
        with read_connection(self.engine) as connection:
            return load_file_index(connection, root)

    def rejection_reasons(self, uris: Sequence[str]) -> dict[str, str]:
        """Why each of ``uris`` was rejected when it was last read."""
        with read_connection(self.engine) as connection:
            return load_rejection_reasons(connection, uris)

    def record_files(
        self,
        probed: Sequence[ProbedFile],
        *,
        split_for: Callable[[str], str | None],
        source: str,
        run_id: str | None,
    ) -> list[FileOutcome]:
        with write_transaction(self.engine) as connection:
            return record_probed_files(connection, probed, split_for=split_for, source=source, run_id=run_id)

    def mark_missing(self, uris: Sequence[str]) -> None:
        with write_transaction(self.engine) as connection:
            mark_missing(connection, uris)

    # -- items ----------------------------------------------------------------------------
    def get_item(self, item_id: int) -> ItemRecord:
        with read_connection(self.engine) as connection:
            row = connection.execute(select(*ITEM_COLUMNS).where(media_items.c.id == item_id)).first()
        if row is None:
            raise NotFoundError(f"no item with id {item_id}")
        return item_record(row)

    def iter_items(self, split: str | None = None, status: str = "active") -> Iterator[ItemRecord]:
        query = select(*ITEM_COLUMNS).where(media_items.c.status == status).order_by(media_items.c.id)
        if split is not None:
            query = query.where(media_items.c.split == split)
        with read_connection(self.engine) as connection:
            for row in connection.execute(query):
                yield item_record(row)

    def assign_split(self, item_ids: Sequence[int], split: str) -> int:
        """Move items to ``split`` (e.g. a calibration hold-out); returns how many changed.

        Snapshots keep the split each item had when they were taken.
        """
        if not split or len(split) > SPLIT_MAX_LENGTH:
            raise ValidationError(f"a split name has 1 to {SPLIT_MAX_LENGTH} characters, got {split!r}")
        changed = 0
        with write_transaction(self.engine) as connection:
            for start in range(0, len(item_ids), 5000):
                chunk = list(item_ids[start : start + 5000])
                result = connection.execute(
                    update(media_items)
                    .where(media_items.c.id.in_(chunk), media_items.c.split.is_distinct_from(split))
                    .values(split=split)
                )
                changed += int(result.rowcount or 0)
        return changed

    def count_items(self) -> int:
        with read_connection(self.engine) as connection:
            return int(connection.execute(select(func.count()).select_from(media_items)).scalar_one())

    # -- annotations ----------------------------------------------------------------------
    def add_annotation(
        self, item_id: int, label: Label, provenance: Provenance, run_id: str | None = None
    ) -> AnnotationRecord:
        """Append a new version of ``item_id``'s annotation; earlier versions stay readable."""
        return self.add_annotations([(item_id, label, provenance)], run_id=run_id)[0]

    def add_annotations(
        self, entries: Sequence[tuple[int, Label, Provenance]], run_id: str | None = None
    ) -> list[AnnotationRecord]:
        return self.add_labels(entries, (), run_id)

    def add_labels(
        self,
        annotations: Sequence[tuple[int, Label, Provenance]],
        predictions: Sequence[tuple[int, str, Label, float | None]],
        run_id: str | None = None,
    ) -> list[AnnotationRecord]:
        """Append annotation versions and store predictions ``(item, model version, label, score)``
        in one transaction: an import lands whole or not at all."""
        now = utcnow()
        with write_transaction(self.engine) as connection:
            records = [
                _append_annotation(connection, item_id, label, provenance, run_id, now)
                for item_id, label, provenance in annotations
            ]
            if predictions:
                connection.execute(
                    insert(predictions_table),
                    [
                        {
                            "item_id": item_id,
                            "run_id": run_id,
                            "model_version": version,
                            "payload": label.to_dict(),
                            "score": score,
                            "created_at": now,
                        }
                        for item_id, version, label, score in predictions
                    ],
                )
        return records

    def add_annotation_and(
        self,
        item_id: int,
        label: Label,
        provenance: Provenance,
        also: Callable[[Connection, AnnotationRecord], None],
        run_id: str | None = None,
    ) -> AnnotationRecord:
        """Append a version and run ``also`` on the same transaction (say, recording which labeling
        tool annotation it came from), so both land or neither does."""
        with write_transaction(self.engine) as connection:
            record = _append_annotation(connection, item_id, label, provenance, run_id, utcnow())
            also(connection, record)
        return record

    def annotation_history(self, item_id: int) -> list[AnnotationRecord]:
        with read_connection(self.engine) as connection:
            rows = connection.execute(
                select(*ANNOTATION_COLUMNS)
                .where(annotation_versions.c.item_id == item_id)
                .order_by(annotation_versions.c.version)
            ).all()
        return [annotation_record(row) for row in rows]

    def current_annotations(self, item_ids: Sequence[int] | None = None) -> dict[int, AnnotationRecord]:
        """The label each item has now: human > auto > model, newest version within a kind."""
        if item_ids is None:
            queries = [current_annotation_query()]
        else:  # bounded IN lists: SQLite allows ~32k parameters per statement
            ids = list(item_ids)
            queries = [current_annotation_query(ids[i : i + 5000]) for i in range(0, len(ids), 5000)]
        out: dict[int, AnnotationRecord] = {}
        with read_connection(self.engine) as connection:
            for query in queries:
                out.update({row.item_id: annotation_record(row) for row in connection.execute(query)})
        return out

    def annotated_item_ids(self) -> set[int]:
        """Items with an annotation of any provenance: the keys of :meth:`current_annotations`,
        without reading and parsing every label."""
        with read_connection(self.engine) as connection:
            query = select(annotation_versions.c.item_id).where(counted_annotations()).distinct()
            return {int(item_id) for item_id in connection.execute(query).scalars()}

    # -- predictions ----------------------------------------------------------------------
    def add_predictions(
        self,
        model_version: str,
        entries: Sequence[tuple[int, Label, float | None]],
        run_id: str | None = None,
    ) -> int:
        self.add_labels(
            (), [(item_id, model_version, label, score) for item_id, label, score in entries], run_id
        )
        return len(entries)

    def run_predictions(self, run_id: str) -> dict[int, tuple[Label, float | None]]:
        """The predictions one run stored, by item (the newest when a resumed run repeated one)."""
        query = (
            select(predictions_table.c.item_id, predictions_table.c.payload, predictions_table.c.score)
            .where(predictions_table.c.run_id == run_id)
            .order_by(predictions_table.c.id)
        )
        with read_connection(self.engine) as connection:
            return {
                item_id: (label_from_dict(payload), score)
                for item_id, payload, score in connection.execute(query)
            }

    def latest_predictions(self, item_ids: Sequence[int]) -> dict[int, tuple[str, Label, float | None]]:
        """Each item's newest prediction as ``(model version, label, score)``."""
        ranked = select(
            predictions_table.c.item_id,
            predictions_table.c.model_version,
            predictions_table.c.payload,
            predictions_table.c.score,
            func.row_number()
            .over(partition_by=predictions_table.c.item_id, order_by=predictions_table.c.id.desc())
            .label("rank"),
        ).subquery()
        out: dict[int, tuple[str, Label, float | None]] = {}
        with read_connection(self.engine) as connection:
            for start in range(0, len(item_ids), 500):
                chunk = list(item_ids[start : start + 500])
                query = select(
                    ranked.c.item_id, ranked.c.model_version, ranked.c.payload, ranked.c.score
                ).where((ranked.c.rank == 1) & ranked.c.item_id.in_(chunk))
                for item_id, version, payload, score in connection.execute(query):
                    out[item_id] = (version, label_from_dict(payload), score)
        return out

    def item_ids_for_uris(self, uris: Sequence[str]) -> dict[str, int]:
        """The item each file path holds (directly or as a content duplicate)."""
        found: dict[str, int] = {}
        with read_connection(self.engine) as connection:
            for start in range(0, len(uris), 500):
                chunk = list(uris[start : start + 500])
                query = select(files.c.uri, files.c.item_id).where(
                    files.c.uri.in_(chunk)
                    & files.c.item_id.is_not(None)
                    & files.c.status.in_(("item", "duplicate"))
                )
                found.update({uri: item_id for uri, item_id in connection.execute(query)})
        return found

    # -- runs -----------------------------------------------------------------------------
    def start_run(
        self,
        kind: str,
        config: dict[str, Any],
        inputs: dict[str, Any],
        parent_id: str | None = None,
    ) -> str:
        run_id = uuid.uuid4().hex
        with write_transaction(self.engine) as connection:
            connection.execute(
                insert(runs).values(
                    id=run_id,
                    kind=kind,
                    status="running",
                    config=config,
                    inputs=inputs,
                    parent_id=parent_id,
                    created_at=utcnow(),
                )
            )
        return run_id

    def finish_run(self, run_id: str, outputs: dict[str, Any], error: str | None = None) -> None:
        with write_transaction(self.engine) as connection:
            result = connection.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status="failed" if error else "succeeded",
                    outputs=outputs,
                    error=error,
                    finished_at=utcnow(),
                )
            )
        if result.rowcount == 0:
            raise NotFoundError(f"no run with id {run_id}")

    def revoke_run(self, run_id: str, reason: str) -> None:
        """Withdraw a finished calibration run: the auto labels it allowed stop counting (they stay
        in the history), so items fall back to their next label by precedence."""
        with write_transaction(self.engine) as connection:
            result = connection.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status == "succeeded")
                .values(status=REVOKED, error=reason)
            )
            if not result.rowcount:
                raise ValidationError(f"run {run_id} is not a finished run that can be revoked")

    def log_metrics(self, run_id: str, step: int, values: dict[str, float], epoch: int | None = None) -> None:
        """Record one step's metrics in a run's time series (non-finite values are skipped).

        Idempotent: a value already there for the same step and name is replaced, so a resumed
        run that repeats a step after ``kill -9`` does not record it twice."""
        now = utcnow()
        rows = [
            {"run_id": run_id, "step": step, "epoch": epoch, "name": name, "value": float(value)}
            | {"created_at": now}
            for name, value in values.items()
            if value is not None and float(value) == float(value) and abs(float(value)) != float("inf")
        ]
        if not rows:
            return
        with write_transaction(self.engine) as connection:
            connection.execute(
                delete(run_metrics).where(
                    run_metrics.c.run_id == run_id,
                    run_metrics.c.step == step,
                    run_metrics.c.name.in_([row["name"] for row in rows]),
                )
            )
            connection.execute(insert(run_metrics), rows)

    def run_metrics(self, run_id: str) -> list[tuple[int, int | None, str, float]]:
        """A run's logged metrics as ``(step, epoch, name, value)``, in logging order."""
        with read_connection(self.engine) as connection:
            return [
                (int(step), epoch, str(name), float(value))
                for step, epoch, name, value in connection.execute(
                    select(run_metrics.c.step, run_metrics.c.epoch, run_metrics.c.name, run_metrics.c.value)
                    .where(run_metrics.c.run_id == run_id)
                    .order_by(run_metrics.c.id)
                )
            ]

    def get_run(self, run_id: str) -> RunRecord:
        with read_connection(self.engine) as connection:
            row = connection.execute(select(*_RUN_COLUMNS).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"no run with id {run_id}")
        return RunRecord(**row._asdict())

    def list_runs(self, kind: str | None = None, limit: int = 50) -> list[RunRecord]:
        query = select(*_RUN_COLUMNS).order_by(runs.c.created_at.desc()).limit(limit)
        if kind is not None:
            query = query.where(runs.c.kind == kind)
        with read_connection(self.engine) as connection:
            return [RunRecord(**row._asdict()) for row in connection.execute(query)]

    def child_runs(self, parent_id: str, kind: str | None = None) -> list[RunRecord]:
        """The runs started on behalf of ``parent_id`` (a loop, tuning or pipeline run), newest first."""
        query = select(*_RUN_COLUMNS).where(runs.c.parent_id == parent_id).order_by(runs.c.created_at.desc())
        if kind is not None:
            query = query.where(runs.c.kind == kind)
        with read_connection(self.engine) as connection:
            return [RunRecord(**row._asdict()) for row in connection.execute(query)]

    def runs_with_input(self, kind: str, key: str, value: str, status: str = "succeeded") -> list[RunRecord]:
        """Runs of ``kind`` in ``status`` whose recorded input ``key`` is ``value``, newest first,
        found by the database (a JSON path query) rather than by reading every run."""
        query = (
            select(*_RUN_COLUMNS)
            .where(runs.c.kind == kind, runs.c.status == status, runs.c.inputs[key].as_string() == value)
            .order_by(runs.c.created_at.desc())
        )
        with read_connection(self.engine) as connection:
            return [RunRecord(**row._asdict()) for row in connection.execute(query)]

    # -- snapshots ------------------------------------------------------------------------
    def create_snapshot(self, name: str | None = None, split: str | None = None) -> SnapshotRecord:
        """Freeze the current items and their current annotation versions.

        The id is a hash of the exact (item, content, annotation version, split) tuples, so the
        same state always yields the same snapshot and any change yields a new one.
        """
        with write_transaction(self.engine) as connection:
            current = current_annotation_query().subquery()
            query = (
                select(media_items.c.id, media_items.c.sha256, media_items.c.split, current.c.id)
                .select_from(media_items.outerjoin(current, current.c.item_id == media_items.c.id))
                .where(media_items.c.status == "active")
                .order_by(media_items.c.id)
            )
            if split is not None:
                query = query.where(media_items.c.split == split)
            entries = connection.execute(query).all()
            digest = hashlib.sha256()
            for item_id, sha, item_split, annotation_id in entries:
                digest.update(f"{item_id}:{sha}:{annotation_id}:{item_split}\n".encode())
            snapshot_id = digest.hexdigest()[:20]
            existing = connection.execute(
                select(*_SNAPSHOT_COLUMNS).where(snapshots.c.id == snapshot_id)
            ).first()
            if existing is not None:
                return SnapshotRecord(*existing)
            record = SnapshotRecord(
                id=snapshot_id,
                name=name,
                item_count=len(entries),
                annotation_count=sum(1 for entry in entries if entry[3] is not None),
                created_at=utcnow(),
            )
            connection.execute(
                insert(snapshots).values(
                    id=record.id,
                    name=record.name,
                    item_count=record.item_count,
                    annotation_count=record.annotation_count,
                    created_at=record.created_at,
                )
            )
            rows = [
                {
                    "snapshot_id": snapshot_id,
                    "item_id": item_id,
                    "annotation_id": annotation_id,
                    "split": item_split,
                }
                for item_id, _sha, item_split, annotation_id in entries
            ]
            for start in range(0, len(rows), 5000):
                connection.execute(insert(snapshot_entries), rows[start : start + 5000])
            return record

    def get_snapshot(self, snapshot_id: str) -> SnapshotRecord:
        with read_connection(self.engine) as connection:
            row = connection.execute(select(*_SNAPSHOT_COLUMNS).where(snapshots.c.id == snapshot_id)).first()
        if row is None:
            raise NotFoundError(f"no snapshot with id {snapshot_id}")
        return SnapshotRecord(*row)

    def snapshot_annotations(self, snapshot_id: str) -> list[tuple[ItemRecord, AnnotationRecord | None]]:
        """Rebuild a snapshot exactly: its items with the annotation versions it froze."""
        self.get_snapshot(snapshot_id)
        with read_connection(self.engine) as connection:
            rows = connection.execute(
                select(*ITEM_COLUMNS, *ANNOTATION_COLUMNS, snapshot_entries.c.split)
                .select_from(
                    snapshot_entries.join(
                        media_items, media_items.c.id == snapshot_entries.c.item_id
                    ).outerjoin(
                        annotation_versions, annotation_versions.c.id == snapshot_entries.c.annotation_id
                    )
                )
                .where(snapshot_entries.c.snapshot_id == snapshot_id)
                .order_by(media_items.c.id)
            ).all()
        n_item = len(ITEM_COLUMNS)
        out: list[tuple[ItemRecord, AnnotationRecord | None]] = []
        for row in rows:
            item = dataclasses.replace(item_record(row[:n_item]), split=row[-1])  # the frozen split
            annotation = None if row[n_item] is None else annotation_record(row[n_item:-1])
            out.append((item, annotation))
        return out

    # -- status ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Counts for ``visionloop status``: items per split, labels by provenance, class balance."""
        with read_connection(self.engine) as connection:
            by_split = {
                (split or "unassigned"): count
                for split, count in connection.execute(
                    select(media_items.c.split, func.count())
                    .where(media_items.c.status == "active")
                    .group_by(media_items.c.split)
                )
            }
            current = current_annotation_query().subquery()
            active_current = (
                select(current.c.id, current.c.provenance, media_items.c.split)
                .join(media_items, media_items.c.id == current.c.item_id)
                .where(media_items.c.status == "active")
                .subquery()
            )
            by_provenance: dict[str, int] = dict(
                connection.execute(
                    select(active_current.c.provenance, func.count()).group_by(active_current.c.provenance)
                ).all()
            )
            balance: Counter[str] = Counter()
            per_split: dict[str, Counter[str]] = {}
            for class_name, item_split, count in connection.execute(
                select(
                    annotation_classes.c.class_name,
                    active_current.c.split,
                    func.sum(annotation_classes.c.count),
                )
                .join(active_current, active_current.c.id == annotation_classes.c.annotation_id)
                .group_by(annotation_classes.c.class_name, active_current.c.split)
            ):
                balance[class_name] += int(count)
                per_split.setdefault(item_split or "unassigned", Counter())[class_name] += int(count)
            file_states: dict[str, int] = dict(
                connection.execute(select(files.c.status, func.count()).group_by(files.c.status)).all()
            )
            inactive: dict[str, int] = dict(
                connection.execute(
                    select(media_items.c.status, func.count())
                    .where(media_items.c.status != "active")
                    .group_by(media_items.c.status)
                ).all()
            )
        total = sum(by_split.values())
        labelled = sum(by_provenance.values())
        return {
            "items": total,
            "items_by_split": dict(sorted(by_split.items())),
            "labelled": labelled,
            "unlabelled": total - labelled,
            "labelled_by_provenance": {
                kind.value: int(by_provenance.get(kind.value, 0)) for kind in ProvenanceKind
            },
            "class_balance": dict(sorted(balance.items())),
            "class_balance_by_split": {
                split: dict(sorted(c.items())) for split, c in sorted(per_split.items())
            },
            "files": {state: int(count) for state, count in sorted(file_states.items())},
            "inactive_items": {state: int(count) for state, count in sorted(inactive.items())},
        }


ITEM_COLUMNS = (
    media_items.c.id,
    media_items.c.sha256,
    media_items.c.uri,
    media_items.c.size_bytes,
    media_items.c.width,
    media_items.c.height,
    media_items.c.format,
    media_items.c.mode,
    media_items.c.exif_orientation,
    media_items.c.split,
    media_items.c.source,
    media_items.c.status,
)
ANNOTATION_COLUMNS = (
    annotation_versions.c.id,
    annotation_versions.c.item_id,
    annotation_versions.c.version,
    annotation_versions.c.payload,
    annotation_versions.c.provenance,
    annotation_versions.c.annotator,
    annotation_versions.c.model_version,
    annotation_versions.c.score,
    annotation_versions.c.calibration_run,
    annotation_versions.c.run_id,
    annotation_versions.c.supersedes_id,
    annotation_versions.c.created_at,
)
_RUN_COLUMNS = (
    runs.c.id,
    runs.c.kind,
    runs.c.status,
    runs.c.config,
    runs.c.inputs,
    runs.c.outputs,
    runs.c.error,
    runs.c.created_at,
    runs.c.finished_at,
    runs.c.parent_id,
)
_SNAPSHOT_COLUMNS = (
    snapshots.c.id,
    snapshots.c.name,
    snapshots.c.item_count,
    snapshots.c.annotation_count,
    snapshots.c.created_at,
)


def counted_annotations() -> Any:
    """Annotation versions that count: all but auto labels of a revoked calibration run."""
    revoked = select(runs.c.id).where(runs.c.status == REVOKED)
    return (
        (annotation_versions.c.provenance != ProvenanceKind.AUTO.value)
        | annotation_versions.c.calibration_run.is_(None)
        | annotation_versions.c.calibration_run.not_in(revoked)
    )


def current_annotation_query(item_ids: Sequence[int] | None = None) -> Any:
    """Each item's current annotation (rank 1 by provenance precedence, then newest version);
    ``item_ids`` narrows the ranking itself, so only those items' versions are read."""
    precedence = case(_PRECEDENCE, value=annotation_versions.c.provenance, else_=9)
    ranked = select(
        *ANNOTATION_COLUMNS,
        func.row_number()
        .over(
            partition_by=annotation_versions.c.item_id,
            order_by=(precedence, annotation_versions.c.version.desc()),
        )
        .label("rank"),
    )
    ranked = ranked.where(counted_annotations())
    if item_ids is not None:
        ranked = ranked.where(annotation_versions.c.item_id.in_(list(item_ids)))
    subquery = ranked.subquery()
    return select(*(subquery.c[column.name] for column in ANNOTATION_COLUMNS)).where(subquery.c.rank == 1)


def _append_annotation(
    connection: Connection,
    item_id: int,
    label: Label,
    provenance: Provenance,
    run_id: str | None,
    now: Any,
) -> AnnotationRecord:
    # Lock the item row (PostgreSQL; SQLite already holds the write lock) so concurrent writers
    # of one item queue up instead of both choosing the same next version.
    item = connection.execute(select(media_items.c.id).where(media_items.c.id == item_id).with_for_update())
    if item.first() is None:
        raise NotFoundError(f"cannot annotate item {item_id}: no such item")
    latest = connection.execute(
        select(annotation_versions.c.id, annotation_versions.c.version)
        .where(annotation_versions.c.item_id == item_id)
        .order_by(annotation_versions.c.version.desc())
        .limit(1)
    ).first()
    version = 1 if latest is None else latest.version + 1
    supersedes = None if latest is None else latest.id
    payload = label.to_dict()
    annotation_id = connection.execute(
        insert(annotation_versions)
        .values(
            item_id=item_id,
            version=version,
            payload=payload,
            provenance=provenance.kind.value,
            annotator=provenance.annotator,
            model_version=provenance.model_version,
            score=provenance.score,
            calibration_run=provenance.calibration_run,
            run_id=run_id,
            supersedes_id=supersedes,
            created_at=now,
        )
        .returning(annotation_versions.c.id)
    ).scalar_one()
    counts = label.class_counts()
    if counts:
        connection.execute(
            insert(annotation_classes),
            [{"annotation_id": annotation_id, "class_name": name, "count": n} for name, n in counts.items()],
        )
    return AnnotationRecord(annotation_id, item_id, version, label, provenance, run_id, supersedes, now)


def item_record(row: Any) -> ItemRecord:
    return ItemRecord(*tuple(row))


def annotation_record(row: Any) -> AnnotationRecord:
    (
        annotation_id,
        item_id,
        version,
        payload,
        kind,
        annotator,
        model_version,
        score,
        calibration,
        run_id,
        sup,
        at,
    ) = tuple(row)[:12]
    try:
        label = label_from_dict(payload)
        provenance = Provenance(
            kind=ProvenanceKind(kind),
            annotator=annotator,
            model_version=model_version,
            score=score,
            calibration_run=calibration,
        )
    except (ValidationError, ValueError) as exc:
        raise CatalogError(f"annotation {annotation_id} of item {item_id} is unreadable: {exc}") from exc
    return AnnotationRecord(annotation_id, item_id, version, label, provenance, run_id, sup, at)
