"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package (MIT licensed, 70k real images).

The IDX files are parsed with numpy (big-endian header, then raw uint8 pixels); nothing is
downloaded at run time.
"""

from __future__ import annotations

import gzip
import io
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from visionloop.core.errors import ConfigError, ValidationError
from visionloop.storage import atomic_write_local

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_UBYTE = 0x08


def read_idx(path: Path) -> npt.NDArray[np.uint8]:
    """Parse a (gzipped) IDX file of unsigned bytes into an array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4:
        raise ValidationError(f"{path}: too short for an IDX header")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != _IDX_UBYTE or not 1 <= ndim <= 4:
        raise ValidationError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    expected = int(np.prod(shape))
    if len(body) != expected:
        raise ValidationError(f"{path}: header promises {expected} values, file holds {len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def available(root: Path = DEBIAN_ROOT) -> bool:
    return all((root / name).is_file() for pair in _FILES.values() for name in pair)


def load(
    split: str = "train", root: Path = DEBIAN_ROOT
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Images ``(N, 28, 28)`` and labels ``(N,)`` of one split (``train`` or ``test``)."""
    if split not in _FILES:
        raise ConfigError(f"unknown Fashion-MNIST split {split!r}; use 'train' or 'test'")
    if not available(root):
        raise ConfigError(
            f"Fashion-MNIST not found in {root}; install it with: apt-get install dataset-fashion-mnist"
        )
    images_name, labels_name = _FILES[split]
    images, labels = read_idx(root / images_name), read_idx(root / labels_name)
    if len(images) != len(labels):
        raise ValidationError(f"{root}: {len(images)} images but {len(labels)} labels in split {split}")
    return images, labels


def export_image_folder(
    out_dir: Path,
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.uint8],
    per_class: int,
    seed: int = 0,
    classes: Sequence[str] = CLASSES,
) -> int:
    """Write ``per_class`` PNGs of each class into ``out_dir/<class>/``; returns the count."""
    rng = np.random.default_rng(seed)
    written = 0
    for class_index, class_name in enumerate(classes):
        indices = np.flatnonzero(labels == class_index)
        chosen = rng.choice(indices, size=min(per_class, len(indices)), replace=False)
        for index in sorted(chosen.tolist()):
            buffer = io.BytesIO()
            Image.fromarray(images[index]).save(buffer, format="PNG")
            atomic_write_local(str(out_dir / class_name / f"{index:05d}.png"), buffer.getvalue())
            written += 1
    return written
