"""The image half of the bad-input corpus, generated in code (no binary blobs in the repository).

:func:`image_corpus` returns every case with what must happen to it: ``bad`` ones (truncated,
corrupt, not images, decompression bombs, zero-size claims) must be refused with a reason;
``odd`` ones (unusual pixel modes, broken or invalid EXIF, animations, 1x1, very wide or thin,
huge but legal) are valid images that must be accepted and decode to RGB. Deterministic: the
same bytes on every run, so a failure names a file that can be regenerated.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: The pixel limit the corpus is built around (and the tests configure): bombs claim far more,
#: the "just under" cases claim slightly fewer, so decoding one costs at most this many pixels.
LIMIT = 16_000_000
_SEED = 20261206


@dataclass(frozen=True)
class ImageCase:
    """One file of the corpus: its name, bytes, ``bad`` (must be refused) and why it is here."""

    name: str
    data: bytes
    bad: bool
    why: str


def _noise(width: int, height: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (height, width, channels) if channels > 1 else (height, width)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(fmt: str, seed: int = 0) -> bytes:
    """A 64x48 noise photo: incompressible, so any cut lands in its pixel data."""
    image = Image.fromarray(_noise(64, 48, seed=seed))
    options: dict[str, Any] = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "WEBP":
        options["lossless"] = True
    return encode(image, fmt, **options)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_raw(width: int, height: int, depth: int = 8, colour: int = 2, idat: bytes | None = None) -> bytes:
    """A PNG built by hand (PIL refuses to write impossible headers); valid CRCs throughout."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    data = idat if idat is not None else zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _png16_rgb(width: int, height: int) -> bytes:
    rows = b"".join(b"\x00" + bytes(range(256))[: width * 6].ljust(width * 6, b"\x7f") for _ in range(height))
    return png_raw(width, height, 16, 2, zlib.compress(rows))


def _gif_claim(width: int, height: int) -> bytes:
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00" * 6
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return screen + descriptor + b"\x02\x02\x44\x01\x00\x3b"


def _tiff_claim(width: int, height: int, bits: int = 8, compression: int = 1, strip: int = 0) -> bytes:
    """A little-endian baseline TIFF whose IFD says what we want; one strip at ``strip`` (or
    right after the IFD)."""
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, bits),
        (259, 3, 1, compression),
        (262, 3, 1, 1),
        (273, 4, 1, strip or 8 + 2 + 9 * 12 + 4),
        (277, 3, 1, 1),
        (278, 4, 1, height),
        (279, 4, 1, 16),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<HI", value, 0)[:4] if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00" + b"\x80" * 16


