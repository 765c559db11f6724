"""Probing identifies images by content and rejects every kind of bad file with a reason."""

from __future__ import annotations

import pytest

from images import Sample, bad_samples, good_samples, rgb_jpeg
from visionloop.imaging import ImageRejected, probe_image


@pytest.mark.parametrize("sample", good_samples(), ids=lambda s: s.name)
def test_good_images_report_their_oriented_size(sample: Sample) -> None:
    info = probe_image(sample.data)
    assert (info.width, info.height) == sample.size


@pytest.mark.parametrize("sample", bad_samples(), ids=lambda s: s.name)
def test_bad_files_are_rejected_with_a_reason(sample: Sample) -> None:
    with pytest.raises(ImageRejected) as caught:
        probe_image(sample.data)
    assert sample.reason is not None and sample.reason in caught.value.reason


def test_formats_outside_the_allowed_list_are_named() -> None:
    with pytest.raises(ImageRejected, match="unsupported image format JPEG; accepted: PNG"):
        probe_image(rgb_jpeg(), formats=("PNG",))


def test_exif_orientation_is_reported() -> None:
    rotated = next(s for s in good_samples() if s.name == "rotated-exif.jpg")
    assert probe_image(rotated.data).exif_orientation == 6
