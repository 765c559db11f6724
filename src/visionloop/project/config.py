"""``visionloop.yaml``: the validated configuration of one project."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from visionloop.core.errors import ConfigError
from visionloop.core.media import Split
from visionloop.core.schema import LabelSchema
from visionloop.imaging.probe import DEFAULT_FORMATS, DEFAULT_MAX_PIXELS

CONFIG_NAME = "visionloop.yaml"
CONFIG_VERSION = 1


class S3Options(BaseModel):
    """S3-compatible storage settings. Credentials come from the usual AWS environment variables
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``) unless given here."""

    model_config = ConfigDict(extra="forbid")

    endpoint_url: str | None = None
    region: str | None = None
    key: str | None = None
    secret: str | None = None
    anon: bool = False

    def fsspec_options(self) -> dict[str, Any]:
        return {key: value for key, value in self.model_dump().items() if value not in (None, False)}


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_pixels: int = Field(default=DEFAULT_MAX_PIXELS, gt=0)
    max_file_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    formats: list[str] = Field(default_factory=lambda: list(DEFAULT_FORMATS))
    split_ratios: dict[Split, float] = Field(
        default_factory=lambda: {Split.TRAIN: 0.8, Split.VAL: 0.1, Split.TEST: 0.1}
    )
    workers: int = Field(default_factory=lambda: min(8, os.cpu_count() or 1), ge=1, le=64)
    batch_size: int = Field(default=256, ge=1, le=10_000)

    @field_validator("split_ratios")
    @classmethod
    def _ratios(cls, value: dict[Split, float]) -> dict[Split, float]:
        if any(ratio < 0 for ratio in value.values()) or sum(value.values()) <= 0:
            raise ValueError("split ratios must be non-negative and sum to more than 0")
        return value


class GateConfig(BaseModel):
    """Thresholds a model must meet before it may be promoted; unset ones are not checked.

    Fractions lie within [0, 1]; ``max_robustness_drop`` is the largest relative fall of the
    headline metric allowed under any corruption of the robustness suite.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    min_macro_f1: float | None = Field(default=None, ge=0.0, le=1.0)
    max_calibration_error: float | None = Field(default=None, ge=0.0, le=1.0)
    min_map: float | None = Field(default=None, ge=0.0, le=1.0)
    min_map50: float | None = Field(default=None, ge=0.0, le=1.0)
    min_mask_map: float | None = Field(default=None, ge=0.0, le=1.0)
    min_oks_ap: float | None = Field(default=None, ge=0.0, le=1.0)
    max_pixel_error: float | None = Field(default=None, ge=0.0)
    max_robustness_drop: float | None = Field(default=None, ge=0.0)


class RegistrySettings(BaseModel):
    """``approval_required``: aliases that take only an approved version; ``separate_approver``:
    the approver must not be who registered the version. With ``mlflow_uri`` set,
    every registry change is mirrored to MLflow's registered model ``mlflow_model`` (default: the
    project's name)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approval_required: list[str] = Field(default_factory=lambda: ["production"])
    separate_approver: bool = True
    mlflow_uri: str | None = None
    mlflow_model: str | None = None
    mlflow_experiment: str = "visionloop"


class LabelStudioSettings(BaseModel):
    """Where ``visionloop labelstudio`` finds Label Studio. The API token comes only from the
    environment (``LABEL_STUDIO_API_KEY``), never from this file; ``url`` falls back to
    ``LABEL_STUDIO_URL``. ``local_files_root`` is Label Studio's LOCAL_FILES_DOCUMENT_ROOT as this
    machine sees it: local images under it are served through Label Studio's local-files storage;
    S3 images travel as presigned URLs valid ``presign_expiry_s`` seconds (S3 allows 7 days)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    project_title: str | None = None
    chunk_size: int = Field(default=500, ge=1, le=10_000)
    presign_expiry_s: int = Field(default=7 * 24 * 3600, ge=60, le=7 * 24 * 3600)
    local_files_root: str | None = None


class RetrainPolicy(BaseModel):
    """When ``visionloop labelstudio sync`` and ``watch`` retrain (see ``visionloop.pipelines.retrain``).

    ``after_labels``: retrain once this many human labels arrived since the last training (None:
    never for that reason). ``every_s``: retrain when this long has passed since the last training and
    there is at least one new label. ``on_request``: a recorded training request retrains whatever the
    counts. ``debounce_s``: wait until no human label arrived for this long."""

    model_config = ConfigDict(extra="forbid")

    after_labels: int | None = Field(default=100, ge=1)
    every_s: float | None = Field(default=None, gt=0)
    on_request: bool = True
    debounce_s: float = Field(default=0.0, ge=0)


