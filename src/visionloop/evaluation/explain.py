"""Pixel attributions with Integrated Gradients (captum) and side-by-side explanation images.

torch and captum are optional (``visionloop[torch]``, ``visionloop[explain]``) and imported only
when a function runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import MissingDependencyError, ValidationError
from visionloop.evaluation.plots import new_figure, plain_text, save_figure

if TYPE_CHECKING:
    import torch


def black_baseline(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """The baseline of a black image in normalised input space: ``(0 - mean) / std`` per channel,
    broadcast to the shape of ``images`` ``(B, C, H, W)``."""
    _require_torch()
    import torch

    mean_t = torch.as_tensor(mean, dtype=images.dtype, device=images.device).reshape(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=images.dtype, device=images.device).reshape(1, -1, 1, 1)
    if mean_t.shape[1] != images.shape[1] or std_t.shape[1] != images.shape[1]:
        raise ValidationError(f"need one mean and one std per channel ({images.shape[1]})")
    return torch.zeros_like(images).sub(mean_t).div(std_t)


def integrated_gradients(
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: Sequence[int],
    steps: int = 32,
    baseline: torch.Tensor | None = None,
) -> npt.NDArray[np.float64]:
    """Integrated Gradients of the ``targets`` logits w.r.t. ``images`` ``(B, C, H, W)`` (the
    normalised model input), returned as per-pixel magnitude ``(B, H, W)``: the absolute
    attributions summed over channels.

    ``baseline`` defaults to zeros, which is the mean image for inputs normalised by mean and std;
    pass :func:`black_baseline` for a true black image. The model runs in eval mode and gets its
    previous mode back afterwards.
    """
    _require_torch()
    import torch

    try:
        from captum.attr import IntegratedGradients
    except ImportError as exc:
        raise MissingDependencyError("captum", "explain", "Integrated Gradients explanations") from exc
    if images.ndim != 4:
        raise ValidationError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    if len(targets) != images.shape[0]:
        raise ValidationError(f"expected {images.shape[0]} targets (one per image), got {len(targets)}")
    if steps < 2:
        raise ValidationError(f"Integrated Gradients needs at least 2 steps, got {steps}")
    reference = torch.zeros_like(images) if baseline is None else baseline.to(images)
    if reference.shape != images.shape:
        raise ValidationError(f"baseline shape {tuple(reference.shape)} differs from {tuple(images.shape)}")
    was_training = model.training
    model.eval()
    try:
        explainer = IntegratedGradients(model)
        attributions = explainer.attribute(
            images.detach(),
            baselines=reference.detach(),
            target=[int(t) for t in targets],
            n_steps=steps,
        )
    finally:
        model.train(was_training)
    magnitude = attributions.detach().abs().sum(dim=1)
    return np.asarray(magnitude.cpu().numpy(), dtype=np.float64)


def save_explanation(
    image: npt.NDArray[np.uint8], attribution: npt.ArrayLike, path: Path, title: str = ""
) -> Path:
    """A PNG with the image on the left and the attribution heat map over it on the right."""
    pixels = np.asarray(image)
    heat = np.asarray(attribution, dtype=np.float64)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValidationError(f"expected a uint8 RGB image (H, W, 3), got {pixels.dtype} {pixels.shape}")
    if heat.shape != pixels.shape[:2]:
        raise ValidationError(f"attribution shape {heat.shape} does not match the image {pixels.shape[:2]}")
    heat = np.nan_to_num(np.abs(heat))
    peak = heat.max()
    if peak > 0:
        heat = heat / peak
    height, width = pixels.shape[:2]
    panel = 4.0
    figure = new_figure(2 * panel, panel * height / width + (0.6 if title else 0.2))
    left, right = figure.subplots(1, 2)
    left.imshow(pixels)
    left.set_title("image", fontsize="small")
    right.imshow(pixels)
    overlay = right.imshow(heat, cmap="inferno", alpha=0.55, vmin=0.0, vmax=1.0)
    right.set_title("attribution", fontsize="small")
    figure.colorbar(overlay, ax=right, fraction=0.046, pad=0.04)
    for axes in (left, right):
        axes.set_axis_off()
    if title:
        figure.suptitle(plain_text(title))
    return save_figure(figure, path)


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("torch", "torch", "model explanations") from exc
