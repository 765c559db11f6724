"""The task registry: one :class:`TaskSpec` per :class:`TaskType`, looked up by name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from torch import nn

from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.models.artifact import ModelArtifact, load_artifact_weights, read_artifact
from visionloop.models.embeddings import capture_embeddings
from visionloop.project import Project
from visionloop.tasks.classification import ClassifierFamily, classification_uncertainty
from visionloop.tasks.detection import RCNNFamily, object_uncertainty
from visionloop.tasks.metrics import (
    classification_task_metrics,
    detection_task_metrics,
    keypoint_task_metrics,
    segmentation_task_metrics,
)
from visionloop.tasks.pose import HeatmapFamily, keypoint_uncertainty
from visionloop.tasks.spec import ModelFamily, TaskSpec

__all__ = [
    "TASKS",
    "TrainedModel",
    "get_task",
    "load_project_model",
    "load_trained_model",
    "require_project_task",
    "resolve_model_folder",
]

TASKS: dict[TaskType, TaskSpec] = {
    TaskType.CLASSIFICATION: TaskSpec(
        task=TaskType.CLASSIFICATION,
        families={"classifier": ClassifierFamily()},
        default_family="classifier",
        headline_metric="accuracy",
        metrics=classification_task_metrics,
        uncertainty=classification_uncertainty,
    ),
    TaskType.DETECTION: TaskSpec(
        task=TaskType.DETECTION,
        families={"faster_rcnn": RCNNFamily("faster_rcnn")},
        default_family="faster_rcnn",
        headline_metric="map",
        metrics=detection_task_metrics,
        uncertainty=object_uncertainty,
    ),
    TaskType.SEGMENTATION: TaskSpec(
        task=TaskType.SEGMENTATION,
        families={"mask_rcnn": RCNNFamily("mask_rcnn")},
        default_family="mask_rcnn",
        headline_metric="mask_map",
        metrics=segmentation_task_metrics,
        uncertainty=object_uncertainty,
    ),
    TaskType.KEYPOINTS: TaskSpec(
        task=TaskType.KEYPOINTS,
        families={"keypoint_rcnn": RCNNFamily("keypoint_rcnn"), "heatmap": HeatmapFamily()},
        default_family="keypoint_rcnn",
        headline_metric="oks_ap",
        metrics=keypoint_task_metrics,
        uncertainty=keypoint_uncertainty,
    ),
}


def get_task(task: TaskType | str) -> TaskSpec:
    try:
        return TASKS[TaskType(task)]
    except ValueError as exc:
        raise ValidationError(f"unknown task {task!r}; choose from {', '.join(TASKS)}") from exc


@dataclass(frozen=True)
class TrainedModel:
    """A model ready for inference, with what it needs to turn images into labels."""

    network: nn.Module
    spec: TaskSpec
    family: ModelFamily
    artifact: ModelArtifact

    @property
    def schema(self) -> LabelSchema:
        return self.artifact.schema

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Label]:
        return self.family.predict(self.network, images, self.artifact.schema, self.artifact.model)

    def predict_and_embed(
        self, images: Sequence[npt.NDArray[np.uint8]]
    ) -> tuple[list[Label], npt.NDArray[np.float32]]:
        """Labels and one embedding row per image, from the same forward pass."""
        with capture_embeddings(self.family.embedding_source(self.network)) as captured:
            labels = self.predict(images)
        embeddings = np.concatenate(captured) if captured else np.zeros((len(images), 0), np.float32)
        if len(embeddings) != len(images):
            raise RuntimeError(f"captured {len(embeddings)} embeddings for {len(images)} images")
        return labels, embeddings

    @property
    def version(self) -> str:
        """How predictions name this model: its training run, or its weights' hash."""
        return self.artifact.version

    @property
    def runtime(self) -> str:
        """What executes the network: PyTorch, eagerly."""
        return "torch"


def squashed_input_size(artifact: ModelArtifact) -> tuple[int, int] | None:
    """The ``(height, width)`` the artifact's model squashes every image to, if it does."""
    return get_task(artifact.schema.task).family(artifact.family).squashed_size(artifact.model)


def load_trained_model(folder: Path) -> TrainedModel:
    """Rebuild a saved model (no pretrained download: the saved weights replace them)."""
    artifact = read_artifact(folder)
    spec = get_task(artifact.schema.task)
    family = spec.family(artifact.family)
    config = artifact.model.model_copy(update={"weights": "none"})
    network, _ = family.build(artifact.schema, config)
    state = load_artifact_weights(artifact)
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        raise ValidationError(f"{artifact.weights_path}: weights do not fit the model: {exc}") from exc
    network.eval()
    return TrainedModel(network=network, spec=spec, family=family, artifact=artifact)


def resolve_model_folder(project: Project, model: str) -> Path:
    """A model named by training run id (or its prefix) or by its folder."""
    candidate = Path(model).expanduser()
    if (candidate / "model.json").is_file():
        return candidate
    runs = project.root / "runs"
    if runs.is_dir() and model and all(c in "0123456789abcdef" for c in model):
        matches = [path for path in runs.iterdir() if path.name.startswith(model)]
        if len(matches) == 1 and (matches[0] / "model" / "model.json").is_file():
            return matches[0] / "model"
        if len(matches) > 1:
            raise ValidationError(f"run id prefix {model!r} is ambiguous")
    raise ValidationError(f"{model}: neither a model folder nor the id of a finished training run")


def load_project_model(project: Project, model: str, purpose: str) -> tuple[Path, TrainedModel]:
    """Resolve and load ``model`` for ``purpose`` (e.g. "evaluate"), refusing another task's."""
    folder = resolve_model_folder(project, model)
    trained = load_trained_model(folder)
    require_project_task(project, trained.schema, folder, purpose)
    return folder, trained


def require_project_task(project: Project, schema: LabelSchema, folder: Path, purpose: str) -> None:
    """Refuse a model (described by ``schema``, in ``folder``) made for another task."""
    if schema.task is not project.config.labels.task:
        raise ValidationError(
            f"{folder}: a {schema.task} model cannot {purpose} a {project.config.labels.task} project"
        )