def _jpeg_claim(width: int, height: int) -> bytes:
    """A real JPEG whose SOF0 size fields are rewritten."""
    data = bytearray(photo("JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _webp_claim(width: int, height: int) -> bytes:
    """An extended WebP (VP8X) whose canvas claims ``width`` x ``height``."""
    body = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
    body += (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _bmp_claim(width: int, height: int, bits: int = 24, header: int = 40, offset: int = 54) -> bytes:
    info = struct.pack("<IiiHHIIiiII", header, width, height, 1, bits, 0, 0, 2835, 2835, 0, 0)
    size = 14 + len(info) + 64
    return b"BM" + struct.pack("<IHHI", size, 0, 0, offset) + info + b"\x00" * 64


def _patched(data: bytes, offset: int, replacement: bytes) -> bytes:
    return data[:offset] + replacement + data[offset + len(replacement) :]


def _png_with_ihdr(field_bytes: bytes, at: int) -> bytes:
    """A PNG whose IHDR body has ``field_bytes`` at ``at`` and a recomputed (valid) CRC."""
    header = bytearray(struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
    header[at : at + len(field_bytes)] = field_bytes
    rows = b"".join(b"\x00" + b"\x80" * 24 for _ in range(8))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", bytes(header)) + _chunk(b"IDAT", zlib.compress(rows))


def _exif_jpeg(exif: bytes) -> bytes:
    """A JPEG with ``exif`` as its APP1 body (after the ``Exif\\0\\0`` tag)."""
    return encode(Image.fromarray(_noise(40, 30, seed=7)), "JPEG", exif=b"Exif\x00\x00" + exif)


def _orientation_exif(value: int, kind: int = 3) -> bytes:
    packed = struct.pack("<HH", value & 0xFFFF, 0) if kind == 3 else struct.pack("<I", value & 0xFFFFFFFF)
    return b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHI", 0x0112, kind, 1) + packed + b"\0" * 4


def _truncated() -> list[ImageCase]:
    cases = []
    for fmt, ext in (
        ("JPEG", "jpg"),
        ("PNG", "png"),
        ("WEBP", "webp"),
        ("TIFF", "tif"),
        ("GIF", "gif"),
        ("BMP", "bmp"),
    ):
        data = photo(fmt, seed=len(cases))
        cuts = [1, 2, 4, 8, 16, 32] + [int(len(data) * f) for f in (0.1, 0.3, 0.5, 0.7, 0.9)]
        cases += [
            ImageCase(f"truncated_{ext}_{cut:06d}.{ext}", data[:cut], True, f"{fmt} cut at byte {cut}")
            for cut in cuts
        ]
    return cases


def _corrupt_headers() -> list[ImageCase]:
    png, jpeg, gif, tiff, webp, bmp = (photo(f) for f in ("PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP"))
    sof = jpeg.index(b"\xff\xc0")
    dht = jpeg.index(b"\xff\xc4")
    sos = jpeg.index(b"\xff\xda")
    lzw = gif.index(b"\x2c") + 10  # the LZW minimum code size byte after the image descriptor
    cases = [
        ("png_bad_signature.png", _patched(png, 1, b"XNG"), "PNG signature"),
        ("png_ihdr_bad_crc.png", _patched(png, 29, b"\xde\xad\xbe\xef"), "IHDR CRC"),
        ("png_depth_7.png", _png_with_ihdr(b"\x07", 8), "bit depth 7"),
        ("png_colour_type_5.png", _png_with_ihdr(b"\x05", 9), "colour type 5"),
        ("png_compression_9.png", _png_with_ihdr(b"\x09", 10), "compression method 9"),
        ("png_interlace_9.png", _png_with_ihdr(b"\x09", 12), "interlace method 9"),
        ("png_idat_garbage.png", png_raw(8, 8, idat=b"\x78\x9c" + bytes(range(200))), "IDAT not zlib"),
        ("png_idat_short.png", png_raw(64, 64, idat=zlib.compress(b"\x00" * 10)), "IDAT too short"),
        ("png_no_ihdr.png", b"\x89PNG\r\n\x1a\n" + _chunk(b"IDAT", zlib.compress(b"\0" * 9)), "no IHDR"),
        ("png_huge_chunk.png", png[:33] + b"\x7f\xff\xff\xf0IDAT" + png[41:], "chunk length 2 GiB"),
        ("jpeg_garbage_after_soi.jpg", b"\xff\xd8\xff" + bytes(range(256)) * 4, "SOI then garbage"),
        ("jpeg_sof_no_components.jpg", _patched(jpeg, sof + 9, b"\x00"), "SOF0 with 0 components"),
        ("jpeg_sof_precision_7.jpg", _patched(jpeg, sof + 4, b"\x07"), "sample precision 7"),
        ("jpeg_no_huffman.jpg", _patched(jpeg, dht, b"\xff\xfe"), "DHT turned into a comment"),
        ("jpeg_sos_bad_component.jpg", _patched(jpeg, sos + 5, b"\x09"), "SOS names a missing component"),
        ("jpeg_scan_garbage.jpg", jpeg[: sos + 14] + b"\xff\x00" * 300 + b"\xff\xd9", "scan data garbage"),
        ("gif_bad_version.gif", _patched(gif, 3, b"99z"), "GIF version 99z"),
        ("gif_lzw_size_0.gif", _patched(gif, lzw, b"\x00"), "LZW code size 0"),
        ("gif_lzw_size_13.gif", _patched(gif, lzw, b"\x0d"), "LZW code size 13"),
        ("gif_no_image.gif", gif[:13] + b"\x3b", "screen with no image"),
        ("tiff_bad_byte_order.tif", _patched(tiff, 0, b"IX"), "byte order IX"),
        ("tiff_ifd_past_end.tif", _patched(tiff, 4, b"\xff\xff\xff\x7f"), "IFD offset past the end"),
        ("tiff_strip_past_end.tif", _tiff_claim(4, 4, strip=0x7FFFFFF0), "strip offset past the end"),
        ("tiff_bits_3.tif", _tiff_claim(4, 4, bits=3), "3 bits per sample"),
        ("tiff_compression_99.tif", _tiff_claim(4, 4, compression=99), "unknown compression 99"),
        ("webp_bad_fourcc.webp", _patched(webp, 12, b"VPX "), "unknown WebP chunk"),
        ("webp_riff_size_lies.webp", _patched(webp, 4, b"\xff\xff\xff\x7f"), "RIFF size 2 GiB"),
        ("webp_vp8l_garbage.webp", webp[:21] + bytes(range(255, 0, -1)) * 2, "VP8L bitstream garbage"),
        ("bmp_bits_7.bmp", _bmp_claim(4, 4, bits=7), "7 bits per pixel"),
        ("bmp_header_size_9.bmp", _bmp_claim(4, 4, header=9), "info header of 9 bytes"),
        ("bmp_offset_past_end.bmp", _bmp_claim(4, 4, offset=0x7FFFFFF0), "pixel offset past the end"),
        ("bmp_truncated_pixels.bmp", _patched(bmp, 18, struct.pack("<i", 4000)), "width 4000, data for 64"),
    ]
    return [ImageCase(name, data, True, why) for name, data, why in cases]


def _not_images() -> list[ImageCase]:
    rng = random.Random(_SEED)
    extensions = ("jpg", "jpeg", "png", "webp", "tif", "tiff", "gif", "bmp")
    cases = [ImageCase(f"empty.{ext}", b"", True, "zero bytes") for ext in extensions]
    for size in (17, 4096):
        cases += [
            ImageCase(f"random_{size}.{ext}", rng.randbytes(size), True, f"{size} random bytes")
            for ext in extensions
        ]
    magics = {
        "jpg": b"\xff\xd8\xff\xe0",
        "png": b"\x89PNG\r\n\x1a\n",
        "gif": b"GIF89a",
        "tif": b"II*\x00\x08\x00\x00\x00",
        "webp": b"RIFF\x00\x10\x00\x00WEBPVP8 ",
        "bmp": b"BM",
    }
    cases += [
        ImageCase(f"magic_then_random.{ext}", magic + rng.randbytes(600), True, "signature, then noise")
        for ext, magic in magics.items()
    ]
    documents = {
        "page.jpg": b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        "drawing.jpg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
        "drawing.png": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        "billion_laughs.svg.jpg": (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><svg>&b;</svg>'
        ),
        "notes.png": "plain text, naïve café\n".encode() * 20,
        "data.gif": b'{"images": [], "note": "json"}',
        "paper.jpg": b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
        "archive.png": b"PK\x03\x04" + b"\x00" * 60,
        "program.jpg": b"\x7fELF\x02\x01\x01" + b"\x00" * 120,
        "script.webp": b"#!/bin/sh\nrm -rf /\n",
        "utf16.tif": "text in UTF-16".encode("utf-16"),
    }
    cases += [ImageCase(name, data, True, "not an image") for name, data in documents.items()]
    small = Image.fromarray(_noise(8, 8, seed=3))
    others = {"ppm": "PPM", "pcx": "PCX", "tga": "TGA", "ico": "ICO", "sgi": "SGI", "im": "IM"}
    cases += [
        ImageCase(f"other_format_{ext}.jpg", encode(small, fmt), True, f"{fmt}: a format not accepted")
        for ext, fmt in others.items()
    ]
    return cases


def _bombs() -> list[ImageCase]:
    side = int(LIMIT**0.5)
    under_w, under_h = side - 1, side  # (side-1)*side < LIMIT: legal, but big
    cases = [
        ("bomb_png_100000.png", png_raw(100_000, 100_000), "PNG claims 100000x100000"),
        ("bomb_png_65535_rgba16.png", png_raw(65_535, 65_535, 16, 6), "PNG claims 65535x65535 RGBA 16-bit"),
        ("bomb_png_wide.png", png_raw(2_000_000_000, 2), "PNG claims 2e9 x 2"),
        ("bomb_gif_65535.gif", _gif_claim(65_535, 65_535), "GIF claims 65535x65535"),
        ("bomb_tiff_100000.tif", _tiff_claim(100_000, 100_000), "TIFF claims 100000x100000"),
        ("bomb_jpeg_65500.jpg", _jpeg_claim(65_500, 65_500), "JPEG claims 65500x65500"),
        ("bomb_webp_16384.webp", _webp_claim(16_384, 16_384), "WebP canvas 16384x16384"),
        ("bomb_bmp_100000.bmp", _bmp_claim(100_000, 100_000), "BMP claims 100000x100000"),
        ("bomb_bmp_negative.bmp", _bmp_claim(-100_000, -100_000), "BMP claims -100000x-100000"),
        (
            "bomb_png_zeros_over.png",
            _zeros_png(side + 1, side + 1),
            "a real all-zero PNG just over the limit",
        ),
        ("under_png_truncated.png", png_raw(under_w, under_h), "PNG just under the limit, no data"),
        ("under_tiff_truncated.tif", _tiff_claim(under_w, under_h), "TIFF just under the limit, one strip"),
        ("under_gif_truncated.gif", _gif_claim(under_w, under_h), "GIF just under the limit, no data"),
        (
            "under_jpeg_truncated.jpg",
            _jpeg_claim(under_w, under_h),
            "JPEG just under the limit, 64x48 of data",
        ),
        ("zero_width_png.png", png_raw(0, 8), "PNG width 0"),
        ("zero_height_png.png", png_raw(8, 0), "PNG height 0"),
        ("zero_size_gif.gif", _gif_claim(0, 0), "GIF 0x0"),
        ("zero_width_tiff.tif", _tiff_claim(0, 4), "TIFF width 0"),
        ("zero_width_bmp.bmp", _bmp_claim(0, 4), "BMP width 0"),
        ("zero_width_jpeg.jpg", _jpeg_claim(0, 48), "JPEG width 0"),
    ]
    return [ImageCase(name, data, True, why) for name, data, why in cases]


def _zeros_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of zeros: a few KB on disk, ``width*height`` bytes decoded."""
    row = b"\x00" * (width + 1)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png_raw(width, height, 8, 0, body)


def _odd() -> list[ImageCase]:
    """Legal images in unusual shapes: each must be accepted and decode to RGB."""
    rgb = _noise(24, 16, seed=11)
    grey = _noise(24, 16, 1, seed=12)
    images: dict[str, tuple[Image.Image, str, dict[str, Any]]] = {
        "mode_1.png": (Image.fromarray(grey > 127), "PNG", {}),
        "mode_1.tif": (Image.fromarray(grey > 127), "TIFF", {}),
        "mode_1.bmp": (Image.fromarray(grey > 127), "BMP", {}),
        "mode_l.png": (Image.fromarray(grey), "PNG", {}),
        "mode_l.jpg": (Image.fromarray(grey), "JPEG", {}),
        "mode_l.webp": (Image.fromarray(grey), "WEBP", {}),
        "mode_la.png": (Image.fromarray(grey).convert("LA"), "PNG", {}),
        "mode_la.tif": (Image.fromarray(grey).convert("LA"), "TIFF", {}),
        "mode_p.png": (Image.fromarray(rgb).convert("P"), "PNG", {}),
        "mode_p.gif": (Image.fromarray(rgb).convert("P"), "GIF", {}),
        "mode_p.bmp": (Image.fromarray(rgb).convert("P"), "BMP", {}),
        "mode_p_transparent.png": (Image.fromarray(rgb).convert("P"), "PNG", {"transparency": 0}),
        "mode_p_transparent.gif": (Image.fromarray(rgb).convert("P"), "GIF", {"transparency": 3}),
        "mode_i16.png": (Image.fromarray(grey.astype(np.uint16) * 257), "PNG", {}),
        "mode_i16.tif": (Image.fromarray(grey.astype(np.uint16) * 257), "TIFF", {}),
        "mode_i.tif": (Image.fromarray(grey.astype(np.int32) * 70_000), "TIFF", {}),
        "mode_f.tif": (Image.fromarray(grey.astype(np.float32) / 7.0), "TIFF", {}),
        "mode_cmyk.jpg": (Image.fromarray(rgb).convert("CMYK"), "JPEG", {}),
        "mode_cmyk.tif": (Image.fromarray(rgb).convert("CMYK"), "TIFF", {}),
        "mode_rgba.png": (Image.fromarray(rgb).convert("RGBA"), "PNG", {}),
        "mode_rgba.webp": (Image.fromarray(rgb).convert("RGBA"), "WEBP", {"lossless": True}),
        "mode_rgba.tif": (Image.fromarray(rgb).convert("RGBA"), "TIFF", {}),
        "mode_ycbcr.jpg": (Image.fromarray(rgb).convert("YCbCr"), "JPEG", {}),
        "mode_ycbcr.tif": (Image.fromarray(rgb).convert("YCbCr"), "TIFF", {}),
        "mode_lab.tif": (Image.fromarray(rgb).convert("LAB"), "TIFF", {}),
        "one_pixel.jpg": (Image.new("RGB", (1, 1), (200, 10, 10)), "JPEG", {}),
        "one_pixel.png": (Image.new("RGB", (1, 1), (200, 10, 10)), "PNG", {}),
        "one_pixel.gif": (Image.new("P", (1, 1), 1), "GIF", {}),
        "one_pixel.tif": (Image.new("L", (1, 1), 9), "TIFF", {}),
        "one_pixel.webp": (Image.new("RGB", (1, 1), (1, 2, 3)), "WEBP", {"lossless": True}),
        "one_pixel.bmp": (Image.new("RGB", (1, 1), (4, 5, 6)), "BMP", {}),
        "wide_20000x1.png": (Image.new("L", (20_000, 1), 50), "PNG", {}),
        "thin_1x20000.png": (Image.new("L", (1, 20_000), 60), "PNG", {}),
        "wide_16000x2.jpg": (Image.new("RGB", (16_000, 2), (9, 9, 9)), "JPEG", {}),
        "thin_2x16000.webp": (Image.new("RGB", (2, 16_000), (9, 9, 9)), "WEBP", {}),
        "progressive.jpg": (Image.fromarray(rgb), "JPEG", {"progressive": True}),
        "interlaced.gif": (Image.fromarray(rgb).convert("P"), "GIF", {"interlace": True}),
    }
    cases = [
        ImageCase(name, encode(image, fmt, **options), False, f"{image.mode} {fmt}")
        for name, (image, fmt, options) in images.items()
    ]
    frames = [Image.fromarray(_noise(20, 20, seed=s)) for s in range(3)]
    for name, fmt in (
        ("animated.gif", "GIF"),
        ("animated.png", "PNG"),
        ("animated.webp", "WEBP"),
        ("multipage.tif", "TIFF"),
    ):
        cases.append(
            ImageCase(
                name,
                encode(frames[0], fmt, save_all=True, append_images=frames[1:]),
                False,
                f"{fmt}, 3 frames",
            )
        )
    for value in (0, 9, 255, 65535):
        cases.append(
            ImageCase(
                f"exif_orientation_{value}.jpg",
                _exif_jpeg(_orientation_exif(value)),
                False,
                f"EXIF orientation {value}",
            )
        )
    cases.append(
        ImageCase(
            "exif_orientation_long.jpg",
            _exif_jpeg(_orientation_exif(6, kind=4)),
            False,
            "orientation as LONG",
        )
    )
    cases.append(
        ImageCase(
            "exif_orientation_6.jpg", _exif_jpeg(_orientation_exif(6)), False, "orientation 6 (swapped sides)"
        )
    )
    broken_exif = {
        "exif_bad_byte_order.jpg": b"XX*\x00\x08\x00\x00\x00",
        "exif_ifd_past_end.jpg": b"II*\x00\xff\xff\xff\x7f",
        "exif_huge_count.jpg": b"II*\x00\x08\x00\x00\x00\xff\xff" + b"\x12\x01\x03\x00" * 4,
        "exif_value_past_end.jpg": b"II*\x00"
        + struct.pack("<IH", 8, 1)
        + struct.pack("<HHII", 0x0112, 3, 900, 0x7FFFFFF0),
        "exif_self_loop.jpg": b"II*\x00"
        + struct.pack("<IH", 8, 1)
        + struct.pack("<HHII", 0x8769, 4, 1, 8)
        + struct.pack("<I", 8),
        "exif_empty.jpg": b"",
    }
    cases += [
        ImageCase(name, _exif_jpeg(body), False, "broken EXIF on a readable image")
        for name, body in broken_exif.items()
    ]
    cases.append(ImageCase("png16_rgb.png", _png16_rgb(12, 5), False, "16-bit RGB PNG"))
    side = int(LIMIT**0.5)
    cases.append(
        ImageCase(
            "huge_but_legal.png", _zeros_png(side - 1, side), False, "just under the pixel limit, all zero"
        )
    )
    return cases


#: Damaged files the decoders repair, as every viewer does: libjpeg supplies the standard Huffman
#: tables and pads a scan that ends early, Pillow ignores PNG's compression byte and reads the
#: pixels before a chunk's bogus length matters, its GIF decoder clamps the LZW code size. They
#: decode to pixels within the pixel limit, so they are accepted (and must then decode).
TOLERATED = frozenset(
    {
        "png_compression_9.png",
        "png_huge_chunk.png",
        "jpeg_no_huffman.jpg",
        "jpeg_scan_garbage.jpg",
        "gif_lzw_size_0.gif",
        "gif_lzw_size_13.gif",
        "under_jpeg_truncated.jpg",
    }
)


#: Over :data:`LIMIT` but legal under the default limit (100 M pixels) readers use when the
#: caller configures none, as ``visionloop prelabel``'s decoder does.
OVER_TEST_LIMIT_ONLY = frozenset({"bomb_png_zeros_over.png"})


def image_corpus() -> list[ImageCase]:
    """Every image case, bad and odd; names are unique."""
    cases = _truncated() + _corrupt_headers() + _not_images() + _bombs() + _odd()
    cases = [replace(case, bad=False) if case.name in TOLERATED else case for case in cases]
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "corpus names must be unique"
    return cases


def write_images(folder: Path, cases: list[ImageCase]) -> dict[str, ImageCase]:
    """Write the cases under ``folder``; returns them by path."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for case in cases:
        path = folder / case.name
        path.write_bytes(case.data)
        written[str(path)] = case
    return written
