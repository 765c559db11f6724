"""Opening an ONNX Runtime session on the CPU, without PyTorch.

The edge runtime runs exported models where PyTorch is not installed, so the session set-up it
shares with :mod:`visionloop.tasks.onnx_runtime` must not import it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import MissingDependencyError, ValidationError

__all__ = ["SessionSettings", "available_cores", "import_onnxruntime", "open_session", "session_runs"]


@dataclass(frozen=True)
class SessionSettings:
    """``threads`` per operator (default: every available core). ``busy_wait``: idle operator
    threads spin for the next piece of work (lowest latency); turn it off when other processes
    need the cores meanwhile, such as decoding workers, so waiting threads sleep instead."""

    threads: int | None = None
    busy_wait: bool = True


def import_onnxruntime(purpose: str, extra: str = "onnx") -> Any:
    """The ``onnxruntime`` module, or an error naming the ``extra`` that installs it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError("onnxruntime", extra, purpose) from exc
    return onnxruntime


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def open_session(path: str, settings: SessionSettings = SessionSettings(), extra: str = "onnx") -> Any:
    """A CPU ``InferenceSession`` with all graph optimisations, one operator at a time, each
    spread over ``settings.threads``."""
    ort = import_onnxruntime("Running a model with ONNX Runtime", extra)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = settings.threads or available_cores()
    options.inter_op_num_threads = 1
    if not settings.busy_wait:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
        raise ValidationError(f"{path}: ONNX Runtime cannot load the graph: {exc}") from exc


def session_runs(
    session: Any,
    input_name: str,
    images: Sequence[npt.NDArray[np.uint8]],
    names: Sequence[str],
    per_run: int | None,
    inputs: Callable[[Sequence[npt.NDArray[np.uint8]]], npt.NDArray[np.float32]],
) -> Iterator[tuple[Sequence[npt.NDArray[np.uint8]], list[npt.NDArray[np.float32]]]]:
    """Each run's images and the outputs ``names`` it returned, over ``images`` (raw RGB), at most
    ``per_run`` images a run (``None``: all in one run; detector graphs take one image), each
    run's graph input made by ``inputs``."""
    step = per_run or max(1, len(images))
    for start in range(0, len(images), step):
        chunk = images[start : start + step]
        results = session.run(list(names), {input_name: inputs(chunk)})
        yield chunk, [np.asarray(result, dtype=np.float32) for result in results]
