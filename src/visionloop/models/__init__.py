"""Model backends. Import torchvision only through :func:`import_torchvision`."""

from __future__ import annotations

from visionloop.models.torch_ops import ensure_torchvision_ops, import_torchvision

__all__ = ["ensure_torchvision_ops", "import_torchvision"]
