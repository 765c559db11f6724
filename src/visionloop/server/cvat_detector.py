"""``POST /v1/cvat/detector``: the server as a CVAT serverless detector function.

CVAT sends a nuclio function body, ``{"image": <base64>, "threshold": 0.5}``, and reads back a
list of shapes (:mod:`visionloop.formats.cvat_serverless`). The model is the server's default
alias or version, or the one named by ``?model=`` or a ``"model"`` key. It needs the server's
token, like every route but health: point a CVAT nuclio function (or any HTTP proxy CVAT can
call) at it with ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from visionloop.core.errors import ValidationError
from visionloop.formats.cvat_serverless import detector_shapes
from visionloop.formats.validate import finite_numbers
from visionloop.server.auth import TokenGuard
from visionloop.server.hosting import ModelHost
from visionloop.server.images import decode_base64, decode_request_image
from visionloop.server.predicting import InferenceSlots, json_object
from visionloop.server.settings import ServerSettings

__all__ = ["DEFAULT_THRESHOLD", "cvat_router"]

#: What CVAT's own detector functions use when a request gives none.
DEFAULT_THRESHOLD = 0.5


def cvat_router(
    host: ModelHost, settings: ServerSettings, slots: InferenceSlots, guard: TokenGuard
) -> APIRouter:
    router = APIRouter(prefix="/v1/cvat", tags=["CVAT"], dependencies=[Depends(guard)])

    @router.post("/detector")
    async def detector(request: Request) -> list[dict[str, Any]]:
        body = await json_object(request)
        if not isinstance(body.get("image"), str):
            raise ValidationError('the body needs "image": the image as a base64 string')
        threshold = _threshold(body.get("threshold"))
        reference = request.query_params.get("model") or body.get("model") or settings.model
        if not isinstance(reference, str | int):
            raise ValidationError("model must be an alias or a version")
        data = decode_base64(body["image"], "image")

        def answer() -> list[dict[str, Any]]:
            image = decode_request_image(data, "image", settings.max_pixels)
            served, _ = host.get(str(reference))
            [label] = slots.predict(served, [image])
            return detector_shapes(label, threshold, served.predictor.schema.keypoints)

        return await run_in_threadpool(answer)

    return router


def _threshold(value: Any) -> float:
    if value is None:
        return DEFAULT_THRESHOLD
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError as exc:
            raise ValidationError(f"threshold must be a number within [0, 1], got {value!r}") from exc
    if finite_numbers([value]) is None or not 0.0 <= float(value) <= 1.0:
        raise ValidationError(f"threshold must be a number within [0, 1], got {value!r}")
    return float(value)
