"""Image corruptions for robustness tests, in the spirit of ImageNet-C (Hendrycks & Dietterich).

Each corruption takes a ``uint8`` RGB image ``(H, W, 3)``, a severity 1 (mild) to 5 (harsh) and a
numpy ``Generator`` (only noise draws from it, so results are reproducible for a seed), and returns a
new ``uint8`` image of the same shape: geometry never changes, so boxes, masks and keypoints stay
valid. Parameters per severity 1..5 (see :data:`SEVERITY_PARAMETERS`):

* ``gaussian_noise``: additive noise with standard deviation 0.08, 0.12, 0.18, 0.26, 0.38 of the
  full intensity range;
* ``gaussian_blur``: Gaussian blur of radius (about the standard deviation) 1, 2, 3, 4, 6 pixels;
* ``jpeg_compression``: re-encoding as JPEG with quality 25, 18, 15, 10, 7;
* ``brightness``: the HSV value channel raised by 0.1, 0.2, 0.3, 0.4, 0.5 (then clipped to 1).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from visionloop.core.errors import ValidationError

UInt8Image = npt.NDArray[np.uint8]
Corruption = Callable[[UInt8Image, int, np.random.Generator], UInt8Image]

SEVERITIES = (1, 2, 3, 4, 5)
SEVERITY_PARAMETERS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "gaussian_blur": (1.0, 2.0, 3.0, 4.0, 6.0),
    "jpeg_compression": (25, 18, 15, 10, 7),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
}


def gaussian_noise(image: UInt8Image, severity: int, rng: np.random.Generator) -> UInt8Image:
    """Additive Gaussian noise (std as a fraction of 255, see the module docstring)."""
    std = _parameter("gaussian_noise", image, severity)
    noisy = image.astype(np.float64) / 255.0 + rng.normal(scale=std, size=image.shape)
    return _to_uint8(noisy * 255.0)


def gaussian_blur(image: UInt8Image, severity: int, rng: np.random.Generator) -> UInt8Image:
    """Gaussian blur with Pillow; ``rng`` is unused (the blur is deterministic)."""
    radius = _parameter("gaussian_blur", image, severity)
    blurred = Image.fromarray(np.ascontiguousarray(image)).filter(ImageFilter.GaussianBlur(radius=radius))
    return np.asarray(blurred, dtype=np.uint8).copy()


def jpeg_compression(image: UInt8Image, severity: int, rng: np.random.Generator) -> UInt8Image:
    """JPEG re-encoding at low quality with Pillow; ``rng`` is unused."""
    quality = int(_parameter("jpeg_compression", image, severity))
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8).copy()


def brightness(image: UInt8Image, severity: int, rng: np.random.Generator) -> UInt8Image:
    """Raise the HSV value (the largest channel) keeping hue and saturation: every channel scales by
    ``new_value / value``; black pixels (no hue) become grey at the new value. ``rng`` is unused."""
    delta = _parameter("brightness", image, severity)
    rgb = image.astype(np.float64) / 255.0
    value = rgb.max(axis=2, keepdims=True)
    new_value = np.clip(value + delta, 0.0, 1.0)
    scale = np.divide(new_value, value, out=np.zeros_like(value), where=value > 0)
    brighter = np.where(value > 0, rgb * scale, new_value)
    return _to_uint8(brighter * 255.0)


CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": gaussian_noise,
    "gaussian_blur": gaussian_blur,
    "jpeg_compression": jpeg_compression,
    "brightness": brightness,
}


def corrupt(image: UInt8Image, name: str, severity: int, seed: int | np.random.Generator = 0) -> UInt8Image:
    """Apply the corruption called ``name``; ``seed`` is an integer or a ready ``Generator``."""
    try:
        function = CORRUPTIONS[name]
    except KeyError:
        raise ValidationError(
            f"unknown corruption {name!r}; known corruptions: {', '.join(sorted(CORRUPTIONS))}"
        ) from None
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return function(image, severity, rng)


def _parameter(name: str, image: UInt8Image, severity: int) -> float:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValidationError(f"{name} needs a uint8 RGB image of shape (H, W, 3), got {dtype} {shape}")
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer) or severity not in SEVERITIES:
        raise ValidationError(f"{name}: severity must be an integer from 1 to 5, got {severity!r}")
    return float(SEVERITY_PARAMETERS[name][int(severity) - 1])


def _to_uint8(values: npt.NDArray[np.float64]) -> UInt8Image:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
