"""Turning a request's images into predictions with a served model, in core JSON."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label
from visionloop.server.hosting import ServedModel
from visionloop.server.images import RequestImage, decode_base64, decode_request_image
from visionloop.server.metrics import ServerMetrics
from visionloop.server.settings import ServerSettings

__all__ = ["InferenceSlots", "decode_images", "json_object", "model_json", "prediction_json", "read_images"]


class InferenceSlots:
    """At most ``slots`` forward passes at once (more only fight over the cores); every route
    predicts through here, so the predicted-images metric is counted in one place."""

    def __init__(self, slots: int, metrics: ServerMetrics) -> None:
        self._slots = threading.BoundedSemaphore(max(1, slots))
        self._metrics = metrics

    def predict(self, served: ServedModel, images: Sequence[RequestImage]) -> list[Label]:
        with self._slots:
            labels = served.predictor.predict([image.pixels for image in images])
        self._metrics.images.labels(served.version.name, served.runtime).inc(len(images))
        return labels


EncodedImages = list[tuple[str, bytes]]


async def read_images(request: Request, settings: ServerSettings) -> tuple[EncodedImages, str | None]:
    """The (name, encoded bytes) of a predict request's images and the model it names, if any;
    decoding is left to :func:`decode_images`, off the event loop.

    Accepted bodies: ``multipart/form-data`` with one or more files (any field name) and an
    optional ``model`` field; JSON ``{"images": [base64 | {"base64", "name"}], "model": ...}``;
    or one raw image (``Content-Type: image/...``).
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    model = request.query_params.get("model")
    raw: list[tuple[str, bytes]] = []
    if content_type == "multipart/form-data":
        form = await request.form(max_files=settings.max_images, max_fields=16)
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                raw.append((value.filename or f"image-{len(raw)}", await value.read()))
            elif key == "model":
                model = model or value
    elif content_type == "application/json":
        document = await json_object(request)
        model = model or _optional_string(document.get("model"), "model")
        entries = document.get("images")
        if not isinstance(entries, list):
            raise ValidationError(
                'a JSON body needs "images": a list of base64 strings or {"base64", "name"}'
            )
        for index, entry in enumerate(entries[: settings.max_images + 1]):
            name, text = _base64_entry(entry, index)
            raw.append((name, decode_base64(text, name)))
    elif content_type.startswith("image/"):
        raw.append(("image", await request.body()))
    else:
        raise ValidationError(
            f"unsupported content type {content_type or 'none'!r}: send multipart/form-data, JSON or an image"
        )
    if not raw:
        raise ValidationError("no images in the request")
    if len(raw) > settings.max_images:
        raise ValidationError(f"at most {settings.max_images} images per request")
    return raw, model


def decode_images(raw: Sequence[tuple[str, bytes]], settings: ServerSettings) -> list[RequestImage]:
    return [decode_request_image(data, name, settings.max_pixels) for name, data in raw]


def model_json(served: ServedModel, alias: str | None) -> dict[str, Any]:
    version = served.version
    return {
        "version": version.version,
        "name": version.name,
        "alias": alias,
        "task": version.task,
        "family": version.family,
        "runtime": served.runtime,
        "weights_sha256": version.weights_sha256,
    }


def prediction_json(image: RequestImage, label: Label) -> dict[str, Any]:
    height, width = image.size
    return {"image": image.name, "width": width, "height": height, "label": label.to_dict()}


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object (422 otherwise)."""
    try:
        document = await request.json()
    except ValueError as exc:
        raise ValidationError(f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # the standard library's decoder recurses per nesting level
        raise ValidationError("the body is not valid JSON: nested too deeply") from exc
    if not isinstance(document, dict):
        raise ValidationError("the JSON body must be an object")
    return document


def _base64_entry(entry: Any, index: int) -> tuple[str, str]:
    if isinstance(entry, str):
        return f"image-{index}", entry
    if isinstance(entry, dict) and isinstance(entry.get("base64"), str):
        name = entry.get("name")
        return (str(name)[:200] if name else f"image-{index}"), entry["base64"]
    raise ValidationError(f'images[{index}]: expected a base64 string or {{"base64": ..., "name": ...}}')


def _optional_string(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValidationError(f"{what} must be a string")
