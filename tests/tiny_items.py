"""Catalog items without image files, for tests of what the catalog records about them."""

from __future__ import annotations

from visionloop.catalog import Catalog, ProbedFile
from visionloop.core.media import ImageInfo


def add_items(catalog: Catalog, count: int, split: str = "train") -> list[int]:
    """Items 0 to ``count - 1`` (10x20 PNGs at /data/N.png that need not exist; ones already
    there are kept, not duplicated); returns every item id."""
    probed = [
        ProbedFile(
            uri=f"/data/{i}.png",
            size=100 + i,
            fingerprint=f"{i}",
            sha256=f"{i:064x}",
            info=ImageInfo(width=10, height=20, format="PNG", mode="RGB"),
        )
        for i in range(count)
    ]
    catalog.record_files(probed, split_for=lambda _sha: split, source="ingest", run_id=None)
    return [item.id for item in catalog.iter_items()]
