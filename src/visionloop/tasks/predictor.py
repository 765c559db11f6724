"""What inference callers hold: a :class:`Predictor`, run by PyTorch or by ONNX Runtime.

Both runtimes take raw RGB images of any size and return the same core labels, plus one
embedding row per image from the same forward pass. ``load_predictor`` picks the runtime: with
``auto`` an ONNX export next to the model is used when it was exported from exactly these
weights (and onnxruntime is installed), PyTorch otherwise; the returned note says why. The
export's int8 graph runs instead of its fp32 one when ``export-model --int8`` kept it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol, get_args

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ConfigError, MissingDependencyError, ValidationError
from visionloop.core.labels import Label
from visionloop.core.schema import LabelSchema
from visionloop.models.artifact import ModelArtifact, read_artifact
from visionloop.project import Project
from visionloop.tasks.onnx_files import export_exists, read_export
from visionloop.tasks.onnx_runtime import OnnxModel, SessionSettings
from visionloop.tasks.registry import load_trained_model, require_project_task, resolve_model_folder

__all__ = ["RUNTIMES", "Predictor", "Runtime", "load_predictor", "load_project_predictor"]

logger = logging.getLogger(__name__)

Runtime = Literal["auto", "onnx", "torch"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)


class Predictor(Protocol):
    """A loaded model: labels (and embeddings) for raw RGB images, in their pixel coordinates."""

    @property
    def artifact(self) -> ModelArtifact: ...

    @property
    def schema(self) -> LabelSchema: ...

    @property
    def version(self) -> str:
        """How predictions name the model (the same whichever runtime executes it)."""
        ...

    @property
    def runtime(self) -> str:
        """``torch`` or ``onnx``."""
        ...

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Label]: ...

    def predict_and_embed(
        self, images: Sequence[npt.NDArray[np.uint8]]
    ) -> tuple[list[Label], npt.NDArray[np.float32]]: ...


def load_predictor(
    folder: Path, runtime: str = "auto", session: SessionSettings | None = None
) -> tuple[Predictor, str]:
    """The model in ``folder`` on ``runtime``, with a note saying why ONNX Runtime was not used
    (empty when it was, or when ``torch`` was asked for). ``onnx`` fails instead of falling back.
    ``session``: how ONNX Runtime may use the cores (default: all, busy-waiting)."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    if runtime == "torch":
        return load_trained_model(folder), ""
    artifact = read_artifact(folder)
    if not export_exists(folder):
        note = f"no ONNX export in {folder} (create one with 'visionloop export-model')"
    else:
        try:
            export = read_export(folder, artifact)
        except ValidationError as exc:
            note = f"ignored the ONNX export: {exc}"
            if runtime == "onnx":
                raise ValidationError(f"cannot run with ONNX Runtime: {exc}") from exc
            logger.warning("%s", note)
        else:
            try:
                return OnnxModel.open(artifact, export, session or SessionSettings()), ""
            except MissingDependencyError as exc:
                if runtime == "onnx":
                    raise
                note = str(exc)
    if runtime == "onnx":
        raise ValidationError(f"cannot run with ONNX Runtime: {note}")
    return load_trained_model(folder), note


def load_project_predictor(
    project: Project,
    model: str,
    purpose: str,
    runtime: str = "auto",
    session: SessionSettings | None = None,
) -> tuple[Path, Predictor, str]:
    """Resolve ``model`` (run id, prefix or folder) and load it for ``purpose`` on ``runtime``,
    refusing another task's model."""
    folder = resolve_model_folder(project, model)
    predictor, note = load_predictor(folder, runtime, session)
    require_project_task(project, predictor.schema, folder, purpose)
    return folder, predictor, note
