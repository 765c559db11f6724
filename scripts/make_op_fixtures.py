"""Write reference outputs of torchvision's native ``nms`` and ``roi_align`` for the op tests.

Run once with an environment whose torchvision extension loads (the CUDA build of torch runs on
CPU too)::

    python3 -m venv /tmp/tv-native
    /tmp/tv-native/bin/pip --isolated install torch==2.13.0 torchvision==0.28.0 numpy
    /tmp/tv-native/bin/python scripts/make_op_fixtures.py

It writes ``tests/models/fixtures/torchvision_ops.npz`` (``np.savez_compressed``, plain arrays
only, so the test can load it with ``allow_pickle=False``). Keys:

* ``nms_<i>_boxes``, ``nms_<i>_scores``, ``nms_<i>_iou`` (0-d), ``nms_<i>_keep``
* ``roi_input_<dtype>``: the shared feature map, (N, C, H, W)
* ``roi_<i>_rois`` (K, 5), ``roi_<i>_params`` = [spatial_scale, pooled_h, pooled_w,
  sampling_ratio, aligned], ``roi_<i>_output``, ``roi_<i>_grad_output`` (random upstream
  gradient) and ``roi_<i>_grad_input`` (native gradient with respect to the input)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torchvision  # the native extension must load: this script makes the reference data

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tests/models/fixtures/torchvision_ops.npz"


def random_boxes(rng: np.random.Generator, count: int, size: float) -> np.ndarray:
    corner = rng.uniform(0, size, (count, 2))
    extent = rng.uniform(1, size / 3, (count, 2))
    return np.concatenate([corner, corner + extent], axis=1)


def nms_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, float]]:
    cases: list[tuple[np.ndarray, np.ndarray, float]] = []
    for threshold in (0.3, 0.5, 0.7):
        boxes = random_boxes(rng, 300, 100).astype(np.float32)
        cases.append((boxes, rng.uniform(0, 1, 300).astype(np.float32), threshold))
    # Ties: few distinct scores, and exact duplicates of boxes.
    boxes = random_boxes(rng, 120, 40).astype(np.float32)
    boxes = np.concatenate([boxes, boxes[:30]])
    scores = rng.integers(0, 4, len(boxes)).astype(np.float32) / 4
    cases.append((boxes, scores, 0.5))
    cases.append((boxes, np.full(len(boxes), 0.5, np.float32), 0.4))
    # IoU exactly at the threshold (kept: suppression needs IoU > threshold), just above it,
    # zero-area boxes (IoU 0 or NaN: never suppress) and touching boxes.
    edge = np.array(
        [
            [0, 0, 4, 1],
            [0, 0, 2, 1],  # IoU with the first: exactly 0.5
            [0, 0, 2.0001, 1],  # a hair above 0.5
            [5, 5, 5, 5],  # zero area
            [5, 5, 5, 5],
            [4, 0, 6, 1],  # touches the first
            [10, 10, 12, 12],
        ],
        dtype=np.float32,
    )
    cases.append((edge, np.array([0.9, 0.8, 0.7, 0.6, 0.6, 0.5, 0.4], np.float32), 0.5))
    cases.append((edge, np.array([0.4, 0.8, 0.7, 0.6, 0.6, 0.5, 0.9], np.float32), 0.0))
    cases.append((np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5))
    cases.append((np.array([[1, 2, 3, 4]], np.float32), np.array([0.1], np.float32), 0.5))
    boxes = random_boxes(rng, 200, 60)
    cases.append((boxes, rng.uniform(0, 1, 200), 0.45))  # float64
    return cases


def random_rois(
    rng: np.random.Generator, count: int, batch: int, height: int, width: int, scale: float
) -> np.ndarray:
    """Rois in image coordinates (feature coordinates / scale), some partly outside the map."""
    size = np.array([width, height]) / scale
    corner = rng.uniform(-0.3, 1.0, (count, 2)) * size
    extent = rng.uniform(0.02, 0.8, (count, 2)) * size
    boxes = np.concatenate([corner, corner + extent], axis=1)
    boxes[0] = [-5 / scale, -3 / scale, (width + 4) / scale, (height + 2) / scale]  # covers all
    boxes[1] = [2 / scale, 3 / scale, 2 / scale, 3.2 / scale]  # degenerate
    index = rng.integers(0, batch, (count, 1)).astype(np.float64)
    return np.concatenate([index, boxes], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if not torchvision.extension._has_ops():
        raise SystemExit("torchvision's native extension did not load: use the CUDA build of torch")
    rng = np.random.default_rng(20261121)
    arrays: dict[str, np.ndarray] = {}

    for i, (boxes, scores, threshold) in enumerate(nms_cases(rng)):
        keep = torch.ops.torchvision.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold)
        arrays[f"nms_{i}_boxes"] = boxes
        arrays[f"nms_{i}_scores"] = scores
        arrays[f"nms_{i}_iou"] = np.array(threshold, np.float64)
        arrays[f"nms_{i}_keep"] = keep.numpy().astype(np.int64)

    batch, channels, height, width = 2, 3, 13, 17
    inputs = {
        "float32": rng.standard_normal((batch, channels, height, width)).astype(np.float32),
        "float64": rng.standard_normal((batch, channels, height, width)),
    }
    for dtype_name, array in inputs.items():
        arrays[f"roi_input_{dtype_name}"] = array
    case = 0
    for dtype_name in ("float32", "float64"):
        for scale in (1.0, 0.5, 0.25):
            for sampling_ratio in (-1, 0, 1, 2):
                for aligned in (False, True):
                    if dtype_name == "float64" and (scale != 0.5 or sampling_ratio == 1):
                        continue
                    pooled_h, pooled_w = (3, 2) if case % 2 else (7, 7)
                    rois_np = random_rois(rng, 12, batch, height, width, scale).astype(dtype_name)
                    x = torch.from_numpy(inputs[dtype_name]).clone().requires_grad_(True)
                    rois = torch.from_numpy(rois_np)
                    output = torch.ops.torchvision.roi_align(
                        x, rois, scale, pooled_h, pooled_w, sampling_ratio, aligned
                    )
                    grad_output = torch.from_numpy(
                        rng.standard_normal(tuple(output.shape)).astype(dtype_name)
                    )
                    output.backward(grad_output)
                    if x.grad is None:
                        raise SystemExit("roi_align produced no input gradient")
                    params = [scale, pooled_h, pooled_w, sampling_ratio, float(aligned)]
                    arrays[f"roi_{case}_rois"] = rois_np
                    arrays[f"roi_{case}_params"] = np.array(params, np.float64)
                    arrays[f"roi_{case}_output"] = output.detach().numpy()
                    arrays[f"roi_{case}_grad_output"] = grad_output.numpy()
                    arrays[f"roi_{case}_grad_input"] = x.grad.numpy()
                    case += 1

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB,"
        f" {len(arrays)} arrays, {case} roi_align cases)"
    )


if __name__ == "__main__":
    main()
