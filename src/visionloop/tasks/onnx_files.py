"""An ONNX export on disk: ``model.onnx`` next to the model's weights, described by ``onnx.json``.

The description records what the graph was exported from (the weights' sha256, family, input
side), the graph's own sha256, its inputs and outputs, and the parity check it passed. An export
is only usable while all of that still matches the model folder: retrained weights, a changed
input size or a replaced graph make it stale, and :func:`read_export` says which. Nothing here
imports PyTorch: the edge runtime checks exports with the same code.
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
    "ONNX_META_NAME",
    "ONNX_NAME",
    "ExportedModel",
    "OnnxExport",
    "OnnxParity",
    "export_exists",
    "read_export",
    "write_export",
]

ONNX_NAME = "model.onnx"
ONNX_META_NAME = "onnx.json"
EXPORT_VERSION = 1
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
    part's peak position). ``max_abs_diff``: per output, the largest absolute difference, next to
    ``max_abs_reference``, the largest absolute PyTorch value (the scale it is judged against).
    """

    images: int
    agreement: float
    max_abs_diff: dict[str, float]
    max_abs_reference: dict[str, float]
    min_agreement: float
    tolerance: float
    passed: bool
    reasons: list[str] = field(default_factory=list)


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

    @property
    def path(self) -> Path:
        return self.folder / ONNX_NAME

    @property
    def label_outputs(self) -> list[str]:
        """The family's outputs, without the embedding."""
        return [name for name in self.outputs if name != self.embedding_output]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["folder"] = str(self.folder)
        out["path"] = str(self.path)
        return out


def export_exists(folder: Path) -> bool:
    return (folder / ONNX_NAME).exists() or (folder / ONNX_META_NAME).exists()


def write_export(export: OnnxExport) -> None:
    meta = export.to_dict()
    del meta["folder"], meta["path"]
    meta["version"] = EXPORT_VERSION
    meta["file"] = ONNX_NAME
    atomic_write_local(
        str(export.folder / ONNX_META_NAME), json.dumps(meta, indent=2, sort_keys=True).encode()
    )


def read_export(folder: Path, artifact: ExportedModel) -> OnnxExport:
    """The export next to ``artifact``, refused (``ValidationError`` naming the reason) when it is
    missing, unreadable, failed its parity check or no longer matches the model."""
    path = folder / ONNX_META_NAME
    meta = read_description(
        path, EXPORT_VERSION, "export description", f"{path}: missing (export the model again)"
    )
    try:
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
    actual = sha256_file(export.path)
    if actual != export.onnx_sha256:
        raise ValidationError(
            f"{export.path} changed since it was exported (sha256 {actual[:12]}, recorded "
            f"{export.onnx_sha256[:12]}; export the model again)"
        )
    return export
