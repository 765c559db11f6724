"""A pre-labeling bench's project and model: photos ingested as unlabelled items, and torchvision's
ImageNet MobileNetV2 (offline weights) with a new 10-class head, untrained (throughput does not
depend on the head), saved as a visionloop model."""

from __future__ import annotations

from pathlib import Path

from visionloop.core.schema import LabelSchema, TaskType
from visionloop.datasets import fashion_mnist
from visionloop.ingest import IngestOptions, ingest
from visionloop.models.artifact import write_artifact
from visionloop.models.classifier import build_classifier
from visionloop.models.config import ModelConfig
from visionloop.project import Project
from visionloop.project.config import ProjectConfig
from visionloop.storage import Filesystem

__all__ = ["SCHEMA", "make_model", "make_project"]

SCHEMA = LabelSchema(task=TaskType.CLASSIFICATION, classes=list(fashion_mnist.CLASSES))


def make_project(root: Path, photos: Path, config: ProjectConfig | None = None) -> Project:
    project = Project.create(root, config or ProjectConfig(name="bench-prelabel", labels=SCHEMA))
    with project.open_catalog() as catalog:
        ingest(catalog, Filesystem(str(photos)), IngestOptions(split="train", workers=1))
    return project


def make_model(folder: Path, side: int) -> Path:
    network, _ = build_classifier("mobilenet_v2", len(SCHEMA.classes), "imagenet")
    config = ModelConfig(family="classifier", image_size=side, weights="imagenet")
    write_artifact(folder, network.state_dict(), SCHEMA, config, "classifier", run_id=None)
    return folder
