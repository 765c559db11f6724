"""The quality gate names every check, and the robustness summary computes relative drops."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest

from visionloop.core.errors import ValidationError
from visionloop.evaluation.gate import evaluate_gate, robustness_summary
from visionloop.project.config import GateConfig


def test_gate_fails_below_threshold_and_names_every_check() -> None:
    config = GateConfig(min_accuracy=0.6, max_calibration_error=0.1, min_macro_f1=0.4)
    result = evaluate_gate(config, {"accuracy": 0.512, "calibration_error": 0.05, "macro_f1": 0.5})
    assert not result.passed
    assert "accuracy 0.512 < min_accuracy 0.6" in result.reasons
    assert "calibration_error 0.05 <= max_calibration_error 0.1" in result.reasons
    assert "macro_f1 0.5 >= min_macro_f1 0.4" in result.reasons
    assert [check.passed for check in result.checks] == [False, True, True]


def test_gate_passes_good_model_with_numpy_values() -> None:
    config = GateConfig(min_map=0.5, min_map50=0.7, max_pixel_error=4.0)
    metrics = {"map": np.float64(0.62), "map50": 0.9, "pixel_error": np.float32(3.0)}
    result = evaluate_gate(config, metrics)
    assert result.passed, result.reasons
    assert len(result.reasons) == 3


def test_missing_or_undefined_metric_fails() -> None:
    config = GateConfig(min_mask_map=0.3, min_oks_ap=0.3, min_map=0.1)
    result = evaluate_gate(config, {"map": None, "oks_ap": float("nan")})
    assert not result.passed
    assert result.reasons == [
        "metric map was not measured",
        "metric mask_map was not measured",
        "metric oks_ap was not measured",
    ]


def test_gate_without_thresholds_passes() -> None:
    result = evaluate_gate(GateConfig(), {})
    assert result.passed and result.reasons == []


def test_config_rejects_unknown_and_out_of_range_thresholds() -> None:
    with pytest.raises(pydantic.ValidationError):
        GateConfig.model_validate({"min_acuracy": 0.5})
    with pytest.raises(pydantic.ValidationError):
        GateConfig(min_accuracy=1.5)


def test_robustness_summary_and_gate_on_max_drop() -> None:
    summary = robustness_summary(0.8, {"gaussian_noise": {1: 0.72, 2: 0.6}, "brightness": {1: 0.8, 3: 0.76}})
    noise = summary["corruptions"]["gaussian_noise"]
    assert noise["drops"] == pytest.approx({"1": 0.1, "2": 0.25})
    assert noise["mean_drop"] == pytest.approx(0.175)
    assert summary["corruptions"]["brightness"]["drops"] == pytest.approx({"1": 0.0, "3": 0.05})
    assert summary["max_drop"] == pytest.approx(0.25)
    assert summary["worst"] == "gaussian_noise@2"
    assert summary["mean_drop"] == pytest.approx((0.1 + 0.25 + 0.0 + 0.05) / 4)

    result = evaluate_gate(GateConfig(max_robustness_drop=0.2), {"robustness": summary})
    assert not result.passed
    assert result.reasons == ["robustness.max_drop 0.25 > max_robustness_drop 0.2"]


def test_robustness_for_lower_is_better_metric() -> None:
    summary = robustness_summary(2.0, {"gaussian_blur": {1: 3.0}}, higher_is_better=False)
    assert summary["max_drop"] == pytest.approx(0.5)


def test_robustness_needs_positive_clean_value_and_handles_no_corruptions() -> None:
    with pytest.raises(ValidationError, match="positive"):
        robustness_summary(0.0, {"gaussian_noise": {1: 0.0}})
    empty = robustness_summary(0.5, {})
    assert empty["max_drop"] is None and empty["worst"] is None
