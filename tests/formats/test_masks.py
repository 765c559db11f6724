"""COCO RLE decoding of untrusted masks: exact on valid input, refused (never garbage) otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from visionloop.core.errors import ValidationError
from visionloop.formats.masks import MAX_MASK_PIXELS, rle_decode


def test_compressed_strings_decode_like_pycocotools() -> None:
    rng = np.random.default_rng(3)
    for _ in range(100):
        height, width = (int(v) for v in rng.integers(1, 30, 2))
        mask = rng.random((height, width)) < rng.random()
        counts = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"]
        for form in (counts, counts.decode("ascii")):
            assert np.array_equal(rle_decode({"size": [height, width], "counts": form}), mask)


@pytest.mark.parametrize(
    ("counts", "reason"),
    [
        # pycocotools decoded these to uninitialised memory: random pixels, different every run.
        ("0", "sum to 0, expected 3x3 = 9"),
        ("", "sum to 0, expected 3x3 = 9"),
        ("a", "ends inside a run length"),
        ("zz", "byte 122 at 0"),
        ("PPPPPP9", "sum to 9663676416"),
    ],
)
def test_bad_compressed_strings_are_refused(counts: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        rle_decode({"size": [3, 3], "counts": counts})


def test_a_huge_claimed_size_is_refused_before_allocating() -> None:
    side = 1 << 16
    assert side * side > MAX_MASK_PIXELS
    for counts in ([side * side], "0"):
        with pytest.raises(ValidationError, match="exceeds the limit"):
            rle_decode({"size": [side, side], "counts": counts})