class TriggerConfig(BaseModel):
    """One ``visionloop watch`` trigger.

    ``event``: ``objects`` (new or changed files under ``source``, a folder or s3:// prefix,
    matching ``pattern``; with ``queue``, an SQS queue URL, S3 event notifications are read from
    it instead of listing the bucket), ``schedule`` (every ``every_s`` seconds) or
    ``annotations`` (a ``labelstudio sync`` pass). ``pipeline`` runs with ``params``, whose string
    values may name the event's ``{uri}``, ``{name}``, ``{stem}`` and ``{folder}``. Local files
    trigger once unchanged for ``settle_s`` seconds (S3 objects appear whole)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    event: Literal["objects", "schedule", "annotations"]
    source: str | None = None
    pattern: str = "*"
    queue: str | None = None
    every_s: float | None = Field(default=None, gt=0)
    settle_s: float = Field(default=5.0, ge=0)
    pipeline: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> TriggerConfig:
        if self.event == "objects" and not self.source:
            raise ValueError(f"trigger {self.name}: an objects trigger needs a source")
        if self.event == "schedule" and self.every_s is None:
            raise ValueError(f"trigger {self.name}: a schedule trigger needs every_s")
        if self.event != "annotations" and not self.pipeline:
            raise ValueError(f"trigger {self.name}: name the pipeline it runs")
        return self


class ExecutorSettings(BaseModel):
    """Where heavy work (pre-labeling, training, tuning, pipeline steps) runs: ``local`` (this
    machine; needs no Ray) or ``ray``. With ``ray``, ``address`` names the cluster (``auto``,
    ``ray://head:10001``); unset, ``$RAY_ADDRESS``, else a Ray instance started for the command.
    ``workers``: pre-labeling actors and data-parallel training workers, each given
    ``cpus_per_worker`` CPUs and ``gpus_per_worker`` GPUs (GPU training uses NCCL, CPU gloo).
    ``storage``: where Ray Tune and Ray Train keep their own state, a folder every node sees or
    ``s3://bucket/prefix`` (default ``<project>/runs/ray``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "ray"] = "local"
    address: str | None = None
    workers: int = Field(default=2, ge=1, le=1024)
    cpus_per_worker: float = Field(default=1.0, gt=0)
    gpus_per_worker: float = Field(default=0.0, ge=0)
    storage: str | None = None


class ProjectConfig(BaseModel):
    """Everything a command needs to know about a project.

    ``catalog`` is a SQLAlchemy URL; a relative SQLite path is relative to the project folder.
    ``storage`` is where visionloop writes blobs it owns (copies, exports, models): a folder
    (relative to the project) or ``s3://bucket/prefix``.
    """

    model_config = ConfigDict(extra="forbid")

    version: int = CONFIG_VERSION
    name: str
    labels: LabelSchema
    catalog: str = "sqlite:///catalog.db"
    storage: str = "storage"
    s3: S3Options = Field(default_factory=S3Options)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    # Defaults for 'visionloop train' (same keys as a --config file; validated when training).
    train: dict[str, Any] = Field(default_factory=dict)
    gate: GateConfig = Field(default_factory=GateConfig)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    labelstudio: LabelStudioSettings = Field(default_factory=LabelStudioSettings)
    retrain: RetrainPolicy = Field(default_factory=RetrainPolicy)
    triggers: list[TriggerConfig] = Field(default_factory=list)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    # Default parameters per named pipeline (``visionloop pipeline run NAME`` overrides them).
    pipelines: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != CONFIG_VERSION:
            raise ValueError(
                f"unsupported config version {value}; this visionloop reads version {CONFIG_VERSION}"
            )
        return value


def validation_problems(exc: ValidationError) -> str:
    """A pydantic error as ``section.key: message; ...`` for one-line error messages."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}"
        for error in exc.errors()
    )


def read_settings_file(path: Path, *, allow_empty: bool = False) -> dict[str, Any]:
    """The mapping of settings in a YAML file (``{}`` for an empty one when allowed); errors name
    the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    except RecursionError as exc:  # PyYAML composes nested collections recursively
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from exc
    if data is None and allow_empty:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return data


def load_config(path: Path) -> ProjectConfig:
    """Read and validate a ``visionloop.yaml``; errors name the file and the offending field."""
    data = read_settings_file(path)
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from exc


def dump_config(config: ProjectConfig) -> str:
    data = config.model_dump(mode="json", exclude_defaults=False)
    data["labels"] = {key: value for key, value in data["labels"].items() if value}
    if not config.s3.fsspec_options():
        data.pop("s3")
    if not config.train:
        data.pop("train")
    if not config.pipelines:
        data.pop("pipelines")
    if config.retrain == RetrainPolicy():
        data.pop("retrain")
    if config.labelstudio == LabelStudioSettings():
        data.pop("labelstudio")
    if not config.triggers:
        data.pop("triggers")
    if config.executor == ExecutorSettings():
        data.pop("executor")
    data["gate"] = {key: value for key, value in data["gate"].items() if value is not None}
    if not data["gate"]:
        data.pop("gate")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
