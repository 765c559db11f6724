"""A trained model on disk: ``model.safetensors`` plus ``model.json`` describing how to rebuild it.

The JSON carries everything inference needs without the training run: task, model family and
config, the label schema, the weights' sha256 (checked on load) and the metrics it earned.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visionloop.core.errors import ValidationError
from visionloop.core.schema import LabelSchema
from visionloop.models.config import ModelConfig
from visionloop.models.weights import load_weights, save_weights
from visionloop.storage.descriptions import read_description
from visionloop.storage.filesystem import atomic_write_local
from visionloop.tasks.model_files import (
    ARTIFACT_VERSION,
    META_NAME,
    WEIGHTS_NAME,
    model_version,
    read_model_description,
)

__all__ = [
    "ARTIFACT_VERSION",
    "ModelArtifact",
    "read_artifact",
    "read_description",
    "read_training_items",
    "write_artifact",
    "write_training_items",
]

TRAINING_ITEMS_NAME = "training_items.npy"


@dataclass(frozen=True)
class ModelArtifact:
    folder: Path
    schema: LabelSchema
    model: ModelConfig
    family: str
    weights_sha256: str
    run_id: str | None
    metrics: dict[str, Any]
    extra: dict[str, Any]

    @property
    def weights_path(self) -> Path:
        return self.folder / WEIGHTS_NAME

    @property
    def image_size(self) -> int:
        return self.model.image_size

    @property
    def version(self) -> str:
        """How predictions name this model: its training run, or its weights' hash (whatever
        runtime executes it)."""
        return model_version(self.run_id, self.weights_sha256)


def write_artifact(
    folder: Path,
    state_dict: dict[str, torch.Tensor],
    schema: LabelSchema,
    model: ModelConfig,
    family: str,
    run_id: str | None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> ModelArtifact:
    folder.mkdir(parents=True, exist_ok=True)
    sha = save_weights(state_dict, folder / WEIGHTS_NAME, metadata={"family": family})
    meta = {
        "version": ARTIFACT_VERSION,
        "task": schema.task.value,
        "family": family,
        "model": model.model_dump(mode="json"),
        "schema": schema.model_dump(mode="json"),
        "weights_sha256": sha,
        "run_id": run_id,
        "metrics": metrics or {},
        "extra": extra or {},
    }
    atomic_write_local(str(folder / META_NAME), json.dumps(meta, indent=2, sort_keys=True).encode())
    return read_artifact(folder)


def read_artifact(folder: Path) -> ModelArtifact:
    described = read_model_description(folder)
    try:
        model = ModelConfig.model_validate(described.model)
    except ValueError as exc:
        raise ValidationError(f"{folder / META_NAME}: malformed model description: {exc}") from exc
    return ModelArtifact(
        folder=folder,
        schema=described.schema,
        model=model,
        family=described.family,
        weights_sha256=described.weights_sha256,
        run_id=described.run_id,
        metrics=described.metrics,
        extra=described.extra,
    )


def load_artifact_weights(artifact: ModelArtifact) -> dict[str, torch.Tensor]:
    """The artifact's weights, refused when the file changed since it was written."""
    return load_weights(artifact.weights_path, expected_sha256=artifact.weights_sha256).state_dict


def write_training_items(folder: Path, item_ids: Iterable[int]) -> None:
    """Record which catalog items the model trained on: calibration must use other items."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(sorted(set(item_ids)), dtype=np.int64), allow_pickle=False)
    atomic_write_local(str(folder / TRAINING_ITEMS_NAME), buffer.getvalue())


def read_training_items(folder: Path) -> set[int] | None:
    """The item ids a model trained on, or None when it did not record them."""
    path = folder / TRAINING_ITEMS_NAME
    if not path.is_file():
        return None
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path}: unreadable list of training items: {exc}") from exc
    return {int(value) for value in np.asarray(values).reshape(-1).tolist()}
