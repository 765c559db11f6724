"""The training configuration: a YAML file, the project's ``train:`` section and ``key=value``
overrides on the command line, merged in that order and validated once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from visionloop.core.errors import ConfigError
from visionloop.models.config import ModelConfig
from visionloop.project.config import read_settings_file, validation_problems

__all__ = [
    "AugmentConfig",
    "CheckpointConfig",
    "DataConfig",
    "EarlyStoppingConfig",
    "OptimConfig",
    "TrackingConfig",
    "TrainConfig",
    "apply_overrides",
    "load_train_config",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    """``snapshot`` freezes the data (a new one is taken when absent). Items in ``val_split``
    validate; when there are none, ``val_fraction`` of the training items is held out (by a
    hash of the item, so the hold-out is stable across runs). ``limit`` caps items per split
    for quick experiments."""

    snapshot: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    limit: int | None = Field(default=None, ge=1)


class OptimConfig(_Section):
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = "sgd"
    lr: float = Field(default=0.01, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=1e-4, ge=0)
    batch_size: int = Field(default=32, ge=1, le=4096)
    epochs: int = Field(default=10, ge=1, le=10_000)
    max_steps: int | None = Field(default=None, ge=1)
    scheduler: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = Field(default=0, ge=0)
    grad_clip: float | None = Field(default=10.0, gt=0)


class AugmentConfig(_Section):
    """``default``: flips (keypoint-aware) and brightness/contrast jitter, plus a random crop
    for classification; ``albumentations``: an affine + photometric + noise/blur pipeline (as
    seed 001 offers), geometric steps applied to boxes, masks and keypoints alike."""

    pipeline: Literal["default", "albumentations", "none"] = "default"
    hflip: bool = True
    color: float = Field(default=0.2, ge=0, le=1)
    crop_scale: float = Field(default=0.8, gt=0, le=1)


class EarlyStoppingConfig(_Section):
    """Stop when the validation headline metric has not improved by ``min_delta`` for
    ``patience`` evaluations (``null`` disables it)."""

    patience: int | None = Field(default=3, ge=1)
    min_delta: float = Field(default=0.0, ge=0)


class CheckpointConfig(_Section):
    every_steps: int = Field(default=200, ge=1)


class TrackingConfig(_Section):
    """Log parameters and per-epoch metrics to MLflow as well as the catalog when set."""

    mlflow_uri: str | None = None
    experiment: str = "visionloop"


class TrainConfig(_Section):
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    seed: int = 0
    deterministic: bool = False
    workers: int = Field(default=0, ge=0, le=64)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(default=None, ge=1, le=256)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set ``section.key=value`` entries (values parsed as YAML scalars) into a nested dict."""
    merged = _deep_copy(data)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {override!r} is not key=value (e.g. optim.lr=0.01)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {override!r}: cannot parse the value: {exc}") from exc
        node = merged
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {override!r}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return merged


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {key: _deep_copy(value) if isinstance(value, dict) else value for key, value in data.items()}


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = _deep_copy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_train_config(
    project_section: dict[str, Any] | None = None,
    config_file: Path | None = None,
    overrides: list[str] | None = None,
    settings: dict[str, Any] | None = None,
) -> TrainConfig:
    """Merge project defaults, a config file, nested ``settings`` (a pipeline's parameters) and
    overrides, in that order; errors name the offending key."""
    data: dict[str, Any] = _deep_copy(project_section or {})
    source = "the project's train section"
    if config_file is not None:
        source = str(config_file)
        data = _merge(data, read_settings_file(config_file, allow_empty=True))
    if settings:
        data = _merge(data, settings)
        source += " with pipeline settings"
    if overrides:
        data = apply_overrides(data, overrides)
        source += " with overrides" if config_file else " and overrides"
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"training config ({source}): {validation_problems(exc)}") from exc
