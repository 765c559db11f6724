"""Labelled images as models read them: catalog records and an image reader for their URIs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.catalog import Catalog
from visionloop.core.labels import Label
from visionloop.imaging.decode import decode_rgb, decode_rgb_reduced
from visionloop.imaging.probe import ImageRejected
from visionloop.storage.filesystem import Filesystem, is_remote

__all__ = ["ImageReader", "LabeledRecord", "snapshot_records"]


@dataclass(frozen=True, slots=True)
class LabeledRecord:
    uri: str
    label: Label | None
    item_id: int | None = None
    split: str | None = None


class ImageReader:
    """Reads and decodes images by URI (local paths or ``s3://``); picklable for worker processes."""

    def __init__(self, s3_options: dict[str, Any] | None = None) -> None:
        self.s3_options = dict(s3_options or {})
        self._filesystems: dict[str, Filesystem] = {}

    def __call__(self, uri: str) -> npt.NDArray[np.uint8]:
        data = self._filesystem(uri).read_bytes(uri)
        try:
            return decode_rgb(data)
        except ImageRejected as exc:
            raise ImageRejected(f"{uri}: {exc.reason}") from exc

    def reduced(
        self, uri: str, at_least: int | None, resize_to: tuple[int, int] | None = None
    ) -> tuple[npt.NDArray[np.uint8], tuple[int, int]]:
        """A JPEG decoded at the smallest DCT scale keeping both sides ``>= at_least`` (other
        formats, or ``at_least=None``, in full), then squashed to ``resize_to`` when given, with
        the full upright ``(height, width)``."""
        data = self._filesystem(uri).read_bytes(uri)
        try:
            return decode_rgb_reduced(data, at_least, resize_to=resize_to)
        except ImageRejected as exc:  # the decoder sees bytes: name the file they came from
            raise ImageRejected(f"{uri}: {exc.reason}") from exc

    def _filesystem(self, uri: str) -> Filesystem:
        protocol = uri.split("://", 1)[0] if is_remote(uri) else "file"
        filesystem = self._filesystems.get(protocol)
        if filesystem is None:
            options = self.s3_options if protocol == "s3" else {}
            filesystem = self._filesystems[protocol] = Filesystem(uri, options)
        return filesystem

    def __getstate__(self) -> dict[str, Any]:
        return {"s3_options": self.s3_options, "_filesystems": {}}


def snapshot_records(catalog: Catalog, snapshot_id: str) -> list[LabeledRecord]:
    return [
        LabeledRecord(
            uri=item.uri,
            label=None if annotation is None else annotation.label,
            item_id=item.id,
            split=item.split,
        )
        for item, annotation in catalog.snapshot_annotations(snapshot_id)
    ]
