"""int8 ONNX graphs: quantize an fp32 export, measure it, keep it only when it pays.

Static quantization: weights and activations int8, activation ranges calibrated on the
project's own images, weights per output channel, QDQ format (ONNX Runtime fuses each
quantize/dequantize pair with its operator into an int8 kernel), unsigned activations. Measured
on this project's 2-core x86 CPU (AVX-512 VNNI; one thread, interleaved rounds, a shared machine
at load 1 to 3), against the fp32 graph, on untrained heads: MobileNetV2 at 224 px 2.3x faster
with unsigned activations but 1.2x with signed ones, and 0.7x when only convolutions are
quantized (a float clip between every pair then costs more than int8 saves); Faster R-CNN
MobileNetV2-FPN at 320 px 1.5x (ROI align, NMS and the level merge stay float). On trained
models (``bench/onnx_export.py``): a 64 px Fashion-MNIST classifier 1.84x, a 128 px scene
detector 1.49x. Dynamic quantization (activations quantized at run time) suits MatMul-heavy
models and ran MobileNetV2 8x to 12x slower, so it is not offered.

:func:`try_int8` quantizes, times both graphs side by side on the same inputs and session
settings, scores both graphs' labels, and records it all in an :class:`Int8Trial`. The accuracy
loss is measured against people's labels when at least ``MIN_LABELLED`` of the images have
them (the fp32 graph's score minus the int8 graph's), otherwise as agreement with PyTorch's
predictions lost, as the parity check scores it (stricter: every change counts, even a change
for the better). Whether the int8 graph is kept is :func:`decide_int8` alone, on those figures,
so the rule is tested without timing anything.
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label
from visionloop.models.artifact import ModelArtifact
from visionloop.models.weights import sha256_file
from visionloop.tasks.agreement import metric_points, points_lost
from visionloop.tasks.onnx_files import EMBEDDING_OUTPUT, INPUT_NAME, INT8_NAME, Int8Trial
from visionloop.tasks.onnx_runtime import (
    images_per_run,
    import_onnxruntime,
    open_session,
    session_predictions,
)
from visionloop.tasks.spec import ExportableFamily

__all__ = [
    "MAX_INT8_LOSS",
    "METHOD",
    "MIN_INT8_SPEEDUP",
    "MIN_LABELLED",
    "Int8Evidence",
    "decide_int8",
    "images_per_second",
    "quantize_static",
    "try_int8",
]

MIN_INT8_SPEEDUP = 1.5
MAX_INT8_LOSS = 1.0  # points of accuracy (or of agreement with PyTorch)
MIN_LABELLED = 20  # labelled images needed to judge int8 by accuracy rather than agreement
METHOD = "static QDQ, per-channel int8 weights, uint8 activations, min-max calibration"
_BATCH = 32  # images per run for graphs that take any number


def decide_int8(
    fp32_images_per_second: float,
    int8_images_per_second: float,
    loss: float,
    *,
    min_speedup: float = MIN_INT8_SPEEDUP,
    max_loss: float = MAX_INT8_LOSS,
) -> tuple[bool, str]:
    """Keep the int8 graph when it is at least ``min_speedup`` times as fast and loses at most
    ``max_loss`` points; the reason names the figures either way."""
    speedup = int8_images_per_second / fp32_images_per_second if fp32_images_per_second > 0 else 0.0
    figures = (
        f"{speedup:.2f}x ({fp32_images_per_second:.1f} -> {int8_images_per_second:.1f} images/s), "
        f"{loss:.2f} points lost"
    )
    problems = []
    if not speedup >= min_speedup:
        problems.append(f"less than {min_speedup:g}x faster")
    if not loss <= max_loss:
        problems.append(f"loses more than {max_loss:g} point{'s' if max_loss != 1 else ''}")
    if problems:
        return False, f"discarded: {' and '.join(problems)}: {figures}"
    return True, f"kept: {figures}"


class _Calibration:
    """Feeds the calibration inputs to the quantizer, one run at a time."""

    def __init__(self, input_name: str, inputs: Sequence[npt.NDArray[np.float32]]) -> None:
        self._items: Iterator[npt.NDArray[np.float32]] = iter(inputs)
        self._name = input_name

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        batch = next(self._items, None)
        return None if batch is None else {self._name: batch}


def quantize_static(
    source: Path, target: Path, input_name: str, calibration: Sequence[npt.NDArray[np.float32]]
) -> None:
    """Write the int8 version of the fp32 graph ``source`` to ``target``, its activation ranges
    calibrated on ``calibration`` (graph inputs, one run each)."""
    if not calibration:
        raise ValidationError(f"{source}: int8 quantization needs at least one calibration image")
    import_onnxruntime("int8 quantization")
    from onnxruntime import quantization

    reader: Any = _Calibration(input_name, calibration)
    with tempfile.TemporaryDirectory(prefix="visionloop-int8-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quiet = logging.getLogger()
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # the quantizer logs advice through the root logger
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:  # shape inference and graph clean-up the quantizer works best on
                    quantization.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
                except Exception:  # noqa: BLE001 - a graph it cannot prepare still quantizes as it is
                    prepared = source
                quantization.quantize_static(
                    str(prepared),
                    str(target),
                    reader,
                    quant_format=quantization.QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=quantization.QuantType.QUInt8,
                    weight_type=quantization.QuantType.QInt8,
                    calibrate_method=quantization.CalibrationMethod.MinMax,
                )
        except Exception as exc:  # the quantizer raises whatever its passes raise
            raise ValidationError(f"{source}: int8 quantization failed: {exc}") from exc
        finally:
            quiet.setLevel(level)


def images_per_second(
    sessions: Mapping[str, Any],
    input_name: str,
    inputs: Sequence[npt.NDArray[np.float32]],
    rounds: int = 3,
) -> dict[str, float]:
    """Images per second of each session over the same ``inputs`` (graph inputs, one run each),
    after one warm-up run each. The sessions take turns within every round and each keeps its
    best round, so load from other processes hits all of them alike and is mostly filtered out."""
    images = sum(len(batch) for batch in inputs)
    best = dict.fromkeys(sessions, float("inf"))
    for session in sessions.values():
        session.run(None, {input_name: inputs[0]})
    for _ in range(rounds):
        for name, session in sessions.items():
            started = time.perf_counter()
            for batch in inputs:
                session.run(None, {input_name: batch})
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: images / seconds if seconds > 0 else float("inf") for name, seconds in best.items()}


@dataclass(frozen=True)
class Int8Evidence:
    """What an int8 trial starts from: the fp32 graph that passed parity and its open session,
    the images it was checked on with the labels PyTorch (``reference``) and the fp32 graph gave
    them, people's labels where there are any, and the images to calibrate on (none: the checked
    images themselves, which the trial records)."""

    fp32: Path
    session: Any
    family: ExportableFamily
    artifact: ModelArtifact
    images: Sequence[npt.NDArray[np.uint8]]
    reference: Sequence[Label]
    fp32_labels: Sequence[Label]
    calibration: Sequence[npt.NDArray[np.uint8]] = ()
    truths: Sequence[Label | None] | None = None

    def graph_inputs(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float32]]:
        step = images_per_run(self.family) or _BATCH
        return [
            self.family.input_batch(images[start : start + step], self.artifact.model)
            for start in range(0, len(images), step)
        ]


def try_int8(
    evidence: Int8Evidence,
    target: Path,
    *,
    min_speedup: float = MIN_INT8_SPEEDUP,
    max_loss: float = MAX_INT8_LOSS,
) -> Int8Trial:
    """Quantize ``evidence.fp32`` to ``target``, time both graphs side by side, score both, and
    decide. ``target`` stays where it is either way; the caller keeps or deletes it."""
    calibration = evidence.calibration or evidence.images
    quantize_static(evidence.fp32, target, INPUT_NAME, evidence.graph_inputs(calibration))
    int8_session = open_session(str(target))  # the fp32 session's settings: the defaults
    speeds = images_per_second(
        {"fp32": evidence.session, "int8": int8_session}, INPUT_NAME, evidence.graph_inputs(evidence.images)
    )
    names = [output.name for output in evidence.family.onnx_outputs]
    int8_labels, _ = session_predictions(
        int8_session, evidence.family, evidence.artifact, INPUT_NAME, names, EMBEDDING_OUTPUT, evidence.images
    )
    basis, scored_images, loss, scores = _accuracy_loss(evidence, int8_labels)
    kept, reason = decide_int8(
        speeds["fp32"], speeds["int8"], loss, min_speedup=min_speedup, max_loss=max_loss
    )
    return Int8Trial(
        kept=kept,
        reason=reason,
        method=METHOD,
        images=len(evidence.images),
        calibration_images=len(calibration),
        calibration_source="separate images" if evidence.calibration else "the parity images",
        fp32_images_per_second=speeds["fp32"],
        int8_images_per_second=speeds["int8"],
        speedup=speeds["int8"] / speeds["fp32"] if speeds["fp32"] > 0 else 0.0,
        loss_basis=basis,
        scored_images=scored_images,
        accuracy_loss=loss,
        scores=scores,
        min_speedup=min_speedup,
        max_loss=max_loss,
        file=INT8_NAME if kept else None,
        sha256=sha256_file(target) if kept else None,
    )


def _accuracy_loss(
    evidence: Int8Evidence, int8_labels: Sequence[Label]
) -> tuple[str, int, float, dict[str, dict[str, float | None]]]:
    """On what basis and how many images the int8 graph is scored, the points it loses, and the
    scores behind them."""
    schema = evidence.artifact.schema
    sizes = [(int(image.shape[0]), int(image.shape[1])) for image in evidence.images]
    truths = evidence.truths or []
    labelled = [index for index, truth in enumerate(truths) if truth is not None]
    if len(labelled) < MIN_LABELLED:
        lost, scored = points_lost(evidence.reference, int8_labels, schema, sizes)
        return "torch", len(sizes), max(lost.values(), default=0.0), {"int8": scored}
    kept_truths = [truths[index] for index in labelled]
    kept_sizes = [sizes[index] for index in labelled]
    fp32 = metric_points(kept_truths, [evidence.fp32_labels[i] for i in labelled], schema, kept_sizes)
    int8 = metric_points(kept_truths, [int8_labels[i] for i in labelled], schema, kept_sizes)
    drops = [
        before - after
        for before, after in zip(fp32.values(), int8.values(), strict=True)
        if before is not None and after is not None
    ]
    return "labels", len(labelled), max(drops, default=0.0), {"fp32": fp32, "int8": int8}
