"""A project whose registry holds one tiny untrained model per family (every task type), and
images to send them: what the labeling-tool protocol tests serve."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from tiny_models import SCHEMAS, photos, write_model
from visionloop.project import Project
from visionloop.project.config import ProjectConfig
from visionloop.registry import ModelRegistry

#: Registered in this order, so ``classifier`` is v1, ``faster_rcnn`` v2, and so on.
FAMILIES = ("classifier", "faster_rcnn", "mask_rcnn", "keypoint_rcnn", "heatmap")


def served_project(root: Path, max_detections: int = 3) -> tuple[Project, dict[str, str]]:
    """The project and each family's registered version name (``v1``...)."""
    project = Project.create(root / "project", ProjectConfig(name="served", labels=SCHEMAS["classifier"]))
    versions = {}
    with project.open_catalog() as catalog:
        registry = ModelRegistry(catalog, project.root)
        for family in FAMILIES:
            folder = project.root / "models" / family
            artifact = write_model(folder, family, image_size=64, max_detections=max_detections)
            versions[family] = registry.register(artifact.folder, "tester").name
    return project, versions


def model_folder(project: Project, family: str) -> Path:
    return project.root / "models" / family


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_photos(folder: Path, count: int, prefix: str = "photo") -> list[str]:
    """``count`` PNG photos of assorted sizes under ``folder``; their names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index, pixels in enumerate(photos(count)):
        name = f"{prefix}_{index}.png"
        (folder / name).write_bytes(png(pixels))
        names.append(name)
    return names
