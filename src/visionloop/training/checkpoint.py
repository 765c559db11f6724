"""Training checkpoints that survive ``kill -9``: written to a temporary file, then renamed.

A checkpoint holds everything the next step depends on: weights, optimizer and scheduler
state, the global torch RNG (dropout, detector samplers) and the loop position. It is read
back with ``torch.load(weights_only=True)``, so even a tampered checkpoint cannot run code.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from visionloop.core.errors import ValidationError
from visionloop.storage.filesystem import atomic_write_local

__all__ = ["LoopState", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class LoopState:
    """Where the loop is. ``step_in_epoch`` batches of ``epoch`` are done."""

    epoch: int = 0
    step: int = 0
    step_in_epoch: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    bad_evaluations: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    images_seen: int = 0
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def save_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: LoopState,
) -> Path:
    path = folder / CHECKPOINT_NAME
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "state": state.to_dict(),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_local(str(path), buffer.getvalue())
    return path


def load_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> LoopState | None:
    """Restore a checkpoint into the given objects; ``None`` when the folder has none."""
    path = folder / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        torch.set_rng_state(payload["torch_rng"])
        return LoopState(**payload["state"])
    except Exception as exc:  # a corrupt or foreign file: say which, do not guess
        raise ValidationError(f"{path}: cannot resume from this checkpoint: {exc}") from exc
