"""The CPU fallbacks for torchvision's ``nms`` and ``roi_align`` against native reference outputs.

The fixture comes from ``scripts/make_op_fixtures.py`` run with torchvision's compiled
operators. The kernels are called directly, so these tests check the fallbacks even where the
native operators load.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from visionloop.models.torch_ops import (  # noqa: E402
    ensure_torchvision_ops,
    import_torchvision,
    nms_fallback,
    roi_align_backward_fallback,
    roi_align_fallback,
)

FIXTURE = Path(__file__).parent / "fixtures" / "torchvision_ops.npz"


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def case_ids(reference: dict[str, np.ndarray], prefix: str) -> list[int]:
    return sorted(
        {
            int(key.split("_")[1])
            for key in reference
            if key.startswith(f"{prefix}_") and key.split("_")[1].isdigit()
        }
    )


def test_nms_keeps_exactly_the_native_indices(reference: dict[str, np.ndarray]) -> None:
    cases = case_ids(reference, "nms")
    assert len(cases) >= 10
    for i in cases:
        boxes = torch.from_numpy(reference[f"nms_{i}_boxes"])
        scores = torch.from_numpy(reference[f"nms_{i}_scores"])
        keep = nms_fallback(boxes, scores, float(reference[f"nms_{i}_iou"]))
        assert keep.dtype == torch.int64
        np.testing.assert_array_equal(keep.numpy(), reference[f"nms_{i}_keep"], err_msg=f"nms case {i}")


def test_roi_align_forward_and_gradients_match_native(reference: dict[str, np.ndarray]) -> None:
    cases = case_ids(reference, "roi")
    assert len(cases) >= 20
    worst_output = worst_grad = 0.0
    for i in cases:
        rois_np = reference[f"roi_{i}_rois"]
        dtype_name = str(rois_np.dtype)
        x = torch.from_numpy(reference[f"roi_input_{dtype_name}"]).clone().requires_grad_(True)
        rois = torch.from_numpy(rois_np)
        scale, pooled_h, pooled_w, sampling_ratio, aligned = reference[f"roi_{i}_params"].tolist()
        args = (scale, int(pooled_h), int(pooled_w), int(sampling_ratio), bool(aligned))
        output = roi_align_fallback(x, rois, *args)
        grad_output = torch.from_numpy(reference[f"roi_{i}_grad_output"])
        output.backward(grad_output)
        assert x.grad is not None
        direct = roi_align_backward_fallback(
            grad_output,
            rois,
            scale,
            int(pooled_h),
            int(pooled_w),
            *x.shape,
            int(sampling_ratio),
            bool(aligned),
        )
        expected_output = reference[f"roi_{i}_output"]
        expected_grad = reference[f"roi_{i}_grad_input"]
        np.testing.assert_allclose(
            output.detach().numpy(), expected_output, rtol=0, atol=1e-5, err_msg=f"case {i}"
        )
        np.testing.assert_allclose(x.grad.numpy(), expected_grad, rtol=0, atol=1e-5, err_msg=f"case {i}")
        np.testing.assert_allclose(direct.numpy(), expected_grad, rtol=0, atol=1e-5, err_msg=f"case {i}")
        worst_output = max(worst_output, float(np.abs(output.detach().numpy() - expected_output).max()))
        worst_grad = max(worst_grad, float(np.abs(x.grad.numpy() - expected_grad).max()))
    print(f"roi_align max abs difference: output {worst_output:.2e}, input gradient {worst_grad:.2e}")


def test_empty_inputs() -> None:
    assert nms_fallback(torch.zeros((0, 4)), torch.zeros(0), 0.5).shape == (0,)
    x = torch.randn(1, 3, 5, 5, requires_grad=True)
    output = roi_align_fallback(x, torch.zeros((0, 5)), 1.0, 2, 2, 0, True)
    assert output.shape == (0, 3, 2, 2)
    grad = roi_align_backward_fallback(
        torch.zeros((0, 3, 2, 2)), torch.zeros((0, 5)), 1.0, 2, 2, 1, 3, 5, 5, 0, True
    )
    assert grad.shape == (1, 3, 5, 5)
    assert not grad.any()


def test_roi_align_fallback_passes_gradcheck() -> None:
    """Checks the fallback itself, and the registered operator when the fallback is what it runs
    (where native ops load, e.g. a CUDA build of torch, the operator is torchvision's own)."""
    fallback_registered = ensure_torchvision_ops()
    x = torch.randn(
        2, 2, 6, 7, dtype=torch.float64, requires_grad=True, generator=torch.Generator().manual_seed(0)
    )
    rois = torch.tensor([[0, 0.3, 0.7, 4.2, 5.1], [1, -1.5, 2.0, 8.0, 4.0]], dtype=torch.float64)
    for sampling_ratio, aligned in ((-1, False), (2, True)):

        def direct(a: torch.Tensor, sr: int = sampling_ratio, al: bool = aligned) -> torch.Tensor:
            return roi_align_fallback(a, rois, 0.8, 3, 2, sr, al)

        def registered(a: torch.Tensor, sr: int = sampling_ratio, al: bool = aligned) -> torch.Tensor:
            return torch.ops.torchvision.roi_align(a, rois, 0.8, 3, 2, sr, al)

        assert torch.autograd.gradcheck(direct, (x,))
        if fallback_registered:
            assert torch.autograd.gradcheck(registered, (x,))


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="torchvision not installed")
def test_torchvision_ops_run_through_the_registered_operators() -> None:
    torchvision = import_torchvision()
    assert ensure_torchvision_ops() == ensure_torchvision_ops()  # idempotent
    generator = torch.Generator().manual_seed(0)
    boxes = torch.rand(40, 4, generator=generator) * 30
    boxes[:, 2:] += boxes[:, :2] + 1
    scores = torch.rand(40, generator=generator)
    np.testing.assert_array_equal(
        torchvision.ops.nms(boxes, scores, 0.5).numpy(), nms_fallback(boxes, scores, 0.5).numpy()
    )
    keep = torchvision.ops.batched_nms(boxes, scores, torch.arange(40) % 3, 0.5)
    assert keep.numel() > 0
    x = torch.randn(2, 4, 9, 11, requires_grad=True, generator=generator)
    rois = torch.tensor([[0, 1.0, 2.0, 15.0, 12.0], [1, -3.0, 0.0, 6.0, 30.0]])
    output = torchvision.ops.roi_align(x, rois, (3, 3), spatial_scale=0.5, sampling_ratio=-1, aligned=True)
    torch.testing.assert_close(output, roi_align_fallback(x, rois, 0.5, 3, 3, -1, True), rtol=0, atol=1e-6)
    output.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
