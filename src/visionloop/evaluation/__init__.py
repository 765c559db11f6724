"""Evaluation: robustness corruptions, the quality gate, plots, explanations and reports around
the metrics of :mod:`visionloop.metrics`.

Plots need matplotlib (``visionloop[torch]``) and explanations torch and captum
(``visionloop[explain]``); both are imported only when used.
"""

from visionloop.evaluation.corruptions import CORRUPTIONS, SEVERITY_PARAMETERS, corrupt
from visionloop.evaluation.gate import GATE_METRICS, GateResult, evaluate_gate, robustness_summary
from visionloop.evaluation.report import write_report

__all__ = [
    "CORRUPTIONS",
    "GATE_METRICS",
    "SEVERITY_PARAMETERS",
    "GateResult",
    "corrupt",
    "evaluate_gate",
    "robustness_summary",
    "write_report",
]
