"""A training run killed with SIGKILL mid-epoch resumes to exactly the weights of an unbroken run."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from tiny_projects import RESUMABLE_TRAINING, make_project
from visionloop.cli.app import app
from visionloop.core.schema import TaskType

OVERRIDES = RESUMABLE_TRAINING


def _checkpoint_position(path: Path) -> tuple[int, int] | None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["state"]
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError):  # being replaced: try again
        return None
    return int(state["step"]), int(state["step_in_epoch"])


def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=8)
    runner = CliRunner()
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "visionloop.cli", "-p", str(project.root), "train", *OVERRIDES, "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    runs = project.root / "runs"
    killed_at = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        checkpoints = list(runs.glob("*/checkpoints/checkpoint.pt")) if runs.is_dir() else []
        position = _checkpoint_position(checkpoints[0]) if checkpoints else None
        if position is not None and position[0] >= 5 and position[1] > 0:  # in the second epoch
            os.kill(process.pid, signal.SIGKILL)
            killed_at = position
            break
        time.sleep(0.01)
    process.wait(timeout=60)
    assert killed_at is not None, f"training ended before it could be killed: {process.stderr.read()!r}"
    assert process.returncode == -signal.SIGKILL
    (run_dir,) = runs.iterdir()
    assert not (run_dir / "model" / "model.safetensors").exists()

    resumed = runner.invoke(app, ["-p", str(project.root), "train", "--resume", run_dir.name, "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.output)["steps"] == 8

    fresh = runner.invoke(app, ["-p", str(project.root), "train", *OVERRIDES, "--json"])
    assert fresh.exit_code == 0, fresh.output
    unbroken = load_file(Path(json.loads(fresh.output)["model_path"]) / "model.safetensors")
    after_kill = load_file(run_dir / "model" / "model.safetensors")
    assert unbroken.keys() == after_kill.keys()
    different = [name for name in unbroken if not torch.equal(unbroken[name], after_kill[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
