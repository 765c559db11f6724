"""What a command leaves behind, in a form two projects can be compared by: catalog rows keyed by
content (image sha256, annotation version) instead of database ids, run ids replaced by their kind
and rank, project paths by ``<root>``, timings left out; files by content hash."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from visionloop.catalog.tables import (
    annotation_classes,
    annotation_versions,
    files,
    labeling_annotations,
    labeling_tasks,
    leases,
    media_items,
    model_versions,
    pipeline_steps,
    predictions,
    run_metrics,
    runs,
    snapshot_entries,
    snapshots,
)
from visionloop.project import Project

# How visionloop names its temporary files: atomic_write_local's ".tmp-*", the ONNX export's
# ".<name>.<token>.tmp"; "*.part" for any download-style partial file.
TEMPORARY_GLOBS = (".tmp-*", "*.tmp", "*.part", "*.partial")
# Files whose bytes carry wall-clock times or speeds (a checkpoint holds the seconds trained so
# far) or names that differ per project (visionloop.yaml); only their presence is compared.
TIMED_FILES = (
    "*.pt",
    "*.yaml",
    "*.log",
    "*.json",
    "*.db",
    "*.db-wal",
    "*.db-shm",
    "*.html",
    "*.png",
    "*.svg",
)
_TIMED_WORDS = re.compile(r"second|seconds|_s$|time|duration|per_s|elapsed|_at$", re.IGNORECASE)


def run_ids(project: Project, kind: str) -> list[str]:
    """The ids of the project's runs of ``kind``, newest first (what a resume continues)."""
    with project.open_catalog() as catalog:
        return [run.id for run in catalog.list_runs(kind=kind)]


def leftovers(*folders: Path) -> list[str]:
    """Temporary files under ``folders`` (a kill between write and rename leaves them)."""
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and any(fnmatch.fnmatch(path.name, glob) for glob in TEMPORARY_GLOBS):
                found.append(str(path))
    return sorted(found)


def duplicates(values: list[Any]) -> list[Any]:
    """The values that occur more than once."""
    return [value for value, count in Counter(map(_key, values)).items() if count > 1]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _rows(connection: Any, table: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in connection.execute(select(table)).mappings().all()]


