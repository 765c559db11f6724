"""One process's share of data-parallel training (the process group is set up by the caller).

Every worker walks the same seeded batch order and takes its slice of each global batch, so N
workers do the same optimiser steps as one process would, each on ``1/N`` of the images; the
wrapped model (PyTorch's DistributedDataParallel) averages the gradients. Rank 0 validates,
checkpoints and saves the model, and its decisions (best epoch, early stop) are broadcast so
that every worker leaves the loop at the same step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

__all__ = ["DataParallel"]

T = TypeVar("T")


@dataclass(frozen=True)
class DataParallel:
    rank: int
    world_size: int
    device: torch.device
    wrap: Callable[[nn.Module], nn.Module]

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def share(self, batch: list[int]) -> list[int]:
        """This worker's slice of a global batch; never empty (every worker must take each step,
        so a last batch smaller than the group lends its first image to the workers left out)."""
        return batch[self.rank :: self.world_size] or batch[:1]

    def from_leader(self, value: T) -> T:
        """Rank 0's ``value`` on every worker."""
        import torch.distributed as dist

        box: list[object] = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]
