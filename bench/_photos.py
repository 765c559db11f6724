"""Camera-like JPEG photos with a real Fashion-MNIST item in each, shared by the benches.

Each photo is a smooth colour field with sensor-like noise and one tinted, upscaled test item at a
random place: the decode cost of real photos, with real objects in them. Written once per folder
and reused (``--workdir``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from visionloop.datasets import fashion_mnist

__all__ = ["make_photos"]


def make_photos(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """``count`` JPEGs of ``size`` (width, height), one Fashion-MNIST test item in each."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo_{index:05d}.jpg" for index in range(count)]
    if all(path.is_file() for path in paths):
        return paths
    items, _ = fashion_mnist.load("test")
    rng = np.random.default_rng(seed)
    width, height = size
    noise_bank = [rng.normal(0.0, 6.0, (height, width, 3)).astype(np.float32) for _ in range(4)]
    for index, path in enumerate(paths):
        field = Image.fromarray(rng.integers(40, 220, (6, 8, 3), dtype=np.uint8)).resize(
            (width, height), Image.Resampling.BICUBIC
        )
        canvas = np.asarray(field, np.float32) + np.roll(noise_bank[index % 4], index * 37, axis=1)
        side = int(rng.integers(min(size) // 3, int(min(size) * 0.8)))
        item = Image.fromarray(items[index % len(items)]).resize((side, side), Image.Resampling.BICUBIC)
        alpha = np.asarray(item, np.float32)[:, :, None] / 255.0
        tint = rng.integers(60, 255, 3).astype(np.float32)
        top, left = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
        patch = canvas[top : top + side, left : left + side]
        canvas[top : top + side, left : left + side] = patch * (1 - alpha) + tint * alpha
        photo = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
        photo.save(path, quality=90)
    return paths
