"""Read the facts of an image from its bytes, rejecting anything unsafe or undecodable.

The probe decodes every image once (JPEG at reduced DCT scale, which still walks the whole
entropy-coded stream), because header-only checks let truncated files through. It never
writes to the source.
"""

from __future__ import annotations

import functools
import io
import os
import stat
import warnings
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from visionloop.core.errors import ValidationError
from visionloop.core.media import ImageInfo

#: Formats ingested by default. Restricting Pillow's plugins also keeps EPS (Ghostscript),
#: PSD and other rarely needed decoders away from untrusted bytes.
DEFAULT_FORMATS: tuple[str, ...] = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF")
DEFAULT_MAX_PIXELS = 100_000_000

#: Pixel modes visionloop can turn into RGB for models and thumbnails.
READABLE_MODES = frozenset(
    {
        "1",
        "L",
        "LA",
        "La",
        "P",
        "PA",
        "RGB",
        "RGBA",
        "RGBa",
        "RGBX",
        "CMYK",
        "YCbCr",
        "LAB",
        "HSV",
        "I",
        "F",
        "I;16",
        "I;16L",
        "I;16B",
        "I;16N",
    }
)
_SWAPPED_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION_TAG = 0x0112

# Our own pixel limit runs right after the header is parsed, before any pixels are decoded;
# Pillow's warning for the same condition would only be noise next to it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageRejected(ValidationError):
    """Why bytes are not an acceptable image; callers record ``reason`` (ingest) or report it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def probe_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    formats: Iterable[str] = DEFAULT_FORMATS,
) -> ImageInfo:
    """Identify, size-check and fully decode ``data``; return its oriented size and format.

    Raises :class:`ImageRejected` with a human-readable reason for empty input, non-images,
    formats outside ``formats``, images over ``max_pixels``, truncated or corrupt data and
    pixel modes that cannot be converted to RGB.
    """
    if not data:
        raise ImageRejected("empty file (0 bytes)")
    allowed = registered_formats(formats)
    _raise_pillow_limit_to(max_pixels)
    try:
        with Image.open(io.BytesIO(data), formats=allowed) as image:
            width, height = image.size
            if width <= 0 or height <= 0:
                raise ImageRejected(f"invalid image size {width}x{height}")
            if width * height > max_pixels:
                raise ImageRejected(
                    f"decompression bomb: {width}x{height} = {width * height} pixels exceeds the "
                    f"limit of {max_pixels}"
                )
            image_format = image.format or "unknown"
            mode = image.mode
            if mode not in READABLE_MODES:
                raise ImageRejected(f"unreadable pixel mode {mode!r} ({image_format})")
            frames = int(getattr(image, "n_frames", 1))
            if image_format in ("JPEG", "MPO"):
                image.draft(mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
            # After load: a PNG reads its EXIF by decoding, and a failed decode there (swallowed
            # as "no orientation") would leave a second load() nothing to do, passing corrupt data.
            orientation = _orientation(image)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"decompression bomb: exceeds the limit of {max_pixels} pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected(_unidentified_reason(data, allowed)) from exc
    except (OSError, SyntaxError, ValueError, IndexError, TypeError, EOFError, MemoryError) as exc:
        # Pillow reports truncation and corrupt streams through these; none of them may escape.
        raise ImageRejected(f"truncated or corrupt image: {exc}") from exc
    if orientation in _SWAPPED_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(
        width=width,
        height=height,
        format=image_format,
        mode=mode,
        exif_orientation=orientation,
        frames=frames,
    )


def read_image_size(
    path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, formats: Iterable[str] = DEFAULT_FORMATS
) -> tuple[int, int]:
    """``(width, height)`` after EXIF orientation from the header alone (no pixel decode).

    For label formats that store normalised coordinates and need each image's size. Only
    regular files are opened (a FIFO or device would block), only ``formats`` are tried, and
    sizes over ``max_pixels`` are refused. Raises :class:`ImageRejected` with the reason.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ImageRejected("not a regular file")
        with Image.open(path, formats=registered_formats(formats)) as image:
            width, height = image.size
            orientation = _orientation(image)
    except ImageRejected:
        raise
    except FileNotFoundError as exc:
        raise ImageRejected("image file not found") from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected("not a readable image (not a recognised image format)") from exc
    except Exception as exc:
        raise ImageRejected(f"not a readable image: {type(exc).__name__}: {exc}") from exc
    if width <= 0 or height <= 0:
        raise ImageRejected(f"invalid image size {width}x{height}")
    if width * height > max_pixels:
        raise ImageRejected(f"image of {width}x{height} pixels exceeds the limit of {max_pixels}")
    return (height, width) if orientation in _SWAPPED_ORIENTATIONS else (width, height)


def registered_formats(formats: Iterable[str]) -> list[str]:
    """The requested formats Pillow can open (plugins such as MPO register lazily)."""
    return list(_registered_cached(tuple(formats)))


@functools.cache
def _registered_cached(formats: tuple[str, ...]) -> tuple[str, ...]:
    Image.init()
    return tuple(fmt.upper() for fmt in formats if fmt.upper() in Image.OPEN)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not reject a readable image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _unidentified_reason(data: bytes, allowed: list[str]) -> str:
    """Tell "not an image", "a format we do not accept" and "an image we cannot decode" apart."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            found = image.format
    except Exception:  # noqa: BLE001 - any failure here just means Pillow cannot read it
        found = None
    if found is not None:
        return f"unsupported image format {found}; accepted: {', '.join(allowed)}"
    signature = next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)
    if signature is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        signature = "WEBP"
    if signature is not None:
        return f"unreadable {signature} image: unsupported pixel mode/layout or corrupt header"
    return "not an image (content is not a recognised image format)"


def _raise_pillow_limit_to(max_pixels: int) -> None:
    """Pillow refuses images above 2x its own global limit; let a larger configured limit rule."""
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and max_pixels > current:
        Image.MAX_IMAGE_PIXELS = max_pixels
