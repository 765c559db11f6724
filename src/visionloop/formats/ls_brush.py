"""Label Studio brush masks: the thi-ng ``rle-pack`` bit stream over a flattened RGBA array.

This is **not** COCO RLE. Label Studio flattens the brush layer to ``H * W * 4`` byte values
(row-major, RGBA per pixel) and packs them with ``@thi.ng/rle-pack``. The stream is read MSB
first, bit by bit across byte boundaries, and is sent as a JSON list of byte values:

- header: 32 bits value count, 5 bits ``word size - 1``, then four 4-bit ``size - 1`` entries
  of the run-length size table (Label Studio uses the default ``[3, 4, 8, 16]``);
- then tokens until ``count`` values are produced: 1 flag bit (**1 = repeat run**: one word is
  repeated; **0 = literal chunk**: that many words follow), 2 bits indexing the size table,
  ``length - 1`` in that many bits, then the word (run) or the words (chunk).

A pixel is set when its alpha (channel 3) is non-zero. :func:`encode` writes 255 in all four
channels of set pixels and only repeat runs (every value occurs at least four times in a row),
split at 65536 values, which is what the thi-ng decoder and Label Studio's SDK read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

#: The run-length size table Label Studio writes (bits for ``length - 1``).
RLE_SIZES = (3, 4, 8, 16)
#: Refuse masks larger than this many pixels before allocating anything (a 16k x 16k image).
MAX_PIXELS = 1 << 28
#: Bits of padding or slack tolerated after the last token (writers pad to a byte, some add one).
MAX_TRAILING_BITS = 32
_HEADER_BITS = 32 + 5 + 4 * 4
_MAX_RUN = 1 << RLE_SIZES[-1]


def encode(mask: npt.ArrayLike) -> list[int]:
    """Binary ``(H, W)`` mask -> Label Studio brush RLE (a list of byte values)."""
    array = np.asarray(mask, dtype=bool)
    if array.ndim != 2:
        raise ValueError(f"a brush mask must be 2-D, got shape {array.shape}")
    flat = array.reshape(-1)
    num = flat.size * 4
    fields: list[IntArray] = [
        np.array([num, 8 - 1, *(s - 1 for s in RLE_SIZES)], dtype=np.int64),
    ]
    widths: list[IntArray] = [np.array([32, 5, 4, 4, 4, 4], dtype=np.int64)]
    if flat.size:
        lengths, values = _runs(flat)
        lengths, values = _split_runs(lengths * 4, values)
        token_fields, token_widths = _run_tokens(lengths, values)
        fields.append(token_fields)
        widths.append(token_widths)
    return _pack(np.concatenate(fields), np.concatenate(widths))


def _runs(flat: BoolArray) -> tuple[IntArray, BoolArray]:
    """Lengths and values of the runs of equal pixels in ``flat``."""
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], changes, [flat.size])).astype(np.int64)
    return np.diff(bounds), flat[bounds[:-1]]


def _split_runs(lengths: IntArray, values: BoolArray) -> tuple[IntArray, BoolArray]:
    """Split runs longer than the largest size class (65536 values) into several runs."""
    pieces = -(-lengths // _MAX_RUN)
    if np.all(pieces == 1):
        return lengths, values
    index = np.repeat(np.arange(len(lengths)), pieces)
    first = np.concatenate(([0], np.cumsum(pieces)[:-1]))
    offset = np.arange(len(index)) - np.repeat(first, pieces)
    split = np.minimum(lengths[index] - offset * _MAX_RUN, _MAX_RUN)
    return split.astype(np.int64), values[index]


def _run_tokens(lengths: IntArray, values: BoolArray) -> tuple[IntArray, IntArray]:
    """Interleaved (flag, size index, length - 1, value) fields and their bit widths."""
    n = lengths - 1
    thresholds = np.array([1 << s for s in RLE_SIZES[:-1]])
    classes = np.searchsorted(thresholds, n, side="right").astype(np.int64)
    sizes = np.array(RLE_SIZES, dtype=np.int64)[classes]
    count = len(lengths)
    fields = np.empty((count, 4), dtype=np.int64)
    fields[:, 0], fields[:, 1], fields[:, 2] = 1, classes, n
    fields[:, 3] = np.where(values, 255, 0)
    widths = np.empty((count, 4), dtype=np.int64)
    widths[:, 0], widths[:, 1], widths[:, 2], widths[:, 3] = 1, 2, sizes, 8
    return fields.reshape(-1), widths.reshape(-1)


def _pack(fields: IntArray, widths: IntArray) -> list[int]:
    """Write each field MSB first with its width, pad the last byte with zeros."""
    owner = np.repeat(np.arange(len(fields)), widths)
    starts = np.concatenate(([0], np.cumsum(widths)[:-1]))
    shift = widths[owner] - 1 - (np.arange(len(owner)) - starts[owner])
    bits = ((fields[owner] >> shift) & 1).astype(np.uint8)
    return [int(b) for b in np.packbits(bits)]


def decode(rle: Sequence[int] | object, height: int, width: int) -> BoolArray:
    """Label Studio brush RLE -> binary ``(height, width)`` mask (alpha > 0 is set).

    Raises ``ValueError`` for anything but a well-formed stream of exactly ``height * width * 4``
    values; the declared count is checked against the size before any mask is allocated.
    """
    data = _byte_values(rle)
    for value, label in ((height, "height"), (width, "width")):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"brush mask {label} must be a positive integer, got {value!r}")
    if height * width > MAX_PIXELS:
        raise ValueError(f"brush mask of {width}x{height} exceeds the limit of {MAX_PIXELS} pixels")
    reader = _BitReader(data)
    num = reader.read(32)
    word = reader.read(5) + 1
    sizes = [reader.read(4) + 1 for _ in range(4)]
    if num != height * width * 4:
        raise ValueError(
            f"brush RLE declares {num} values, expected {width}x{height}x4 = {height * width * 4}"
        )
    ends, values = _tokens(reader, num, word, sizes)
    if reader.remaining() > MAX_TRAILING_BITS:
        raise ValueError(f"brush RLE has {reader.remaining() // 8} unused bytes after its last run")
    alpha_counts = np.diff(np.concatenate(([0], ends // 4)))
    return np.repeat(values > 0, alpha_counts).reshape(height, width)


def _byte_values(rle: object) -> bytes:
    """The stream as bytes; refuses anything but a flat list of integers 0..255."""
    if not isinstance(rle, list | tuple):
        raise ValueError(f"brush RLE must be a list of byte values, got {type(rle).__name__}")
    if any(isinstance(v, bool) or not isinstance(v, int) for v in rle):
        raise ValueError("brush RLE must hold only integers")
    if any(not 0 <= v <= 255 for v in rle):
        raise ValueError("brush RLE values must lie within 0..255")
    if len(rle) * 8 < _HEADER_BITS:
        raise ValueError(f"brush RLE is truncated: {len(rle)} bytes cannot hold the header")
    return bytes(rle)


def _tokens(reader: _BitReader, num: int, word: int, sizes: list[int]) -> tuple[IntArray, IntArray]:
    """Read runs and chunks; returns each segment's end index and value (chunk words are
    segments of one value)."""
    ends: list[int] = []
    values: list[int] = []
    i = 0
    while i < num:
        repeat = reader.read(1)
        length = reader.read(sizes[reader.read(2)]) + 1
        if i + length > num:
            raise ValueError(f"brush RLE run at value {i} overflows the declared {num} values")
        if repeat:
            values.append(reader.read(word))
            ends.append(i + length)
        else:
            values.extend(reader.read_words(length, word))
            ends.extend(range(i + 1, i + length + 1))
        i += length
    return np.array(ends, dtype=np.int64), np.array(values, dtype=np.int64)


class _BitReader:
    """MSB-first reader over a byte string that refuses to read past the end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.total = len(data) * 8
        self.pos = 0

    def remaining(self) -> int:
        return self.total - self.pos

    def read(self, bits: int) -> int:
        end = self.pos + bits
        if end > self.total:
            raise ValueError(f"brush RLE is truncated: needs bit {end}, has {self.total}")
        first, last = self.pos >> 3, (end + 7) >> 3
        chunk = int.from_bytes(self.data[first:last], "big")
        self.pos = end
        return (chunk >> (last * 8 - end)) & ((1 << bits) - 1)

    def read_words(self, count: int, bits: int) -> list[int]:
        """``count`` consecutive ``bits``-wide words, vectorised."""
        end = self.pos + count * bits
        if end > self.total:
            raise ValueError(f"brush RLE is truncated: needs bit {end}, has {self.total}")
        first, last = self.pos >> 3, (end + 7) >> 3
        stream = np.unpackbits(np.frombuffer(self.data[first:last], dtype=np.uint8))
        start = self.pos - first * 8
        matrix = stream[start : start + count * bits].reshape(count, bits).astype(np.int64)
        weights = np.left_shift(1, np.arange(bits - 1, -1, -1, dtype=np.int64))
        self.pos = end
        return [int(v) for v in matrix @ weights]
