"""``make demo`` (scripts/demo.py) runs both loops on real Fashion-MNIST and writes the report;
here with a small pool and few epochs, the same script and commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from visionloop.datasets import fashion_mnist

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "demo.py"


@pytest.mark.slow
@pytest.mark.skipif(not fashion_mnist.available(), reason="needs Debian's dataset-fashion-mnist")
def test_the_demo_writes_the_loop_report(tmp_path: Path) -> None:
    args = ["--workdir", str(tmp_path), "--pool-per-class", "14", "--eval-per-class", "3"]
    args += ["--rounds", "2", "--budget", "10", "--calibration", "60", "--epochs", "1"]
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900, check=False
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "Open the report:" in completed.stdout
    report = Path(completed.stdout.rsplit("Open the report:", 1)[1].strip())
    page = report.read_text(encoding="utf-8")
    assert "random selection" in page and "hybrid selection" in page  # both loops, one report
    for part in ("Risk-coverage", "Confusion matrix", "Most uncertain", "Auto-accepted"):
        assert part in page
    assert (report.parent / "learning_curve.png").stat().st_size > 1000
