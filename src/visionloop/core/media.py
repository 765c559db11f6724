"""What the catalog knows about one image, independent of where its bytes live."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum


class Split(StrEnum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class ItemSource(StrEnum):
    """How an item entered the catalog."""

    INGEST = "ingest"
    CAPTURE = "capture"


#: Captured images travel with a JSON sidecar holding the model's prediction (see
#: ``visionloop.edge.capture``); ingesting captures skips the sidecars and unfinished writes.
CAPTURE_SIDECAR_SUFFIX = ".prediction.json"
CAPTURE_SKIPPED_GLOBS: tuple[str, ...] = (f"*{CAPTURE_SIDECAR_SUFFIX}", ".tmp-*")


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """Facts read from an image's bytes.

    ``width`` and ``height`` are the size *after* EXIF transpose, i.e. as a person sees the
    image; every coordinate in visionloop refers to that orientation.
    """

    width: int
    height: int
    format: str
    mode: str
    exif_orientation: int = 1
    frames: int = 1


def split_for_hash(sha256: str, ratios: dict[Split, float]) -> Split:
    """Deterministic split from a content hash, so re-ingesting never reshuffles items."""
    total = sum(ratios.values())
    if total <= 0:
        raise ValueError("split ratios must sum to a positive number")
    point = int(hashlib.sha256(b"split:" + sha256.encode()).hexdigest()[:12], 16) / float(16**12)
    cumulative = 0.0
    for split in (Split.TRAIN, Split.VAL, Split.TEST):
        cumulative += ratios.get(split, 0.0) / total
        if point < cumulative:
            return split
    # Float rounding can leave ``point`` a hair above the last boundary: use the last used split.
    return next(s for s in (Split.TEST, Split.VAL, Split.TRAIN) if ratios.get(s, 0.0) > 0)
