"""Image embeddings captured during prediction, so one forward pass yields labels and features.

Diversity-based selection (k-center, typical clusters) needs a vector per image. Running the
network twice would double the cost of pre-labeling, so a forward hook records the tensor a
chosen module receives or returns, and :func:`pool_features` reduces it to one row per image:
spatial maps are averaged over height and width, several maps (an FPN's levels) are pooled and
concatenated.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

__all__ = ["EmbeddingSource", "capture_embeddings", "pool_features"]

EmbeddingSource = tuple[nn.Module, Literal["input", "output"]]


def pool_features(value: Any) -> torch.Tensor:
    """``(N, D)`` from a tensor ``(N, C, H, W)`` or ``(N, D)``, or a dict/sequence of them."""
    if isinstance(value, torch.Tensor):
        if value.dim() == 4:
            return value.float().mean(dim=(2, 3))
        if value.dim() == 2:
            return value.float()
        return value.float().flatten(1)
    if isinstance(value, Mapping):
        return torch.cat([pool_features(item) for item in value.values()], dim=1)
    if isinstance(value, Sequence) and value:
        return torch.cat([pool_features(item) for item in value], dim=1)
    raise TypeError(f"cannot pool {type(value).__name__} into embeddings")


@contextmanager
def capture_embeddings(source: EmbeddingSource) -> Iterator[list[npt.NDArray[np.float32]]]:
    """Within the block, every forward through ``source`` appends its pooled ``(N, D)`` rows."""
    module, which = source
    captured: list[npt.NDArray[np.float32]] = []

    def keep(value: Any) -> None:
        captured.append(pool_features(value).detach().cpu().numpy().astype(np.float32))

    if which == "input":
        handle = module.register_forward_pre_hook(lambda _module, args: keep(args[0]))
    else:
        handle = module.register_forward_hook(lambda _module, _args, output: keep(output))
    try:
        yield captured
    finally:
        handle.remove()
