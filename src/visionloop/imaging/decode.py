"""Decode image bytes into the RGB arrays models consume, upright as the catalog describes them."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from visionloop.imaging.probe import DEFAULT_FORMATS, DEFAULT_MAX_PIXELS, ImageRejected, registered_formats

__all__ = ["decode_rgb"]


def decode_rgb(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, formats: tuple[str, ...] = DEFAULT_FORMATS
) -> npt.NDArray[np.uint8]:
    """``(H, W, 3)`` uint8 RGB after EXIF transpose (the orientation labels use).

    Only the ingest formats are tried, and the pixel limit is checked from the header before
    any decoding, so a file swapped for a bomb after ingest is still refused.
    """
    try:
        with Image.open(io.BytesIO(data), formats=registered_formats(formats)) as image:
            if image.width * image.height > max_pixels:
                raise ImageRejected(f"{image.width}x{image.height} exceeds the {max_pixels} pixel limit")
            upright = ImageOps.exif_transpose(image)
            if upright.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
                # Scale high-bit-depth greyscale to 8 bits instead of clipping it to white.
                values = np.asarray(upright, dtype=np.float64)
                top = float(values.max()) or 1.0
                grey = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
                return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
            return np.ascontiguousarray(np.asarray(upright.convert("RGB"), dtype=np.uint8))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRejected(f"cannot decode image: {exc}") from exc
