"""visionloop's own REST API: ``/v1/predict``, the model list, and the registry's state changes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from visionloop.core.labels import Label
from visionloop.registry import PRODUCTION, ModelRegistry
from visionloop.server.auth import TokenGuard
from visionloop.server.hosting import ModelHost, ServedModel
from visionloop.server.images import RequestImage
from visionloop.server.predicting import (
    InferenceSlots,
    decode_images,
    model_json,
    prediction_json,
    read_images,
)
from visionloop.server.settings import ServerSettings

__all__ = ["v1_router"]

API_ACTOR = "api"


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alias: str = Field(max_length=64)
    reason: str | None = Field(default=None, max_length=2000)
    by: str = Field(default=API_ACTOR, min_length=1, max_length=128)


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    reason: str = Field(min_length=1, max_length=2000)
    alias: str = Field(default=PRODUCTION, max_length=64, alias="for")
    reject: bool = False
    by: str = Field(default=API_ACTOR, min_length=1, max_length=128)


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=2000)
    by: str = Field(default=API_ACTOR, min_length=1, max_length=128)


def v1_router(
    host: ModelHost,
    registry: ModelRegistry,
    settings: ServerSettings,
    slots: InferenceSlots,
    guard: TokenGuard,
) -> APIRouter:
    router = APIRouter(prefix="/v1")
    protected = [Depends(guard)]  # the header alone: these change state
    readers = [Depends(guard.reader)]

    @router.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "aliases": host.aliases(),
            "loaded": [served.version.version for served in host.loaded()],
        }

    @router.get("/models", dependencies=readers)
    def models() -> dict[str, Any]:
        loaded = {served.version.version: served.runtime for served in host.loaded()}
        return {
            "default": settings.model,
            "versions": [
                {
                    **version.to_dict(),
                    "loaded": version.version in loaded,
                    "runtime": loaded.get(version.version),
                }
                for version in registry.versions()
            ],
        }

    @router.get("/models/{reference}", dependencies=readers)
    def model(reference: str) -> dict[str, Any]:
        return registry.get(reference).to_dict()

    @router.post("/predict", dependencies=protected)
    async def predict(request: Request) -> dict[str, Any]:
        raw, reference = await read_images(request, settings)

        def answer() -> tuple[ServedModel, str | None, list[RequestImage], list[Label]]:
            images = decode_images(raw, settings)
            served, alias = host.get(reference or settings.model)
            return served, alias, images, slots.predict(served, images)

        served, alias, images, labels = await run_in_threadpool(answer)
        return {
            "model": model_json(served, alias),
            "predictions": [
                prediction_json(image, label) for image, label in zip(images, labels, strict=True)
            ],
        }

    @router.post("/models/{reference}/promote", dependencies=protected)
    def promote(reference: str, body: PromoteBody) -> dict[str, Any]:
        return registry.promote(reference, body.alias, body.by, body.reason).to_dict()

    @router.post("/models/{reference}/approve", dependencies=protected)
    def approve(reference: str, body: ApproveBody) -> dict[str, Any]:
        event = registry.approve(reference, body.by, body.reason, alias=body.alias, approved=not body.reject)
        return event.to_dict()

    @router.post("/aliases/{alias}/rollback", dependencies=protected)
    def rollback(alias: str, body: RollbackBody) -> dict[str, Any]:
        return registry.rollback(alias, body.by, body.reason).to_dict()

    return router
