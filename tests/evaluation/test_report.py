"""The report writes sorted JSON and an escaped, self-contained HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from visionloop.evaluation.gate import evaluate_gate, robustness_summary
from visionloop.evaluation.report import write_report
from visionloop.metrics.classification import classification_metrics
from visionloop.project.config import GateConfig

EVIL = "<script>alert(1)</script>"


def metrics() -> dict[str, object]:
    classes = ["cat", EVIL]
    probabilities = np.array([[0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    out = classification_metrics(["cat", EVIL, "cat"], ["cat", EVIL, EVIL], probabilities, classes)
    out["robustness"] = robustness_summary(out["accuracy"], {"gaussian_noise": {1: 0.5, 2: 1 / 3}})
    out["extra_numpy"] = {"value": np.float32(0.25), "count": np.int64(3), "undefined": float("nan")}
    return out


def test_report_escapes_text_and_shows_the_verdict(tmp_path: Path) -> None:
    plot = tmp_path / "elsewhere" / "plot one.png"
    plot.parent.mkdir()
    plot.write_bytes(b"\x89PNG\r\n\x1a\n")
    data = metrics()
    gate = evaluate_gate(GateConfig(min_accuracy=0.9, max_calibration_error=0.9), data)
    json_path, html_path = write_report(tmp_path / "report", data, gate, {f"PR {EVIL}": plot}, f"Run {EVIL}")

    page = html_path.read_text(encoding="utf-8")
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "FAILED" in page and 'class="verdict fail"' in page
    assert "accuracy 0.666667 &lt; min_accuracy 0.9" in page
    assert 'src="plot%20one.png"' in page  # copied next to the report, relative reference
    assert (tmp_path / "report" / "plot one.png").read_bytes() == plot.read_bytes()
    assert "gaussian_noise" in page and "severity 2" in page  # robustness table
    assert "http" not in page  # nothing external

    loaded = json.loads(json_path.read_text(encoding="utf-8"))
    assert list(loaded) == sorted(loaded)
    assert loaded["extra_numpy"] == {"count": 3, "undefined": None, "value": 0.25}
    assert loaded["gate"]["passed"] is False
    assert loaded["per_class"][EVIL]["support"] == 1
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "metrics.json",
        "plot one.png",
        "report.html",
    ]


def test_report_without_gate_or_images(tmp_path: Path) -> None:
    json_path, html_path = write_report(
        tmp_path, {"map": 0.5, "per_class_ap": {"a": None}}, None, {}, "Detection"
    )
    assert "Quality gate" not in html_path.read_text(encoding="utf-8")
    assert json.loads(json_path.read_text(encoding="utf-8")) == {"map": 0.5, "per_class_ap": {"a": None}}
