"""Image bytes from users, uploads and datasets: probing, header-only sizing and decoding of
valid images with corrupted bytes, and of arbitrary bytes."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import strategies as st

import images
from fuzz.harness import fuzz_test, returns_or_refuses
from fuzz.mutations import mutate_bytes
from visionloop.imaging import decode_rgb, probe_image
from visionloop.imaging.decode import decode_rgb_reduced
from visionloop.imaging.probe import read_image_size

# Valid files of every ingest format (and odd modes), for corruption to start from.
_SAMPLES = [
    images.rgb_jpeg(24, 16),
    images.rgb_png(12, 9),
    images.rgba_png(10, 6),
    images.cmyk_jpeg(12, 8),
    images.gray16_png(9, 7),
    images.palette_png(8, 8),
    images.exif_rotated_jpeg(16, 10),
    images.webp(10, 8),
    images.tiff(8, 6),
]
MAX_PIXELS = 4_000_000


def _image_bytes(data: st.DataObject) -> bytes:
    sample = data.draw(st.sampled_from(_SAMPLES), label="sample")
    corrupted = st.builds(lambda d: mutate_bytes(d, sample, max_edits=6), st.data())
    return data.draw(corrupted | st.binary(max_size=200) | st.just(sample), label="bytes")


@fuzz_test(scale=2.0)
def test_probe_and_decode(data: st.DataObject) -> None:
    """Every reader refuses what it cannot read with ``ImageRejected``; what it accepts has the
    size the header said."""
    raw = _image_bytes(data)
    info = returns_or_refuses(probe_image, raw, max_pixels=MAX_PIXELS)
    pixels = returns_or_refuses(decode_rgb, raw, max_pixels=MAX_PIXELS)
    if info is not None and pixels is not None:
        assert pixels.shape == (info.height, info.width, 3)
    at_least = data.draw(st.sampled_from([None, 1, 4]), label="at least")
    resize = data.draw(st.sampled_from([None, (3, 5)]), label="resize")
    reduced = returns_or_refuses(decode_rgb_reduced, raw, at_least, MAX_PIXELS, resize_to=resize)
    if reduced is not None:
        assert reduced[0].ndim == 3 and reduced[0].shape[2] == 3
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image"
        path.write_bytes(raw)
        size = returns_or_refuses(read_image_size, path, max_pixels=MAX_PIXELS)
        assert size is None or (size[0] > 0 and size[1] > 0)
