"""CPU fallbacks for the compiled torchvision operators the detection models need.

Why this exists: the only torchvision wheel available here (0.28.0) is linked against the CUDA
build of torch. With the CPU build of torch its compiled extension cannot load, and
``import torchvision`` then fails with ``operator torchvision::nms does not exist`` (its fake-tensor
registrations look the operators up at import time). torchvision's own pure-Python ``roi_align``
fallback compiles with ``torch.compile`` on first use (minutes, and it has crashed out of memory),
so it is not an option either.

:func:`ensure_torchvision_ops` first tries to load torchvision's native extension; only when that
fails does it declare ``torchvision::nms``, ``torchvision::roi_align`` and
``torchvision::_roi_align_backward`` with torchvision's own schemas and register eager CPU
kernels written in plain torch (exact greedy NMS; ``roi_align`` as separable bilinear weight
matrices applied with two matrix products), plus autograd for ``roi_align``. Always go through
:func:`import_torchvision` (or call :func:`ensure_torchvision_ops` first) before torchvision is
imported anywhere in the process.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

__all__ = [
    "ensure_torchvision_ops",
    "import_torchvision",
    "nms_fallback",
    "roi_align_backward_fallback",
    "roi_align_fallback",
]

# Exactly as torchvision declares them (torchvision/csrc/ops/{nms,roi_align}.cpp, 0.28.0).
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "roi_align": (
        "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height,"
        " SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor"
    ),
    "_roi_align_backward": (
        "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale,"
        " SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels,"
        " SymInt height, SymInt width, int sampling_ratio, bool aligned) -> Tensor"
    ),
}

# Declared without a kernel: torchvision registers a fake implementation for it at import time.
_QNMS_SCHEMA = "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"

_lock = threading.Lock()
# The library holding the fallbacks, kept alive here: dropping it would unregister the operators.
_libraries: list[torch.library.Library] = []


def _native_ops_present() -> bool:
    return all(hasattr(torch.ops.torchvision, name) for name in _SCHEMAS)


def _try_load_native_extension() -> bool:
    """Load torchvision's compiled ``_C`` library without importing torchvision itself."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for directory in spec.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = Path(directory) / f"_C{suffix}"
            if candidate.is_file():
                try:
                    torch.ops.load_library(str(candidate))  # type: ignore[no-untyped-call]
                except (OSError, RuntimeError):
                    return False
                return _native_ops_present()
    return False


def ensure_torchvision_ops() -> bool:
    """Make the torchvision operators available; return True if CPU fallbacks were installed.

    Idempotent and thread-safe. Native operators always win: the fallbacks are registered only
    when torchvision's compiled extension is missing or cannot load.
    """
    with _lock:
        if _libraries:
            return True
        if _native_ops_present() or _try_load_native_extension():
            return False
        library = torch.library.Library("torchvision", "FRAGMENT")  # type: ignore[no-untyped-call]
        for schema in _SCHEMAS.values():
            library.define(schema)  # type: ignore[no-untyped-call]
        if not hasattr(torch.ops.torchvision, "qnms"):
            library.define(_QNMS_SCHEMA)  # type: ignore[no-untyped-call]
        library.impl("nms", nms_fallback, "CPU")  # type: ignore[no-untyped-call]
        library.impl("roi_align", roi_align_fallback, "CPU")  # type: ignore[no-untyped-call]
        library.impl("_roi_align_backward", roi_align_backward_fallback, "CPU")  # type: ignore[no-untyped-call]
        torch.library.register_autograd(
            "torchvision::roi_align",
            _roi_align_autograd_backward,
            setup_context=_roi_align_setup_context,
            lib=library,
        )
        torch.library.register_fake("torchvision::roi_align", _roi_align_fake, lib=library)
        torch.library.register_fake("torchvision::_roi_align_backward", _roi_align_backward_fake, lib=library)
        _libraries.append(library)
        return True


def import_torchvision() -> ModuleType:
    """Import torchvision after making sure the operators it needs exist."""
    fallbacks = ensure_torchvision_ops()
    torchvision = importlib.import_module("torchvision")
    if fallbacks:
        # torchvision decided at import time that its extension is missing: ``nms`` would raise
        # and ``roi_align`` would take its torch.compile path. The operators exist now, so say so.
        # ``torchvision.ops.roi_align`` binds its own reference to ``_has_ops``.
        for name in ("torchvision.extension", "torchvision.ops.roi_align"):
            module = sys.modules.get(name)
            if module is not None and hasattr(module, "_has_ops"):
                setattr(module, "_has_ops", _true)  # noqa: B010 - patching a third-party module
    return torchvision


