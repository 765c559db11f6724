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
kernels written in plain torch (exact greedy NMS; ``roi_align`` by bilinear sampling with
:func:`torch.nn.functional.grid_sample`), plus autograd for ``roi_align``. Always go through
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

import torch
import torch.nn.functional as F

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
    overlaps = (inter / (areas[:, None] + areas[None, :] - inter)) > iou_threshold
    count = boxes.shape[0]
    suppressed = torch.zeros(count, dtype=torch.bool, device=dets.device)
    keep: list[int] = []
    for i in range(count):
        if bool(suppressed[i]):
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.long, device=dets.device)]


# --------------------------------------------------------------------------------------------
# roi_align


def _roi_align_image(
    feature: torch.Tensor,
    rois: torch.Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    """roi_align of ``rois`` (K, 4) on one image ``feature`` (C, H, W) -> (K, C, PH, PW)."""
    channels, height, width = feature.shape
    count = rois.shape[0]
    dtype = feature.dtype
    offset = 0.5 if aligned else 0.0
    boxes = rois.to(dtype) * spatial_scale - offset
    start_x, start_y, end_x, end_y = boxes.unbind(1)
    roi_w = end_x - start_x
    roi_h = end_y - start_y
    if not aligned:  # legacy behaviour: force malformed rois to be at least 1x1
        roi_w = roi_w.clamp(min=1.0)
        roi_h = roi_h.clamp(min=1.0)
    bin_h = roi_h / pooled_height
    bin_w = roi_w / pooled_width
    if sampling_ratio > 0:
        grid_h = torch.full((count,), sampling_ratio, dtype=torch.long, device=feature.device)
        grid_w = grid_h
    else:  # adaptive: ceil(roi_size / pooled_size) samples per bin
        grid_h = torch.ceil(roi_h / pooled_height).long()
        grid_w = torch.ceil(roi_w / pooled_width).long()
    max_h = max(int(grid_h.max()), 1)
    max_w = max(int(grid_w.max()), 1)

    # Sample coordinates, shaped (K, PH, GH) and (K, PW, GW); samples beyond a roi's own grid
    # size (adaptive case) are masked out below.
    iy = torch.arange(max_h, dtype=dtype, device=feature.device)
    ix = torch.arange(max_w, dtype=dtype, device=feature.device)
    ph = torch.arange(pooled_height, dtype=dtype, device=feature.device)
    pw = torch.arange(pooled_width, dtype=dtype, device=feature.device)
    grid_h_f = grid_h.clamp(min=1).to(dtype)
    grid_w_f = grid_w.clamp(min=1).to(dtype)
    ys = (
        start_y[:, None, None]
        + ph[None, :, None] * bin_h[:, None, None]
        + (iy[None, None, :] + 0.5) * bin_h[:, None, None] / grid_h_f[:, None, None]
    )
    xs = (
        start_x[:, None, None]
        + pw[None, :, None] * bin_w[:, None, None]
        + (ix[None, None, :] + 0.5) * bin_w[:, None, None] / grid_w_f[:, None, None]
    )
    # torchvision: a sample outside [-1, size] contributes 0, one inside is clamped to the map,
    # which is what grid_sample's "border" padding does after we mask the far-away samples.
    valid_y = (ys >= -1.0) & (ys <= height) & (iy[None, None, :] < grid_h[:, None, None])
    valid_x = (xs >= -1.0) & (xs <= width) & (ix[None, None, :] < grid_w[:, None, None])
    # grid_sample takes coordinates normalised to [-1, 1]; in float32 the round trip costs
    # ~1e-5 on large maps, so sample in float64 and cast back (autograd casts the gradient).
    norm_y = ys.double() * (2.0 / max(height - 1, 1)) - 1.0
    norm_x = xs.double() * (2.0 / max(width - 1, 1)) - 1.0

    # grid (1, K*PH*GH, PW*GW, 2) holding (x, y) for every sample point.
    gy = norm_y.reshape(count, pooled_height * max_h, 1, 1).expand(-1, -1, pooled_width * max_w, 1)
    gx = norm_x.reshape(count, 1, pooled_width * max_w, 1).expand(-1, pooled_height * max_h, -1, 1)
    grid = torch.cat([gx, gy], dim=3).reshape(1, count * pooled_height * max_h, pooled_width * max_w, 2)
    sampled = F.grid_sample(
        feature[None].double(), grid, mode="bilinear", padding_mode="border", align_corners=True
    ).to(dtype)  # (1, C, K*PH*GH, PW*GW)
    sampled = sampled.reshape(channels, count, pooled_height, max_h, pooled_width, max_w)
    mask = valid_y[:, :, :, None, None] & valid_x[:, None, None, :, :]  # (K, PH, GH, PW, GW)
    weights = mask.to(dtype) / (grid_h_f * grid_w_f)[:, None, None, None, None]
    pooled = (sampled * weights[None]).sum(dim=(3, 5))  # (C, K, PH, PW)
    return pooled.permute(1, 0, 2, 3)


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
    output = input.new_zeros((rois.shape[0], channels, pooled_height, pooled_width))
    if rois.shape[0] == 0 or input.numel() == 0:
        return output
    batch_index = rois[:, 0].long()
    for image in torch.unique(batch_index).tolist():
        selected = (batch_index == image).nonzero().squeeze(1)
        pooled = _roi_align_image(
            input[image],
            rois[selected, 1:],
            spatial_scale,
            pooled_height,
            pooled_width,
            sampling_ratio,
            aligned,
        )
        output = output.index_copy(0, selected, pooled)
    return output


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
