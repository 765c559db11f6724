"""The named pipelines (``visionloop pipeline run NAME``), each defined in its own module.

Modules are imported only when their pipeline is asked for, so listing pipelines or resuming
one does not import every step's dependencies.
"""

from __future__ import annotations

import importlib

from visionloop.core.errors import ConfigError
from visionloop.pipelines.runner import Pipeline

__all__ = ["PIPELINE_MODULES", "get_pipeline", "pipeline_names"]

# name -> module defining ``PIPELINE``
PIPELINE_MODULES: dict[str, str] = {
    "model-assisted-labeling": "visionloop.pipelines.assisted",
    "build": "visionloop.pipelines.build",
    "deploy": "visionloop.pipelines.deploy",
    "dlc-train": "visionloop.pipelines.dlc_train",
}


def pipeline_names() -> list[str]:
    return list(PIPELINE_MODULES)


def get_pipeline(name: str) -> Pipeline:
    module_name = PIPELINE_MODULES.get(name)
    if module_name is None:
        raise ConfigError(f"unknown pipeline {name!r}; choose from {', '.join(PIPELINE_MODULES)}")
    pipeline = importlib.import_module(module_name).PIPELINE
    if not isinstance(pipeline, Pipeline):
        raise TypeError(f"{module_name}.PIPELINE is not a Pipeline")
    return pipeline