def _true() -> bool:
    return True


# --------------------------------------------------------------------------------------------
# nms


def nms_fallback(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Exact greedy NMS, same arithmetic and tie order as torchvision's CPU kernel.

    Returns the int64 indices of the kept boxes, by decreasing score (stable for equal scores).
    A box is dropped when its IoU with a kept, higher-ranked box is strictly above the threshold.
    """
    if dets.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=dets.device)
    order = torch.sort(scores, stable=True, descending=True).indices
    boxes = dets[order]
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    width = (torch.minimum(x2[:, None], x2[None, :]) - torch.maximum(x1[:, None], x1[None, :])).clamp(min=0)
    height = (torch.minimum(y2[:, None], y2[None, :]) - torch.maximum(y1[:, None], y1[None, :])).clamp(min=0)
    inter = width * height
    overlaps = ((inter / (areas[:, None] + areas[None, :] - inter)) > iou_threshold).cpu().numpy()
    # Greedy in rank order, one step per *kept* box: the best remaining box is kept and every
    # lower-ranked box it overlaps leaves the candidates (numpy, so a step costs microseconds).
    candidates = np.arange(boxes.shape[0])
    keep: list[int] = []
    while candidates.size:
        best, rest = int(candidates[0]), candidates[1:]
        keep.append(best)
        candidates = rest[~overlaps[best, rest]]
    return order[torch.tensor(keep, dtype=torch.long, device=dets.device)]


# --------------------------------------------------------------------------------------------
# roi_align


def _axis_weights(
    start: torch.Tensor, length: torch.Tensor, pooled: int, grid: torch.Tensor, size: int
) -> torch.Tensor:
    """``(K, pooled, size)``: row ``p`` of roi ``k`` averages the bilinear weights of the ``grid[k]``
    sample points in bin ``p`` along one axis of a feature map ``size`` long.

    torchvision's rules, one axis at a time: a sample beyond ``[-1, size]`` contributes nothing,
    one below 0 reads pixel 0, and one at or past ``size - 1`` reads the last pixel only.
    """
    count, dtype, device = start.shape[0], start.dtype, start.device
    most = max(int(grid.max()), 1) if count else 1
    bins = length / pooled
    grid_f = grid.clamp(min=1).to(dtype)
    sample = torch.arange(most, dtype=dtype, device=device)
    index = torch.arange(pooled, dtype=dtype, device=device)
    coords = (
        start[:, None, None]
        + index[None, :, None] * bins[:, None, None]
        + (sample[None, None, :] + 0.5) * bins[:, None, None] / grid_f[:, None, None]
    )  # (K, P, G)
    valid = (coords >= -1.0) & (coords <= size) & (sample[None, None, :] < grid[:, None, None])
    coords = coords.clamp(min=0.0)
    low = coords.floor().long()
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    high = torch.where(at_end, low, low + 1)
    fraction = torch.where(at_end, torch.zeros_like(coords), coords - low.to(dtype))
    share = valid.to(dtype) / grid_f[:, None, None]
    weights = torch.zeros((count, pooled, size), dtype=dtype, device=device)
    weights.scatter_add_(2, low, (1.0 - fraction) * share)
    weights.scatter_add_(2, high, fraction * share)
    return weights


def _roi_align_image(
    feature: torch.Tensor,
    rois: torch.Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    """roi_align of ``rois`` (K, 4) on one image ``feature`` (C, H, W) -> (K, C, PH, PW).

    Bilinear sampling separates into one weight matrix per axis, and averaging a bin's samples
    is linear, so each roi is ``Wy @ feature @ Wx.T``: two small matrix products instead of
    gathering every sample point (about 5x faster forward and backward on detector maps).
    """
    _, height, width = feature.shape
    offset = 0.5 if aligned else 0.0
    boxes = rois.detach().to(feature.dtype) * spatial_scale - offset
    start_x, start_y, end_x, end_y = boxes.unbind(1)
    roi_w = end_x - start_x
    roi_h = end_y - start_y
    if not aligned:  # legacy behaviour: force malformed rois to be at least 1x1
        roi_w = roi_w.clamp(min=1.0)
        roi_h = roi_h.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_h = torch.full_like(roi_h, sampling_ratio, dtype=torch.long)
        grid_w = grid_h
    else:  # adaptive: ceil(roi_size / pooled_size) samples per bin
        grid_h = torch.ceil(roi_h / pooled_height).long()
        grid_w = torch.ceil(roi_w / pooled_width).long()
    rows = _axis_weights(start_y, roi_h, pooled_height, grid_h, height)  # (K, PH, H)
    columns = _axis_weights(start_x, roi_w, pooled_width, grid_w, width)  # (K, PW, W)
    across = torch.einsum("chw,kqw->kchq", feature, columns)  # (K, C, H, PW)
    return torch.einsum("kph,kchq->kcpq", rows, across)


def roi_align_fallback(
    input: torch.Tensor,  # noqa: A002 - torchvision's schema names it so
    rois: torch.Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    """CPU ``torchvision::roi_align``: ``input`` (N, C, H, W), ``rois`` (K, 5) -> (K, C, PH, PW).

    Each roi row is ``(batch_index, x1, y1, x2, y2)`` in input-image coordinates. Differentiable
    with respect to ``input`` through plain autograd.
    """
    pooled_height, pooled_width = int(pooled_height), int(pooled_width)
    channels = input.shape[1]
    if rois.shape[0] == 0 or input.numel() == 0:
        return input.new_zeros((rois.shape[0], channels, pooled_height, pooled_width))
    batch_index = rois[:, 0].long()
    positions: list[torch.Tensor] = []
    pooled: list[torch.Tensor] = []
    for image in torch.unique(batch_index).tolist():
        selected = (batch_index == image).nonzero().squeeze(1)
        positions.append(selected)
        pooled.append(
            _roi_align_image(
                input[image],
                rois[selected, 1:],
                spatial_scale,
                pooled_height,
                pooled_width,
                sampling_ratio,
                aligned,
            )
        )
    if len(pooled) == 1:
        return pooled[0]  # one image: its rois are all the rois, in order
    # Back to the rois' order: one gather instead of a copy of the output per image.
    return torch.cat(pooled)[torch.argsort(torch.cat(positions))]


def roi_align_backward_fallback(
    grad: torch.Tensor,
    rois: torch.Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    batch_size: int,
    channels: int,
    height: int,
    width: int,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    """CPU ``torchvision::_roi_align_backward``: gradient of roi_align with respect to its input.

    roi_align is linear in its input, so this is the vector-Jacobian product of the forward
    evaluated at zeros.
    """
    shape = (int(batch_size), int(channels), int(height), int(width))
    with torch.enable_grad():
        probe = torch.zeros(shape, dtype=grad.dtype, device=grad.device, requires_grad=True)
        output = roi_align_fallback(
            probe, rois.detach(), spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned
        )
        if output.numel() == 0:
            return torch.zeros(shape, dtype=grad.dtype, device=grad.device)
        (grad_input,) = torch.autograd.grad(output, probe, grad.detach())
    return grad_input


def _roi_align_fake(
    input: torch.Tensor,  # noqa: A002
    rois: torch.Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    return input.new_empty((rois.shape[0], input.shape[1], pooled_height, pooled_width))


def _roi_align_backward_fake(
    grad: torch.Tensor,
    rois: torch.Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    batch_size: int,
    channels: int,
    height: int,
    width: int,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    return grad.new_empty((batch_size, channels, height, width))


def _roi_align_setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    input_, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned = inputs
    ctx.save_for_backward(rois)
    ctx.params = (spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)
    ctx.input_shape = tuple(input_.shape)


def _roi_align_autograd_backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
    (rois,) = ctx.saved_tensors
    spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned = ctx.params
    batch_size, channels, height, width = ctx.input_shape
    grad_input = torch.ops.torchvision._roi_align_backward(
        grad,
        rois,
        spatial_scale,
        pooled_height,
        pooled_width,
        batch_size,
        channels,
        height,
        width,
        sampling_ratio,
        aligned,
    )
    return grad_input, None, None, None, None, None, None
