"""Image decoding and probing (Pillow)."""

from visionloop.imaging.probe import DEFAULT_FORMATS, DEFAULT_MAX_PIXELS, ImageRejected, probe_image

__all__ = ["DEFAULT_FORMATS", "DEFAULT_MAX_PIXELS", "ImageRejected", "probe_image"]
