"""Pre-labeling runs on ONNX Runtime when the model has a current export and stores what the
PyTorch model would: the same classes, scores and embeddings; the run records which runtime ran."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tiny_projects import make_project
from visionloop.active.prelabel import PrelabelOptions, prelabel
from visionloop.active.store import load_embeddings
from visionloop.cli.app import app
from visionloop.core.errors import ValidationError
from visionloop.core.labels import ClassLabel
from visionloop.core.schema import TaskType
from visionloop.project import Project
from visionloop.tasks.onnx_export import export_project_model
from visionloop.tasks.onnx_files import ONNX_META_NAME
from visionloop.tasks.registry import resolve_model_folder

pytest.importorskip("onnxruntime")

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str]:
    """A tiny classification project, a one-step model and its ONNX export."""
    root = tmp_path_factory.mktemp("prelabel-onnx")
    project = make_project(root, TaskType.CLASSIFICATION, per_split=3, unlabeled=10)
    result = runner.invoke(
        app, ["-p", str(project.root), "train", "model.image_size=32", "optim.max_steps=1", "--json"]
    )
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.output)["run_id"]
    export_project_model(project, run_id, parity_images=8)
    return project, run_id


def _stored(project: Project, run_id: str) -> dict[int, ClassLabel]:
    with project.open_catalog() as catalog:
        stored = catalog.run_predictions(run_id)
    labels = {item: label for item, (label, _) in stored.items() if isinstance(label, ClassLabel)}
    assert len(labels) == len(stored)
    return labels


def test_prelabel_on_onnx_runtime_stores_what_torch_would(exported: tuple[Project, str]) -> None:
    project, model = exported
    on_onnx = prelabel(project, model, PrelabelOptions(items="all", workers=0, batch_size=7))
    on_torch = prelabel(project, model, PrelabelOptions(items="all", workers=0, runtime="torch"))
    assert (on_onnx.runtime, on_torch.runtime) == ("onnx", "torch")
    assert on_onnx.runtime_note == "" and on_onnx.model_version == on_torch.model_version
    assert on_onnx.predicted == on_torch.predicted == 19
    ours, theirs = _stored(project, on_onnx.run_id), _stored(project, on_torch.run_id)
    assert set(ours) == set(theirs)
    for item, label in ours.items():
        assert label.class_name == theirs[item].class_name
        assert label.score == pytest.approx(theirs[item].score, abs=1e-4)
    our_ids, our_rows = load_embeddings(Path(on_onnx.embeddings))
    their_ids, their_rows = load_embeddings(Path(on_torch.embeddings))
    assert our_ids.tolist() == their_ids.tolist()
    np.testing.assert_allclose(our_rows, their_rows, rtol=2e-3, atol=2e-3)  # stored as float16
    with project.open_catalog() as catalog:
        run = catalog.get_run(on_onnx.run_id)
    assert run.config["runtime"] == "auto" and run.inputs["runtime"] == "onnx"


def test_a_stale_export_falls_back_to_torch_and_says_why(
    exported: tuple[Project, str], tmp_path: Path
) -> None:
    project, model = exported
    folder = Path(shutil.copytree(resolve_model_folder(project, model), tmp_path / "model"))
    meta = json.loads((folder / ONNX_META_NAME).read_text())
    meta["weights_sha256"] = "0" * 64  # as if the weights had been retrained since the export
    (folder / ONNX_META_NAME).write_text(json.dumps(meta))
    report = prelabel(project, str(folder), PrelabelOptions(workers=0, limit=3))
    assert report.runtime == "torch" and "is stale" in report.runtime_note
    with pytest.raises(ValidationError, match=r"cannot run with ONNX Runtime: .* is stale"):
        prelabel(project, str(folder), PrelabelOptions(workers=0, limit=3, runtime="onnx"))


def test_the_cli_takes_a_runtime(exported: tuple[Project, str]) -> None:
    project, model = exported
    args = ["-p", str(project.root), "prelabel", model, "--limit", "2", "--workers", "0"]
    result = runner.invoke(app, [*args, "--runtime", "torch", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["runtime"] == "torch"
    result = runner.invoke(app, [*args, "--runtime", "onnx"])
    assert result.exit_code == 0, result.output
    assert "on onnx" in result.output
    result = runner.invoke(app, [*args, "--runtime", "tensorrt"])
    assert result.exit_code != 0 and "auto, onnx or torch" in result.output


def test_decoding_workers_leave_the_threads_as_they_were(exported: tuple[Project, str]) -> None:
    project, model = exported
    before = torch.get_num_threads()
    for runtime in ("torch", "onnx"):
        report = prelabel(project, model, PrelabelOptions(workers=1, limit=4, runtime=runtime))  # type: ignore[arg-type]
        assert report.runtime == runtime and report.predicted == 4
    assert torch.get_num_threads() == before


def test_resizing_in_the_decoding_workers_changes_no_prediction(exported: tuple[Project, str]) -> None:
    """With ``draft`` the workers squash images to the model's input; without, the model does."""
    project, model = exported
    early = prelabel(project, model, PrelabelOptions(items="all", workers=1))
    late = prelabel(project, model, PrelabelOptions(items="all", workers=1, draft=False))
    ours, theirs = _stored(project, early.run_id), _stored(project, late.run_id)
    assert len(ours) == 19 and set(ours) == set(theirs)
    for item, label in ours.items():
        assert (label.class_name, label.score) == (theirs[item].class_name, theirs[item].score)
