"""An ONNX export on disk: ``model.onnx`` next to the model's weights, described by ``onnx.json``.

The description records what the graph was exported from (the weights' sha256, family, input
side), the graph's own sha256, its inputs and outputs, and the parity check it passed. An export
is only usable while all of that still matches the model folder: retrained weights, a changed
input size or a replaced graph make it stale, and :func:`read_export` says which. Nothing here
imports PyTorch: the edge runtime checks exports with the same code.

Version 2 adds, all optional so version 1 descriptions still read: ``images_per_run`` (1 for
graphs that take one image per run, the detectors), the parity check's task-metric figures, and
``int8``, the trial of an int8 graph (``model.int8.onnx``) with the decision and the figures it
was taken on; runtimes use the int8 graph only when it was kept.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from visionloop.core.errors import ValidationError
from visionloop.storage import atomic_write_local
from visionloop.storage.descriptions import read_description, sha256_file

__all__ = [
    "EMBEDDING_OUTPUT",
    "INPUT_NAME",
    "INT8_NAME",
    "ONNX_META_NAME",
    "ONNX_NAME",
    "ExportedModel",
    "Int8Trial",
    "OnnxExport",
    "OnnxParity",
    "export_exists",
    "read_export",
    "write_export",
]

ONNX_NAME = "model.onnx"
ONNX_META_NAME = "onnx.json"
INT8_NAME = "model.int8.onnx"
EXPORT_VERSION = 2
_OLDER_VERSIONS = (1,)  # read as well: every field added since has a default
INPUT_NAME = "images"
EMBEDDING_OUTPUT = "embedding"


class ExportedModel(Protocol):
    """What an export is checked against: a ``ModelArtifact`` or, without PyTorch, a
    ``ModelDescription``."""

    @property
    def weights_sha256(self) -> str: ...

    @property
    def family(self) -> str: ...

    @property
    def image_size(self) -> int: ...


@dataclass(frozen=True)
class OnnxParity:
    """ONNX Runtime against PyTorch on the same preprocessed images.

    ``agreement``: share of images whose decisions match (the top class; for heat maps, every
    part's peak position; for detectors, the same objects and classes with boxes within a pixel,
    for information only). ``max_abs_diff``: per output, the largest absolute difference, next to
    ``max_abs_reference``, the largest absolute PyTorch value (the scale it is judged against).
    Detectors are judged by the task's metrics instead of their raw outputs (see
    :mod:`visionloop.tasks.agreement`): ``metrics`` is the ONNX Runtime labels' score against
    PyTorch's taken as the truth, ``points_lost`` its distance below PyTorch's own score, at
    most ``max_points_lost`` each.
    """

    images: int
    agreement: float
    max_abs_diff: dict[str, float]
    max_abs_reference: dict[str, float]
    min_agreement: float
    tolerance: float
    passed: bool
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    points_lost: dict[str, float] = field(default_factory=dict)
    max_points_lost: float | None = None


@dataclass(frozen=True)
class Int8Trial:
    """An int8 graph tried against the fp32 one on the same images and session settings.

    ``kept`` when it is at least ``min_speedup`` times faster and loses at most ``max_loss``
    points; ``reason`` says why either way. Speeds are images per second of the graph alone
    (preprocessed inputs, best of interleaved rounds). ``calibration_source``: whether the
    activation ranges came from separate images or, lacking those, the parity images.
    ``loss_basis``: ``labels`` when the points are accuracy against labelled items (``scores``
    holds both graphs' task metrics against the truth), ``torch`` when they are agreement with
    PyTorch's predictions lost (as the parity check scores it), over ``scored_images`` images (for
    top-1 accuracy one changed prediction is ``100 / scored_images`` points, so a 1-point bar
    needs more than 100 of them to tolerate any). ``file`` and ``sha256`` name the int8 graph
    when kept.
    """

    kept: bool
    reason: str
    method: str
    images: int
    calibration_images: int
    calibration_source: str
    fp32_images_per_second: float
    int8_images_per_second: float
    speedup: float
    loss_basis: str
    scored_images: int
    accuracy_loss: float
    scores: dict[str, dict[str, float | None]]
    min_speedup: float
    max_loss: float
    file: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class OnnxExport:
    folder: Path
    onnx_sha256: str
    weights_sha256: str
    family: str
    image_size: int
    opset: int
    input_name: str
    outputs: list[str]
    embedding_output: str
    parity: OnnxParity
    exported_with: dict[str, str]
    images_per_run: int | None = None
    int8: Int8Trial | None = None

    @property
    def path(self) -> Path:
        return self.folder / ONNX_NAME

    @property
    def int8_kept(self) -> bool:
        return self.int8 is not None and self.int8.kept

    @property
    def runtime_path(self) -> Path:
        """The graph a runtime should load: the int8 one when it was kept, else the fp32 one."""
        return self.folder / INT8_NAME if self.int8_kept else self.path

    @property
    def precision(self) -> str:
        return "int8" if self.int8_kept else "fp32"

    @property
    def label_outputs(self) -> list[str]:
        """The family's outputs, without the embedding."""
        return [name for name in self.outputs if name != self.embedding_output]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["folder"] = str(self.folder)
        out["path"] = str(self.path)
        out["precision"] = self.precision
        return out


