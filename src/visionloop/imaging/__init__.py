"""Image decoding and probing (Pillow)."""

from visionloop.imaging.decode import decode_rgb
from visionloop.imaging.probe import (
    DEFAULT_FORMATS,
    DEFAULT_MAX_PIXELS,
    ImageRejected,
    probe_image,
    read_image_size,
)

__all__ = [
    "DEFAULT_FORMATS",
    "DEFAULT_MAX_PIXELS",
    "ImageRejected",
    "decode_rgb",
    "probe_image",
    "read_image_size",
]
