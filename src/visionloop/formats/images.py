"""Image files inside dataset layouts: walking them, finding and copying them, their sizes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from visionloop.formats.model import LabeledImage
from visionloop.formats.registry import SaveOptions
from visionloop.formats.safeio import FormatFileError
from visionloop.imaging import ImageRejected, read_image_size
from visionloop.storage import atomic_write_local, safe_relative_path

#: File suffixes treated as images when walking a dataset (Ultralytics' and torchvision's lists,
#: limited to what the image probe accepts).
IMAGE_SUFFIXES = frozenset({".bmp", ".gif", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp"})


def walk_files(folder: Path) -> Iterator[Path]:
    """Every non-hidden file under ``folder`` in sorted order, without following folder links
    (a link loop or a link to ``/`` must not make a walk endless or leave the dataset)."""
    for directory, subdirs, files in os.walk(folder, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(directory) / name


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def source_image(image_source: Path, name: str) -> Path:
    """The file holding image ``name`` under ``image_source``; a missing file is a clear error."""
    source = image_source / safe_relative_path(name)
    if not source.is_file():
        raise FormatFileError(f"image {name!r} is not in the image source: {source} does not exist")
    return source


def copy_file(source: Path, target: Path) -> None:
    atomic_write_local(str(target), source.read_bytes())


def size_for_save(
    image: LabeledImage, name: str, options: SaveOptions, format_name: str
) -> tuple[int, int] | None:
    """The image's size from the label set, else from its file in ``options.image_source``."""
    if image.width is not None and image.height is not None:
        return image.width, image.height
    if options.image_source is None:
        return None
    try:
        return read_image_size(source_image(options.image_source, name))
    except ImageRejected as exc:
        raise FormatFileError(f"cannot write {format_name}: image {name!r}: {exc.reason}") from exc