def export_exists(folder: Path) -> bool:
    return (folder / ONNX_NAME).exists() or (folder / ONNX_META_NAME).exists()


def write_export(export: OnnxExport) -> None:
    meta = export.to_dict()
    del meta["folder"], meta["path"], meta["precision"]
    meta["version"] = EXPORT_VERSION
    meta["file"] = ONNX_NAME
    atomic_write_local(
        str(export.folder / ONNX_META_NAME), json.dumps(meta, indent=2, sort_keys=True).encode()
    )


def read_export(folder: Path, artifact: ExportedModel) -> OnnxExport:
    """The export next to ``artifact``, refused (``ValidationError`` naming the reason) when it is
    missing, unreadable, failed its parity check or no longer matches the model."""
    path = folder / ONNX_META_NAME
    meta = _read_meta(path)
    try:
        trial = meta.get("int8")
        export = OnnxExport(
            folder=folder,
            onnx_sha256=str(meta["onnx_sha256"]),
            weights_sha256=str(meta["weights_sha256"]),
            family=str(meta["family"]),
            image_size=int(meta["image_size"]),
            opset=int(meta["opset"]),
            input_name=str(meta["input_name"]),
            outputs=[str(name) for name in meta["outputs"]],
            embedding_output=str(meta["embedding_output"]),
            parity=OnnxParity(**meta["parity"]),
            exported_with={str(k): str(v) for k, v in dict(meta.get("exported_with") or {}).items()},
            images_per_run=None if meta.get("images_per_run") is None else int(meta["images_per_run"]),
            int8=None if trial is None else Int8Trial(**trial),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"{path}: malformed export description: {exc}") from exc
    if export.weights_sha256 != artifact.weights_sha256:
        raise ValidationError(
            f"{export.path} is stale: exported from weights sha256 {export.weights_sha256[:12]}, "
            f"the model's weights are {artifact.weights_sha256[:12]} (export the model again)"
        )
    if (export.family, export.image_size) != (artifact.family, artifact.image_size):
        raise ValidationError(
            f"{export.path} is stale: exported as a {export.family} at {export.image_size} px, the model "
            f"is a {artifact.family} at {artifact.image_size} px (export the model again)"
        )
    if not export.parity.passed:
        raise ValidationError(f"{export.path} failed its parity check: {'; '.join(export.parity.reasons)}")
    if not export.path.is_file():
        raise ValidationError(f"{export.path}: missing (export the model again)")
    _check_file(export.path, export.onnx_sha256)
    if export.int8 is not None and export.int8.kept:
        _check_file(export.runtime_path, export.int8.sha256 or "")
    return export


def _read_meta(path: Path) -> dict[str, Any]:
    """The description at the current version or an older one it can still read."""
    missing = f"{path}: missing (export the model again)"
    for version in _OLDER_VERSIONS:
        try:
            return read_description(path, version, "export description", missing)
        except ValidationError:
            continue  # not this version: the current one decides and says why
    return read_description(path, EXPORT_VERSION, "export description", missing)


def _check_file(path: Path, recorded: str) -> None:
    if not path.is_file():
        raise ValidationError(f"{path}: missing (export the model again)")
    actual = sha256_file(path)
    if actual != recorded:
        raise ValidationError(
            f"{path} changed since it was exported (sha256 {actual[:12]}, recorded "
            f"{recorded[:12]}; export the model again)"
        )
