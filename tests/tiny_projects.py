"""Tiny generated projects for every task: bright rectangles on noise, with exact labels.

Each project has labelled train, val and test items in a real catalog (SQLite), images on disk,
so training and evaluation run through exactly the code users run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from visionloop.core.labels import ClassLabel, Label, ObjectLabels
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.masks import rle_encode
from visionloop.ingest import IngestOptions, ingest
from visionloop.project import Project
from visionloop.project.config import ProjectConfig
from visionloop.storage import Filesystem

SIZE = 64
KEYPOINTS = ["left_top", "right_top", "center"]


def _scene(rng: np.random.Generator, task: TaskType, index: int) -> tuple[np.ndarray, Label]:
    image = (rng.random((SIZE, SIZE, 3)) * 60).astype(np.uint8)
    if task is TaskType.CLASSIFICATION:
        name = ("left", "right")[index % 2]
        half = slice(0, SIZE // 2) if name == "left" else slice(SIZE // 2, SIZE)
        image[:, half] = 200
        return image, ClassLabel(name)
    x, y = (int(v) for v in rng.integers(4, SIZE // 2, 2))
    w, h = (int(v) for v in rng.integers(14, SIZE // 2 - 2, 2))
    name = ("box", "bar")[index % 2]
    image[y : y + h, x : x + w] = (220, 200, 40) if name == "box" else (40, 200, 220)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[y : y + h, x : x + w] = True
    keypoints = None
    if task is TaskType.KEYPOINTS:
        keypoints = np.array([[[x + 0.5, y + 0.5, 2], [x + w - 0.5, y + 0.5, 2], [x + w / 2, y + h / 2, 2]]])
    return image, ObjectLabels(
        boxes=np.array([[x, y, x + w, y + h]], float),
        class_names=(name,),
        masks=(rle_encode(mask),) if task is TaskType.SEGMENTATION else None,
        keypoints=keypoints,
    )


def make_project(
    root: Path, task: TaskType, per_split: int = 4, seed: int = 0, unlabeled: int = 0
) -> Project:
    """Labelled train/val/test items, plus ``unlabeled`` train items without labels (a pool)."""
    classes = ["left", "right"] if task is TaskType.CLASSIFICATION else ["box", "bar"]
    schema = LabelSchema(
        task=task, classes=classes, keypoints=KEYPOINTS if task is TaskType.KEYPOINTS else []
    )
    project = Project.create(root / "project", ProjectConfig(name=f"tiny-{task.value}", labels=schema))
    rng = np.random.default_rng(seed)
    labels: dict[str, Label] = {}
    with project.open_catalog() as catalog:
        for split in ("train", "val", "test"):
            folder = root / "images" / split
            folder.mkdir(parents=True)
            for i in range(per_split):
                image, label = _scene(rng, task, i)
                path = folder / f"{split}_{i:03d}.png"
                Image.fromarray(image).save(path)
                labels[str(path)] = label
            ingest(catalog, Filesystem(str(folder)), IngestOptions(split=split, workers=1))
        if unlabeled:
            pool = root / "images" / "pool"
            pool.mkdir(parents=True)
            for i in range(unlabeled):
                Image.fromarray(_scene(rng, task, i)[0]).save(pool / f"pool_{i:03d}.png")
            ingest(catalog, Filesystem(str(pool)), IngestOptions(split="train", workers=1))
        ids = catalog.item_ids_for_uris(list(labels))
        catalog.add_labels(
            [(ids[uri], label, Provenance.human("tester")) for uri, label in labels.items()], []
        )
    return project


# A training that resumes to the very same weights after any interruption: deterministic kernels,
# one thread, a checkpoint every step, tiny images (used by the resume and crash tests).
RESUMABLE_TRAINING = [
    "deterministic=true",
    "threads=1",
    "seed=7",
    "model.image_size=32",
    "optim.batch_size=2",
    "optim.epochs=2",
    "checkpoint.every_steps=1",
    "early_stopping.patience=null",
    "augment.pipeline=default",
]