def _untimed(value: Any) -> Any:
    """``value`` without timing entries, floats rounded (to compare deterministic numbers)."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if not _TIMED_WORDS.search(str(k))}
    if isinstance(value, list | tuple):
        return [_untimed(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


def catalog_state(project: Project, rerun: tuple[str, ...] = ()) -> dict[str, Any]:
    """The catalog's rows, normalised; see the module docstring.

    ``rerun`` names kinds of run that a resume starts anew (an ingest is resumed by ingesting
    again): their ids all read ``<kind>`` and the runs themselves are left out.
    """
    with project.open_catalog() as catalog, catalog.engine.connect() as connection:
        items = _rows(connection, media_items)
        sha = {row["id"]: row["sha256"] for row in items}
        notes = _rows(connection, annotation_versions)
        version = {row["id"]: (sha[row["item_id"]], row["version"]) for row in notes}
        run_rows = sorted(_rows(connection, runs), key=lambda row: (row["kind"], row["created_at"]))
        names = _run_names(run_rows, rerun)
        run_rows = [row for row in run_rows if row["kind"] not in rerun]
        for row in _rows(connection, snapshots):
            names[row["id"]] = f"<snapshot-{row['item_count']}-{row['annotation_count']}>"
        state = {
            "items": sorted(
                (_without(row, "id", "created_at") for row in items), key=lambda row: row["sha256"]
            ),
            "files": sorted(
                (
                    {
                        **_without(row, "id", "updated_at", "fingerprint", "item_id"),
                        "item": sha.get(row["item_id"]),
                    }
                    for row in _rows(connection, files)
                ),
                key=_key,
            ),
            "annotations": sorted(
                (
                    {
                        **_without(row, "id", "item_id", "supersedes_id", "created_at"),
                        "item": sha[row["item_id"]],
                        "supersedes": version.get(row["supersedes_id"]),
                    }
                    for row in notes
                ),
                key=_key,
            ),
            "annotation_classes": sorted(
                ((version[row["annotation_id"]], row["class_name"], row["count"]))
                for row in _rows(connection, annotation_classes)
            ),
            "predictions": sorted(
                (
                    {**_without(row, "id", "item_id", "created_at"), "item": sha[row["item_id"]]}
                    for row in _rows(connection, predictions)
                ),
                key=_key,
            ),
            "runs": sorted(
                (
                    {
                        "id": row["id"],
                        "kind": row["kind"],
                        "status": row["status"],
                        "error": row["error"],
                        "parent": row["parent_id"],
                        "config": row["config"],
                    }
                    for row in run_rows
                ),
                key=lambda row: names[row["id"]],
            ),
            "run_metrics": sorted(
                (
                    (row["run_id"], row["step"], row["epoch"], row["name"], _untimed(row["value"]))
                    for row in _rows(connection, run_metrics)
                    if not _TIMED_WORDS.search(row["name"]) and "per_second" not in row["name"]
                ),
                key=_key,
            ),
            "snapshots": sorted(
                (
                    (row["snapshot_id"], sha[row["item_id"]], version.get(row["annotation_id"]), row["split"])
                    for row in _rows(connection, snapshot_entries)
                ),
                key=_key,
            ),
            "model_versions": [
                _without(row, "created_at", "description") for row in _rows(connection, model_versions)
            ],
            "labeling_tasks": sorted(
                (
                    (row["tool"], row["project"], sha[row["item_id"]], row["prediction_version"])
                    for row in _rows(connection, labeling_tasks)
                ),
                key=_key,
            ),
            "labeling_annotations": sorted(
                (
                    (
                        row["tool"],
                        sha[row["item_id"]],
                        version.get(row["annotation_id"]),
                        row["state"],
                        row["reason"],
                    )
                    for row in _rows(connection, labeling_annotations)
                ),
                key=_key,
            ),
            "pipeline_steps": sorted(
                (row["run_id"], row["position"], row["name"], row["status"])
                for row in _rows(connection, pipeline_steps)
            ),
            "leases": sorted(row["name"] for row in _rows(connection, leases)),
        }
    return _renamed(_untimed(state), names, project.root.parent)


def _run_names(rows: list[dict[str, Any]], rerun: tuple[str, ...]) -> dict[str, str]:
    """Run id -> ``<kind-rank>``, ranked by creation within a kind (ids are random, ranks are not);
    ``<kind>`` for the kinds in ``rerun``."""
    rank: Counter[str] = Counter()
    names: dict[str, str] = {}
    for row in sorted(rows, key=lambda row: (row["kind"], row["created_at"])):
        rank[row["kind"]] += 1
        names[row["id"]] = (
            f"<{row['kind']}>" if row["kind"] in rerun else f"<{row['kind']}-{rank[row['kind']]}>"
        )
    return names


def _without(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in keys}


def _renamed(state: Any, names: dict[str, str], root: Path) -> Any:
    """Replace run and snapshot ids and the projects' folder in every string of ``state``."""
    text = json.dumps(state, sort_keys=True, default=str).replace(str(root), "<root>")
    for old, new in names.items():
        text = text.replace(old, new)
    return json.loads(text)


def storage_state(project: Project, rerun: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file of the project folder: relative path (run ids renamed) -> sha256, or "present"
    for files that carry timings."""
    with project.open_catalog() as catalog, catalog.engine.connect() as connection:
        renamed = _run_names(_rows(connection, runs), rerun)
    found: dict[str, str] = {}
    for path in sorted(project.root.rglob("*")):
        if not path.is_file():
            continue
        relative = str(path.relative_to(project.root))
        for old, new in renamed.items():
            relative = relative.replace(old, new)
        if any(fnmatch.fnmatch(path.name, glob) for glob in TIMED_FILES):
            found[relative] = "present"
        else:
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found
