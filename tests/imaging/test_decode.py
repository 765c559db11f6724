"""Reduced JPEG decoding: cheaper pixels, never below the size asked for, with the full upright
size reported so labels land on the full image."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import images
from visionloop.imaging import ImageRejected
from visionloop.imaging.decode import decode_rgb, decode_rgb_reduced
from visionloop.tasks.preprocess import resize_image


def _jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def test_a_large_jpeg_decodes_at_a_reduced_scale_but_not_below_the_request() -> None:
    pixels, full = decode_rgb_reduced(_jpeg(800, 600), at_least=128)
    assert full == (600, 800)
    assert pixels.shape == (150, 200, 3)  # 1/4 scale keeps both sides >= 128; 1/8 would not
    assert decode_rgb_reduced(_jpeg(800, 600), at_least=None)[0].shape == (600, 800, 3)


def test_the_full_size_follows_the_exif_rotation() -> None:
    pixels, full = decode_rgb_reduced(_jpeg(800, 600, orientation=6), at_least=128)
    assert full == (800, 600)
    assert pixels.shape == (200, 150, 3)
    assert decode_rgb(_jpeg(800, 600, orientation=6)).shape == (800, 600, 3)


def test_other_formats_decode_in_full() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 20, 30)).save(buffer, format="PNG")
    pixels, full = decode_rgb_reduced(buffer.getvalue(), at_least=32)
    assert full == (200, 300) and pixels.shape == (200, 300, 3)


def test_a_squashed_decode_is_the_reduced_decode_resized_as_models_resize() -> None:
    data = _jpeg(800, 600, orientation=6)
    pixels, full = decode_rgb_reduced(data, at_least=64, resize_to=(48, 80))
    assert full == (800, 600) and pixels.shape == (48, 80, 3)
    reduced, _ = decode_rgb_reduced(data, at_least=64)
    np.testing.assert_array_equal(pixels, resize_image(reduced, (48, 80)))


def test_corrupt_files_pillow_reports_oddly_are_rejected() -> None:
    """Found by fuzzing: one bad byte made Pillow raise SyntaxError (a PNG chunk) or TypeError
    (a TIFF tag), which escaped the decoder."""
    png, tiff = bytearray(images.rgb_png(12, 9)), bytearray(images.tiff(8, 6))
    png[35], tiff[72] = 0, 2
    for data in (bytes(png), bytes(tiff)):
        with pytest.raises(ImageRejected, match="cannot decode image"):
            decode_rgb(data)
