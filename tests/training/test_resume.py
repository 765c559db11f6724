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
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from tiny_projects import RESUMABLE_TRAINING, make_project
from visionloop.cli.app import app
from visionloop.core.schema import TaskType
from visionloop.training.trainer import Trainer

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


def test_a_stop_after_the_last_steps_checkpoint_still_records_the_last_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the crash tests: killed after the last step was checkpointed but before its
    epoch was validated, a resumed run found every step done and ended without that epoch's
    metrics."""
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=8)
    runner = CliRunner()
    validate = Trainer._validate
    calls: list[int] = []

    def stopped_at_the_last(self: Trainer, model: Any, state: Any) -> dict[str, float]:
        calls.append(state.step)
        if len(calls) == 2:  # the last epoch's validation: every step is done and checkpointed
            raise KeyboardInterrupt
        return validate(self, model, state)

    monkeypatch.setattr(Trainer, "_validate", stopped_at_the_last)
    stopped = runner.invoke(app, ["-p", str(project.root), "train", *OVERRIDES, "--json"])
    assert stopped.exit_code == 130, stopped.output  # the CLI turns Ctrl-C into exit status 130
    monkeypatch.setattr(Trainer, "_validate", validate)
    (run_dir,) = (project.root / "runs").iterdir()
    resumed = runner.invoke(app, ["-p", str(project.root), "train", "--resume", run_dir.name, "--json"])
    assert resumed.exit_code == 0, resumed.output
    with project.open_catalog() as catalog:
        epochs = {epoch for _, epoch, name, _ in catalog.run_metrics(run_dir.name) if name == "val_accuracy"}
    assert epochs == {0, 1}
