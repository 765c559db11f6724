"""Images in requests: uploaded files or base64 strings, decoded under the server's pixel limit.
A bad image is the client's mistake (422 naming the image), never a server error."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError
from visionloop.imaging.decode import decode_rgb

__all__ = ["RequestImage", "decode_base64", "decode_request_image"]


@dataclass(frozen=True)
class RequestImage:
    name: str
    pixels: npt.NDArray[np.uint8]

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])


def decode_base64(text: str, name: str) -> bytes:
    """Bytes of a base64 string (a ``data:image/...;base64,`` prefix is allowed)."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(f"{name}: not valid base64 ({exc})") from exc


def decode_request_image(data: bytes, name: str, max_pixels: int) -> RequestImage:
    if not data:
        raise ValidationError(f"{name}: empty image")
    try:
        return RequestImage(name, decode_rgb(data, max_pixels=max_pixels))
    except ValidationError as exc:
        raise ValidationError(f"{name}: {exc}") from exc
