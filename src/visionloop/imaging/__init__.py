"""Image decoding and probing (Pillow)."""

from visionloop.imaging.probe import (
    DEFAULT_FORMATS,
    DEFAULT_MAX_PIXELS,
    ImageRejected,
    probe_image,
    read_image_size,
)

__all__ = ["DEFAULT_FORMATS", "DEFAULT_MAX_PIXELS", "ImageRejected", "probe_image", "read_image_size"]
