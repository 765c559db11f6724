"""Quality gate: thresholds a model's metrics must meet, and the robustness summary it can check.

Each threshold of :class:`GateConfig` reads one entry of the metrics dict (:data:`GATE_METRICS`):

================================  ==========================================  =====
threshold                         metrics entry                               kind
================================  ==========================================  =====
``min_accuracy``                  ``metrics["accuracy"]``                     >=
``min_macro_f1``                  ``metrics["macro_f1"]``                     >=
``max_calibration_error``         ``metrics["calibration_error"]``            <=
``min_map``                       ``metrics["map"]`` (box AP .50:.95)         >=
``min_map50``                     ``metrics["map50"]``                        >=
``min_mask_map``                  ``metrics["mask_map"]``                     >=
``min_oks_ap``                    ``metrics["oks_ap"]``                       >=
``max_pixel_error``               ``metrics["pixel_error"]`` (mean, pixels)   <=
``max_robustness_drop``           ``metrics["robustness"]["max_drop"]``       <=
================================  ==========================================  =====

That is the layout the task metrics of :mod:`visionloop.tasks.metrics` produce (classification or
box metrics at the top level, mask metrics prefixed ``mask_``, keypoint OKS AP as ``oks_ap`` and
the mean pixel error as ``pixel_error``), with :func:`robustness_summary` under ``"robustness"``.
A threshold whose entry is missing, ``None`` (undefined) or not a finite number fails the gate.
The thresholds themselves are the project's ``gate:`` section
(:class:`visionloop.project.config.GateConfig`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from visionloop.core.errors import ValidationError
from visionloop.project.config import GateConfig

GATE_METRICS: dict[str, tuple[tuple[str, ...], Literal["min", "max"]]] = {
    "min_accuracy": (("accuracy",), "min"),
    "min_macro_f1": (("macro_f1",), "min"),
    "max_calibration_error": (("calibration_error",), "max"),
    "min_map": (("map",), "min"),
    "min_map50": (("map50",), "min"),
    "min_mask_map": (("mask_map",), "min"),
    "min_oks_ap": (("oks_ap",), "min"),
    "max_pixel_error": (("pixel_error",), "max"),
    "max_robustness_drop": (("robustness", "max_drop"), "max"),
}

_SIGNS = {("min", True): ">=", ("min", False): "<", ("max", True): "<=", ("max", False): ">"}


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One threshold checked: the metric's dotted path, the measured value (``None`` if absent)."""

    threshold_name: str
    metric: str
    value: float | None
    threshold: float
    passed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class GateResult:
    """The verdict: ``passed`` when every configured check passed; one reason per check."""

    passed: bool
    reasons: list[str]
    checks: tuple[GateCheck, ...] = field(default=())


def evaluate_gate(config: GateConfig, metrics: Mapping[str, Any]) -> GateResult:
    """Check every threshold set in ``config`` against ``metrics`` (see the module docstring)."""
    checks = []
    for name, (path, kind) in GATE_METRICS.items():
        threshold = getattr(config, name)
        if threshold is None:
            continue
        metric = ".".join(path)
        value = _lookup(metrics, path)
        if value is None:
            checks.append(
                GateCheck(name, metric, None, threshold, False, f"metric {metric} was not measured")
            )
            continue
        passed = value >= threshold if kind == "min" else value <= threshold
        sign = _SIGNS[kind, passed]
        reason = f"{metric} {_number(value)} {sign} {name} {_number(threshold)}"
        checks.append(GateCheck(name, metric, value, threshold, passed, reason))
    return GateResult(
        passed=all(check.passed for check in checks),
        reasons=[check.reason for check in checks],
        checks=tuple(checks),
    )


def robustness_summary(
    clean_value: float, corrupted: Mapping[str, Mapping[int, float]], *, higher_is_better: bool = True
) -> dict[str, Any]:
    """Relative drops of a headline metric under corruptions.

    ``corrupted`` maps corruption name -> severity -> the metric measured on corrupted inputs. The
    relative drop is ``(clean - value) / clean`` (or ``(value - clean) / clean`` for metrics where
    lower is better, such as pixel error), so positive means worse. Returns ``clean``,
    ``corruptions`` (name -> ``values`` and ``drops`` keyed by severity as a string, and
    ``mean_drop``), ``mean_drop`` over every entry, ``max_drop`` and ``worst``
    (``"name@severity"``); the last three are ``None`` without any entry.
    """
    clean = float(clean_value)
    if not math.isfinite(clean) or clean <= 0:
        raise ValidationError(
            f"the clean metric must be a positive number to measure drops, got {clean_value}"
        )
    per_corruption: dict[str, Any] = {}
    every: list[tuple[float, str]] = []
    for name, by_severity in corrupted.items():
        values: dict[str, float] = {}
        drops: dict[str, float] = {}
        for severity, raw in sorted(by_severity.items()):
            value = float(raw)
            if not math.isfinite(value):
                raise ValidationError(f"{name} severity {severity}: the metric is not a finite number")
            drop = (clean - value) / clean if higher_is_better else (value - clean) / clean
            values[str(severity)] = value
            drops[str(severity)] = drop
            every.append((drop, f"{name}@{severity}"))
        per_corruption[name] = {
            "values": values,
            "drops": drops,
            "mean_drop": sum(drops.values()) / len(drops) if drops else None,
        }
    worst = max(every) if every else None
    return {
        "clean": clean,
        "higher_is_better": higher_is_better,
        "corruptions": per_corruption,
        "mean_drop": sum(drop for drop, _ in every) / len(every) if every else None,
        "max_drop": worst[0] if worst else None,
        "worst": worst[1] if worst else None,
    }


def _lookup(metrics: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = metrics
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars are Real
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _number(value: float) -> str:
    return f"{value:.6g}"
