"""Where the edge runtime's images come from: every image file of a folder, or the frames of a
video (OpenCV, only needed for video).

Files are decoded by a few threads ahead of the model (Pillow decodes without holding the GIL),
JPEGs at a reduced DCT scale when the model shrinks them anyway, as pre-labeling does. A file
that cannot be read or decoded becomes a :class:`Frame` with an ``error``: reported, never fatal.
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from visionloop.core.errors import MissingDependencyError, ValidationError, VisionloopError
from visionloop.imaging import ImageRejected
from visionloop.imaging.decode import decode_rgb, decode_rgb_reduced

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "Frame", "Listing", "list_images", "read_frames"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
MAX_FILE_BYTES = 256 * 1024 * 1024
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Frame:
    """One image to predict. ``pixels``: RGB, possibly reduced or squashed for the model;
    ``size``: the full upright ``(height, width)`` labels refer to. ``data``: the file's bytes
    (folders) for capture; video frames are encoded only when captured."""

    source: str
    frame: int | None
    pixels: npt.NDArray[np.uint8] | None
    size: tuple[int, int]
    data: bytes | None = None
    error: str = ""

    def capture_image(self) -> tuple[bytes, str]:
        """The image to capture and its extension: a JPEG or PNG file as it was, anything else
        as PNG, video frames as JPEG."""
        if self.data is not None:
            if self.data.startswith(_JPEG_MAGIC):
                return self.data, "jpg"
            if self.data.startswith(_PNG_MAGIC):
                return self.data, "png"
            return _encode(decode_rgb(self.data), "PNG"), "png"
        if self.pixels is None:
            raise ValidationError(f"{self.source}: nothing to capture")
        return _encode(self.pixels, "JPEG"), "jpg"


@dataclass(frozen=True)
class Listing:
    """The image files of a folder, in a stable order, and how many other files it holds."""

    files: list[Path]
    skipped: int


def _encode(pixels: npt.NDArray[np.uint8], kind: str) -> bytes:
    buffer = io.BytesIO()
    options: dict[str, Any] = {"quality": 95} if kind == "JPEG" else {}
    Image.fromarray(pixels).save(buffer, format=kind, **options)
    return buffer.getvalue()


def list_images(folder: Path) -> Listing:
    """Image files under ``folder`` (by extension; hidden files and folders left out), sorted,
    as absolute paths (the form the catalog names local files by)."""
    files: list[Path] = []
    skipped = 0
    for directory, subdirectories, names in os.walk(folder.absolute()):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                files.append(Path(directory) / name)
            else:
                skipped += 1
    return Listing(files, skipped)


def _read_image(path: Path, at_least: int | None, squash_to: tuple[int, int] | None) -> Frame:
    source = str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return Frame(source, None, None, (0, 0), error=f"larger than {MAX_FILE_BYTES} bytes")
        data = path.read_bytes()
        pixels, size = decode_rgb_reduced(data, at_least, resize_to=squash_to)
    except ImageRejected as exc:
        return Frame(source, None, None, (0, 0), error=exc.reason)
    except (OSError, VisionloopError) as exc:
        return Frame(source, None, None, (0, 0), error=f"cannot read: {exc}")
    return Frame(source, None, pixels, size, data=data)


def _image_frames(
    files: list[Path], at_least: int | None, squash_to: tuple[int, int] | None, workers: int, ahead: int
) -> Iterator[Frame]:
    """Decode ``files`` in order with ``workers`` threads, at most ``ahead`` files in flight."""
    if workers <= 0:
        for path in files:
            yield _read_image(path, at_least, squash_to)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edge-decode") as pool:
        pending: deque[Future[Frame]] = deque()
        queued = iter(files)
        for path in queued:
            pending.append(pool.submit(_read_image, path, at_least, squash_to))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _import_cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise MissingDependencyError(
            "opencv-python-headless", "video", "Reading video", "pip install opencv-python-headless"
        ) from exc
    return cv2


def _video_frames(path: Path, every: int) -> Iterator[Frame]:
    """Every ``every``-th frame of the video at ``path`` (the others are only grabbed, not decoded
    to pixels), as RGB."""
    cv2 = _import_cv2()
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValidationError(f"{path}: OpenCV cannot open this video")
    source = str(path)
    try:
        index = 0
        while True:
            if index % every == 0:
                ok, bgr = capture.read()
                if not ok:
                    break
                rgb = np.ascontiguousarray(bgr[:, :, ::-1])
                yield Frame(source, index, rgb, (int(rgb.shape[0]), int(rgb.shape[1])))
            elif not capture.grab():
                break
            index += 1
    finally:
        capture.release()


def read_frames(
    source: Path,
    *,
    at_least: int | None,
    squash_to: tuple[int, int] | None,
    every: int = 1,
    workers: int = 2,
    ahead: int = 64,
    listing: Listing | None = None,
) -> Iterator[Frame]:
    """The frames of ``source``: a folder's image files (``listing``, when already made), one
    image file, or a video's frames (``every``-th). ``at_least``/``squash_to``: how far image
    files may be reduced while decoding (see :func:`~visionloop.imaging.decode.decode_rgb_reduced`)."""
    if every < 1:
        raise ValidationError(f"--every must be at least 1, got {every}")
    if source.is_dir():
        files = (listing or list_images(source)).files
        yield from _image_frames(files, at_least, squash_to, workers, ahead)
    elif source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES:
        yield from _video_frames(source.absolute(), every)
    elif source.is_file():
        yield from _image_frames([source.absolute()], at_least, squash_to, 0, 1)
    else:
        raise ValidationError(f"{source}: no such folder, image or video")
