"""Tiny synthetic image files, good and bad, for ingest and probe tests.

Each builder returns bytes so tests can place them on local disk or in an S3 bucket alike.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _pattern(width: int, height: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth gradient plus noise: unique per seed and JPEG-friendly."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = (x * 255 // max(1, width - 1) + y * 255 // max(1, height - 1)) // 2
    noise = rng.integers(0, 40, size=(height, width, channels))
    return ((base[..., None] + noise) % 256).astype(np.uint8)


def rgb_jpeg(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    return _encode(Image.fromarray(_pattern(width, height, seed=seed)), "JPEG", quality=90)


def rgb_png(width: int = 50, height: int = 30, seed: int = 1) -> bytes:
    return _encode(Image.fromarray(_pattern(width, height, seed=seed)), "PNG")


def rgba_png(width: int = 20, height: int = 10, seed: int = 2) -> bytes:
    return _encode(Image.fromarray(_pattern(width, height, channels=4, seed=seed)), "PNG")


def cmyk_jpeg(width: int = 40, height: int = 30, seed: int = 3) -> bytes:
    return _encode(Image.fromarray(_pattern(width, height, seed=seed)).convert("CMYK"), "JPEG")


def gray16_png(width: int = 33, height: int = 17, seed: int = 4) -> bytes:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 65535, size=(height, width), dtype=np.uint16)
    return _encode(Image.fromarray(array), "PNG")


def palette_png(width: int = 24, height: int = 24, seed: int = 5) -> bytes:
    return _encode(Image.fromarray(_pattern(width, height, seed=seed)).convert("P"), "PNG")


def exif_rotated_jpeg(width: int = 60, height: int = 40, orientation: int = 6, seed: int = 6) -> bytes:
    """Stored ``width`` x ``height``; a viewer shows it rotated, so 5-8 swap the visible size."""
    image = Image.fromarray(_pattern(width, height, seed=seed))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(image, "JPEG", exif=exif.tobytes())


def webp(width: int = 30, height: int = 20, seed: int = 7) -> bytes:
    return _encode(Image.fromarray(_pattern(width, height, seed=seed)), "WEBP")


def tiff(width: int = 16, height: int = 12, seed: int = 8) -> bytes:
    return _encode(Image.fromarray(_pattern(width, height, seed=seed)), "TIFF")


def truncated_jpeg() -> bytes:
    data = rgb_jpeg(128, 96, seed=20)
    return data[: len(data) // 2]


def truncated_png() -> bytes:
    data = rgb_png(128, 96, seed=21)
    return data[: len(data) // 2]


def corrupt_jpeg() -> bytes:
    """A valid header followed by garbage where the compressed data should be."""
    data = bytearray(rgb_jpeg(64, 48, seed=22))
    rng = np.random.default_rng(22)
    start = len(data) // 3
    data[start:-2] = rng.integers(0, 256, size=len(data) - start - 2, dtype=np.uint8).tobytes()
    return bytes(data)


def png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + (width + 7) // 8) * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def unreadable_mode_tiff() -> bytes:
    """A little-endian TIFF with two 16-bit samples per pixel: a layout Pillow cannot decode."""
    width, height, samples = 4, 4, 2
    pixels = b"\x01\x00" * width * height * samples
    entries = [
        (256, 3, 1, width),  # ImageWidth
        (257, 3, 1, height),  # ImageLength
        (258, 3, 2, 16 | (16 << 16)),  # BitsPerSample 16,16 (fits inline)
        (259, 3, 1, 1),  # Compression none
        (262, 3, 1, 1),  # Photometric min-is-black
        (273, 4, 1, 0),  # StripOffsets (patched below)
        (277, 3, 1, samples),  # SamplesPerPixel
        (278, 3, 1, height),  # RowsPerStrip
        (279, 4, 1, len(pixels)),  # StripByteCounts
    ]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(entries) + 4
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, data_offset if tag == 273 else value)
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_offset) + ifd + pixels


@dataclass(frozen=True)
class Sample:
    """A file to place in a test tree and what ingest must make of it."""

    name: str
    data: bytes
    size: tuple[int, int] | None = None  # oriented (width, height) when the file is good
    reason: str | None = None  # substring of the rejection reason when the file is bad


def good_samples() -> list[Sample]:
    return [
        Sample("plain.jpg", rgb_jpeg(64, 48, seed=0), (64, 48)),
        Sample("nested/deeper/photo.png", rgb_png(50, 30, seed=1), (50, 30)),
        Sample("alpha.png", rgba_png(20, 10), (20, 10)),
        Sample("cmyk.jpg", cmyk_jpeg(40, 30), (40, 30)),
        Sample("sixteen-bit.png", gray16_png(33, 17), (33, 17)),
        Sample("palette.png", palette_png(24, 24), (24, 24)),
        Sample("rotated-exif.jpg", exif_rotated_jpeg(60, 40, orientation=6), (40, 60)),
        Sample("mirrored-exif.jpg", exif_rotated_jpeg(70, 20, orientation=2, seed=9), (70, 20)),
        Sample("UPPER CASE.JPG", rgb_jpeg(32, 32, seed=10), (32, 32)),
        Sample("ünïcödé/日本語の写真.jpeg", rgb_jpeg(30, 20, seed=11), (30, 20)),
        Sample("really-a-png.jpg", rgb_png(12, 8, seed=12), (12, 8)),
        Sample("no-extension", rgb_jpeg(16, 16, seed=13), (16, 16)),
        Sample("animal.webp", webp(30, 20), (30, 20)),
        Sample("scan.tiff", tiff(16, 12), (16, 12)),
    ]


def bad_samples() -> list[Sample]:
    return [
        Sample("truncated.jpg", truncated_jpeg(), reason="truncated"),
        Sample("truncated.png", truncated_png(), reason="truncated"),
        Sample("corrupt.jpg", corrupt_jpeg(), reason="corrupt"),
        Sample("empty.png", b"", reason="empty file"),
        Sample("notes.jpg", b"these are my notes, not a photo\n", reason="not an image"),
        Sample("page.png", b"<html><body>404</body></html>", reason="not an image"),
        Sample("bomb.png", png_bomb(), reason="decompression bomb"),
        Sample("two-channel.tif", unreadable_mode_tiff(), reason="unreadable TIFF image"),
    ]
