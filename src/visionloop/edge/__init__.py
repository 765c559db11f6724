"""The edge runtime: run an exported model where only ONNX Runtime, numpy and Pillow are
installed (OpenCV for video), and capture what the model is unsure of for labeling.

Nothing in this package imports PyTorch, directly or through another visionloop module
(an import-linter contract checks it), so it installs on a small device:
``pip install --no-deps visionloop`` next to ``onnxruntime numpy pillow pydantic fsspec``.
Run it as ``python -m visionloop.edge run ...`` or ``visionloop edge run ...``.
"""

from visionloop.edge.model import EdgeModel
from visionloop.edge.runner import EdgeOptions, EdgeReport, SyncReport, run_edge, sync_captures

__all__ = ["EdgeModel", "EdgeOptions", "EdgeReport", "SyncReport", "run_edge", "sync_captures"]
