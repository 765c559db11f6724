"""A model folder's description (``model.json``), read without PyTorch.

``model.json`` says what the weights in ``model.safetensors`` are: task, family, model config,
label schema, the weights' sha256 and the run that trained them. Training and serving rebuild
the network from it (:mod:`visionloop.models.artifact`); the edge runtime only needs the schema,
the family, the input side and the model's name, so this module parses the file with the
standard library, pydantic and the core, and both read it through :func:`read_model_description`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionloop.core.errors import ValidationError
from visionloop.core.schema import LabelSchema
from visionloop.storage.descriptions import read_description

__all__ = [
    "ARTIFACT_VERSION",
    "META_NAME",
    "WEIGHTS_NAME",
    "ModelDescription",
    "model_version",
    "read_model_description",
]

ARTIFACT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
META_NAME = "model.json"


def model_version(run_id: str | None, weights_sha256: str) -> str:
    """How predictions name a model: its training run, or its weights' hash (whatever runtime
    executes it)."""
    return f"run:{run_id}" if run_id else f"sha256:{weights_sha256[:16]}"


@dataclass(frozen=True)
class ModelDescription:
    """``model.json`` as read: ``model`` is the model config as plain JSON (validated into a
    ``ModelConfig`` by the PyTorch side)."""

    folder: Path
    schema: LabelSchema
    family: str
    model: dict[str, Any]
    weights_sha256: str
    run_id: str | None
    metrics: dict[str, Any]
    extra: dict[str, Any]

    @property
    def image_size(self) -> int:
        """The input side the model was trained at (classifier and pose inputs are squares)."""
        size = self.model.get("image_size")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ValidationError(f"{self.folder / META_NAME}: the model config has no valid image_size")
        return size

    @property
    def version(self) -> str:
        return model_version(self.run_id, self.weights_sha256)


def read_model_description(folder: Path) -> ModelDescription:
    """``folder/model.json``, refused (``ValidationError`` naming the file and the reason) when
    missing, of another version or malformed."""
    path = folder / META_NAME
    meta = read_description(
        path, ARTIFACT_VERSION, "model description", f"{folder}: not a visionloop model (no {META_NAME})"
    )
    try:
        model = meta["model"]
        if not isinstance(model, dict):
            raise TypeError("'model' must be an object")
        return ModelDescription(
            folder=folder,
            schema=LabelSchema.model_validate(meta["schema"]),
            family=str(meta["family"]),
            model=dict(model),
            weights_sha256=str(meta["weights_sha256"]),
            run_id=meta.get("run_id"),
            metrics=dict(meta.get("metrics") or {}),
            extra=dict(meta.get("extra") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"{path}: malformed model description: {exc}") from exc
