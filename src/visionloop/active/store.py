"""What pre-label runs read and keep: the items they cover, and their embeddings as numpy
``.npz`` chunks, never pickles.

``runs/<run>/embeddings/chunk-NNNNN.npz`` holds ``item_ids`` (int64) and ``embeddings``
(float16, one row per item). Loading passes ``allow_pickle=False``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from visionloop.catalog import Catalog
from visionloop.project import Project
from visionloop.storage import atomic_write_local

__all__ = [
    "PRELABEL_KIND",
    "ItemChoice",
    "embeddings_dir",
    "load_embeddings",
    "prelabel_items",
    "write_embeddings_chunk",
]

PRELABEL_KIND = "prelabel"
ItemChoice = Literal["unlabeled", "labeled", "all"]


def prelabel_items(catalog: Catalog, choice: ItemChoice) -> list[tuple[int, str]]:
    """``(item id, uri)`` of the active items ``choice`` names, in id order (``unlabeled``: no
    annotation of any kind yet)."""
    items = [(item.id, item.uri) for item in catalog.iter_items()]
    if choice == "all":
        return items
    labelled = catalog.annotated_item_ids()
    if choice == "labeled":
        return [item for item in items if item[0] in labelled]
    return [item for item in items if item[0] not in labelled]


def embeddings_dir(project: Project, run_id: str) -> Path:
    return project.run_folder(run_id) / "embeddings"


def write_embeddings_chunk(folder: Path, item_ids: list[int], rows: list[npt.NDArray[np.float32]]) -> None:
    index = len(list(folder.glob("chunk-*.npz"))) if folder.is_dir() else 0
    buffer = io.BytesIO()
    embeddings = np.concatenate(rows).astype(np.float16)
    np.savez(buffer, item_ids=np.asarray(item_ids, np.int64), embeddings=embeddings)
    atomic_write_local(str(folder / f"chunk-{index:05d}.npz"), buffer.getvalue())


def load_embeddings(folder: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """All item ids and embeddings of a pre-label run (a repeated item keeps its newest row)."""
    ids: list[npt.NDArray[np.int64]] = []
    rows: list[npt.NDArray[np.float32]] = []
    for path in sorted(folder.glob("chunk-*.npz")):
        with np.load(path, allow_pickle=False) as data:
            ids.append(data["item_ids"].astype(np.int64))
            rows.append(data["embeddings"].astype(np.float32))
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    all_ids, all_rows = np.concatenate(ids), np.concatenate(rows)
    # np.unique keeps the first occurrence; reverse so the newest row wins.
    _, first = np.unique(all_ids[::-1], return_index=True)
    keep = len(all_ids) - 1 - first
    return all_ids[keep], all_rows[keep]
