"""The edge runtime runs from an environment with ONNX Runtime, numpy, Pillow, pydantic and
fsspec only (``.venv-edge``, visionloop installed with ``--no-deps``), where torch cannot even be
imported, and predicts there what it predicts here."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from visionloop.core.labels import ClassLabel, label_from_dict
from visionloop.edge.model import EdgeModel
from visionloop.imaging.decode import decode_rgb_reduced
from visionloop.tasks.rescale import rescale_label

pytestmark = pytest.mark.slow
REPO_SRC = Path(__file__).resolve().parents[2] / "src"


def _run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return subprocess.run(
        [str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_torch_is_not_there(edge_python: Path, tmp_path: Path) -> None:
    probe = _run(edge_python, "-c", "import torch", cwd=tmp_path)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    where = _run(edge_python, "-c", "import visionloop; print(visionloop.__file__)", cwd=tmp_path)
    assert where.returncode == 0 and Path(where.stdout.strip()).parent.parent == REPO_SRC  # this checkout


def test_python_m_visionloop_edge_runs_there(  # type: ignore[no-untyped-def]
    edge_python: Path, edge_project, photo_folder: Path, tmp_path: Path
) -> None:
    output, captures = tmp_path / "edge.jsonl", tmp_path / "captures"
    args = ["--model", str(edge_project.model), "--source", str(photo_folder), "-o", str(output)]
    capture = ["--capture-to", str(captures), "--spool", str(tmp_path / "spool"), "--capture-below", "0.6"]
    result = _run(edge_python, "-m", "visionloop.edge", "run", *args, *capture, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["predicted"], len(summary["failed"]), summary["pending_upload"]) == (9, 1, 0)
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    model = EdgeModel.open(edge_project.model)  # the same model in this (full) environment
    for line in lines:
        data = Path(line["source"]).read_bytes()
        pixels, size = decode_rgb_reduced(data, model.side, resize_to=model.squashed_size)
        [reference] = model.predict([pixels])
        reference = rescale_label(reference, pixels.shape[:2], size)
        ours = label_from_dict(line["prediction"])
        assert isinstance(ours, ClassLabel) and isinstance(reference, ClassLabel)
        assert ours.class_name == reference.class_name
        assert ours.score == pytest.approx(reference.score, abs=1e-6)
    captured = sum(summary["captured"].values())
    assert captured == sum(line["score"] < 0.6 for line in lines) > 0
    assert len(list((captures / "predictions").rglob("*.prediction.json"))) == captured
