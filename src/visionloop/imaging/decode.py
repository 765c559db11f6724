"""Decode image bytes into the RGB arrays models consume, upright as the catalog describes them."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from visionloop.imaging.probe import DEFAULT_FORMATS, DEFAULT_MAX_PIXELS, ImageRejected, registered_formats

__all__ = ["decode_rgb", "decode_rgb_reduced"]

_SWAPS_SIDES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 degrees


def decode_rgb(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, formats: tuple[str, ...] = DEFAULT_FORMATS
) -> npt.NDArray[np.uint8]:
    """``(H, W, 3)`` uint8 RGB after EXIF transpose (the orientation labels use).

    Only the ingest formats are tried, and the pixel limit is checked from the header before
    any decoding, so a file swapped for a bomb after ingest is still refused.
    """
    return decode_rgb_reduced(data, None, max_pixels, formats)[0]


def decode_rgb_reduced(
    data: bytes,
    at_least: int | None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    *,
    resize_to: tuple[int, int] | None = None,
) -> tuple[npt.NDArray[np.uint8], tuple[int, int]]:
    """Like :func:`decode_rgb`, but a JPEG may decode at 1/2, 1/4 or 1/8 scale (DCT scaling via
    ``Image.draft``, far cheaper than a full decode) as long as both sides stay ``>= at_least``.
    ``resize_to`` ``(height, width)``: squash the upright pixels to exactly that size (bilinear)
    while they are still the decoder's image, for models that squash their input anyway: it
    saves a copy and ships less to the process that runs the model.
    Returns the pixels and the full upright ``(height, width)`` the labels must refer to."""
    try:
        with Image.open(io.BytesIO(data), formats=registered_formats(formats)) as image:
            if image.width * image.height > max_pixels:
                raise ImageRejected(f"{image.width}x{image.height} exceeds the {max_pixels} pixel limit")
            full = (image.height, image.width)
            if image.getexif().get(0x0112) in _SWAPS_SIDES:
                full = (image.width, image.height)
            if at_least is not None and image.format == "JPEG":
                image.draft("RGB", (at_least, at_least))
            return _upright_rgb(image, resize_to), full
    except UnidentifiedImageError as exc:  # Pillow's message only shows a BytesIO's repr
        raise ImageRejected(
            f"cannot decode image: not an image in an accepted format ({', '.join(formats)})"
        ) from exc
    except (
        Image.DecompressionBombError,
        # What Pillow raises for truncated or corrupt streams (the same list as ``probe_image``).
        OSError,
        SyntaxError,
        ValueError,
        IndexError,
        TypeError,
        EOFError,
        MemoryError,
    ) as exc:
        raise ImageRejected(f"cannot decode image: {exc}") from exc


def _upright_rgb(image: Image.Image, resize_to: tuple[int, int] | None = None) -> npt.NDArray[np.uint8]:
    upright = ImageOps.exif_transpose(image)
    if upright.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # Scale high-bit-depth greyscale to 8 bits instead of clipping it to white.
        values = np.asarray(upright, dtype=np.float64)
        top = float(values.max()) or 1.0
        grey = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
        rgb = Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2))
    else:
        rgb = upright.convert("RGB")
    if resize_to is not None and rgb.size != (resize_to[1], resize_to[0]):
        rgb = rgb.resize((resize_to[1], resize_to[0]), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
