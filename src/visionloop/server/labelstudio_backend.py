"""The Label Studio ML backend protocol, at the root paths Label Studio calls.

- ``GET /health`` (and ``/``): ``{"status": "UP"}``.
- ``POST /setup``: Label Studio sends the project (``"<id>.<created>"``), its label config and
  the backend's ``extra_params``; the answer is the model version that will predict, after
  checking the config has the controls that model's task needs (422 saying what is missing).
  ``extra_params.model`` picks another alias or version for that project. Label Studio calls
  ``/setup`` before every prediction batch, so the choice survives a restart.
- ``GET /versions``: the registered versions.
- ``POST /predict``: one prediction per task, in order: regions in the project's own control
  tags (:mod:`visionloop.formats.ls_config`, :mod:`visionloop.formats.ls_regions`) with a
  ``score`` per region and per prediction (the mean of its regions'), and ``model_version`` the
  served version's name (``v3``). A task whose image cannot be read or decoded gets an empty
  list, so Label Studio stores nothing for it and a later retrieval tries again; the reasons
  come back under ``errors`` and in the log. When no task could be read the request fails.
- ``POST /webhook`` (token required: it changes state): annotation events and START_TRAINING
  are recorded as ``labelstudio_event`` runs in the catalog (START_TRAINING marked as a training
  request). Nothing trains here: training is a job of its own (``visionloop train``/``loop``).

Every route but health needs the server's token: connect the backend in Label Studio with
Basic auth, any user, the token as password. The hostname and access token Label Studio sends
to ``/setup`` are ignored: images are only read as the server's own settings allow
(:mod:`visionloop.server.ls_media`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from visionloop.core.errors import ValidationError, VisionloopError
from visionloop.core.labels import ClassLabel, Label, ObjectLabels
from visionloop.core.schema import LabelSchema
from visionloop.formats.ls_config import Binding, bind, parse_label_config
from visionloop.formats.ls_regions import RegionWriter
from visionloop.models.artifact import read_artifact
from visionloop.registry import ModelRegistry, ModelVersion
from visionloop.server.auth import TokenGuard
from visionloop.server.hosting import ModelHost, ServedModel
from visionloop.server.images import RequestImage, decode_request_image
from visionloop.server.ls_media import TaskImageReader
from visionloop.server.predicting import InferenceSlots, json_object
from visionloop.server.settings import ServerSettings

__all__ = ["EVENT_KIND", "RECORDED_ACTIONS", "health_answer", "labelstudio_router"]

logger = logging.getLogger(__name__)

#: Catalog run kind of recorded webhook events.
EVENT_KIND = "labelstudio_event"
TRAINING_ACTION = "START_TRAINING"
RECORDED_ACTIONS = frozenset(
    {
        TRAINING_ACTION,
        "ANNOTATION_CREATED",
        "ANNOTATIONS_CREATED",
        "ANNOTATION_UPDATED",
        "ANNOTATIONS_DELETED",
    }
)
#: Projects whose model choice is remembered (least recently set beyond this are forgotten).
MAX_PROJECTS = 1024


class ProjectModels:
    """The model each Label Studio project asked for in its extra params, by project id."""

    def __init__(self) -> None:
        self._choices: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, project: Any) -> str | None:
        with self._lock:
            return self._choices.get(_project_id(project))

    def set(self, project: Any, model: str | None) -> None:
        key = _project_id(project)
        with self._lock:
            self._choices.pop(key, None)
            if model is not None:
                self._choices[key] = model
                while len(self._choices) > MAX_PROJECTS:
                    self._choices.popitem(last=False)


@dataclass
class _Task:
    index: int
    id: Any
    image: RequestImage | None = None
    error: str | None = None


def health_answer(settings: ServerSettings) -> dict[str, Any]:
    """What Label Studio expects from ``GET /health`` (and ``GET /``, which the dashboard shares)."""
    return {"status": "UP", "model_class": "visionloop", "model": settings.model}


def labelstudio_router(
    host: ModelHost,
    registry: ModelRegistry,
    settings: ServerSettings,
    slots: InferenceSlots,
    guard: TokenGuard,
) -> APIRouter:
    router = APIRouter(tags=["Label Studio ML backend"])
    protected = [Depends(guard)]
    choices = ProjectModels()
    reader = TaskImageReader(settings)

    @router.get("/health")
    def health() -> dict[str, Any]:
        return health_answer(settings)

    @router.post("/setup", dependencies=protected)
    async def setup(request: Request, background: BackgroundTasks) -> dict[str, Any]:
        body = await json_object(request)
        project = body.get("project")
        extra = body.get("extra_params") or {}
        if not isinstance(extra, dict):
            raise ValidationError("extra_params must be an object")
        wanted = extra.get("model")
        if wanted is not None and not isinstance(wanted, str | int):
            raise ValidationError("extra_params.model must be an alias or a version")
        reference = str(wanted) if wanted is not None else None
        config = body.get("schema") or body.get("label_config")

        def check() -> ModelVersion:
            version = registry.get(reference or settings.model)
            schema = read_artifact(registry.folder(version)).schema
            if config is not None:
                _bind(config, schema)
            return version

        version = await run_in_threadpool(check)
        if project is not None:
            choices.set(project, reference)
        background.add_task(_warm, host, reference or settings.model)
        return {"model_version": version.name}

    @router.get("/versions", dependencies=[Depends(guard.reader)])
    def versions() -> dict[str, Any]:
        return {"versions": [version.name for version in registry.versions()]}

    @router.post("/predict", dependencies=protected)
    async def predict(request: Request) -> dict[str, Any]:
        body = await json_object(request)
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise ValidationError('the body needs "tasks": a non-empty list of Label Studio tasks')
        config = body.get("label_config")
        if not isinstance(config, str):
            raise ValidationError('the body needs "label_config": the project\'s labeling config')
        reference = choices.get(body.get("project")) or settings.model

        def answer() -> tuple[ServedModel, list[Any], list[dict[str, Any]]]:
            served, _ = host.get(reference)
            binding = _bind(config, served.predictor.schema)
            read = [_read_task(reader, binding, task, index, settings) for index, task in enumerate(tasks)]
            results: list[Any] = [[] for _ in tasks]
            good = [task for task in read if task.image is not None]
            writer = RegionWriter(binding.targets)
            for start in range(0, len(good), settings.max_images):
                chunk = good[start : start + settings.max_images]
                labels = slots.predict(served, [task.image for task in chunk if task.image is not None])
                for task, label in zip(chunk, labels, strict=True):
                    assert task.image is not None  # noqa: S101 - filtered above
                    results[task.index] = _prediction(writer, served, task.image, label)
            errors = [{"task": task.id, "detail": task.error} for task in read if task.error is not None]
            if errors and not good:
                reasons = "; ".join(f"task {error['task']}: {error['detail']}" for error in errors[:5])
                raise ValidationError(f"no task image could be read: {reasons}")
            return served, results, errors

        served, results, errors = await run_in_threadpool(answer)
        for error in errors:
            logger.warning("Label Studio task %s not predicted: %s", error["task"], error["detail"])
        answer_body: dict[str, Any] = {"results": results, "model_version": served.version.name}
        if errors:
            answer_body["errors"] = errors
        return answer_body

    @router.post("/webhook", dependencies=protected)
    async def webhook(request: Request) -> JSONResponse:
        body = await json_object(request)
        action = body.get("action")
        if not isinstance(action, str) or action not in RECORDED_ACTIONS:
            return JSONResponse({"status": "Unknown event"}, status_code=status.HTTP_200_OK)
        project = body.get("project")
        project_id = project.get("id") if isinstance(project, dict) else project
        config = {
            "action": action,
            "labelstudio_project": _plain(project_id),
            "model": choices.get(project_id) or settings.model,
        }
        inputs: dict[str, Any] = {
            key: _ids(body.get(key)) for key in ("task", "tasks", "annotation", "annotations") if key in body
        }
        requested = action == TRAINING_ACTION

        def record() -> str:
            catalog = registry.catalog
            run_id = catalog.start_run(EVENT_KIND, config, inputs)
            catalog.finish_run(run_id, {"training_requested": requested})
            return run_id

        run_id = await run_in_threadpool(record)
        if requested:
            logger.info("Label Studio project %s asked for training (recorded as run %s)", project_id, run_id)
        return JSONResponse(
            {"status": "ok", "run_id": run_id, "training_requested": requested},
            status_code=status.HTTP_201_CREATED,
        )

    return router


# -- helpers ------------------------------------------------------------------------------------
def _bind(config: Any, schema: LabelSchema) -> Binding:
    if not isinstance(config, str):
        raise ValidationError("the label config must be a string of XML")
    return bind(parse_label_config(config), schema)


def _read_task(
    reader: TaskImageReader, binding: Binding, task: Any, index: int, settings: ServerSettings
) -> _Task:
    task_id = task.get("id") if isinstance(task, dict) else None
    read = _Task(index, task_id)
    try:
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict):
            raise ValidationError("the task has no 'data' object")
        url = data.get(binding.image_key)
        if not isinstance(url, str):
            raise ValidationError(f"the task has no image under data.{binding.image_key}")
        name = f"task {task_id}" if task_id is not None else f"task #{index}"
        read.image = decode_request_image(reader.read(url, task_id), name, settings.max_pixels)
    except VisionloopError as exc:
        read.error = str(exc)
    return read


def _prediction(
    writer: RegionWriter, served: ServedModel, image: RequestImage, label: Label
) -> dict[str, Any]:
    height, width = image.size
    regions = writer.regions(label, width, height, scores=True)
    prediction: dict[str, Any] = {"result": regions, "model_version": served.version.name}
    score = _score(label, regions)
    if score is not None:
        prediction["score"] = score
    return prediction


def _score(label: Label, regions: Sequence[dict[str, Any]]) -> float | None:
    """The class's score, or the mean score of the objects written (once per object)."""
    if isinstance(label, ClassLabel):
        return label.score if regions else None
    if not isinstance(label, ObjectLabels):
        return None
    scores = [r["score"] for r in regions if "score" in r and r["type"] != "keypointlabels"]
    return float(sum(scores) / len(scores)) if scores else None


def _warm(host: ModelHost, reference: str) -> None:
    """Load the model now, so the first prediction does not pay for it."""
    try:
        host.get(reference)
    except Exception:  # a failed load is reported by the prediction that needs it
        logger.warning("could not load model %s ahead of predictions", reference, exc_info=True)


def _project_id(project: Any) -> str:
    """``"12.1700000000"`` (what /setup and /predict send) and ``12`` (webhooks) -> ``"12"``."""
    return str(project).split(".", 1)[0]


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


def _ids(value: Any) -> Any:
    if isinstance(value, dict):
        return _plain(value.get("id"))
    if isinstance(value, list):
        return [_ids(item) for item in value[:1000]]
    return _plain(value)
