"""Pre-labeling a detection or segmentation project on ONNX Runtime stores what PyTorch would:
the same objects, boxes, scores and masks, and the same embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tiny_projects import make_project
from visionloop.active.prelabel import PrelabelOptions, prelabel
from visionloop.active.store import load_embeddings
from visionloop.cli.app import app
from visionloop.core.labels import ObjectLabels
from visionloop.core.schema import TaskType
from visionloop.formats.masks import rle_decode
from visionloop.project import Project
from visionloop.tasks.onnx_export import export_project_model

pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.slow  # a detector training step, an export and two pre-labeling runs

runner = CliRunner()


@pytest.fixture(scope="module", params=[TaskType.DETECTION, TaskType.SEGMENTATION], ids=str)
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str]:
    """A tiny project, a one-step model and its ONNX export."""
    root = tmp_path_factory.mktemp("prelabel-onnx-objects")
    project = make_project(root, request.param, per_split=2, unlabeled=4)
    overrides = ["model.image_size=64", "model.max_detections=10", "optim.max_steps=1", "optim.batch_size=2"]
    result = runner.invoke(app, ["-p", str(project.root), "train", *overrides, "--json"])
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.output)["run_id"]
    _, export = export_project_model(project, run_id, parity_images=8)
    assert export.parity.passed and export.images_per_run == 1
    return project, run_id


def _stored(project: Project, run_id: str) -> dict[int, ObjectLabels]:
    with project.open_catalog() as catalog:
        stored = catalog.run_predictions(run_id)
    labels = {item: label for item, (label, _) in stored.items() if isinstance(label, ObjectLabels)}
    assert len(labels) == len(stored)
    return labels


def test_prelabel_on_onnx_runtime_stores_what_torch_would(exported: tuple[Project, str]) -> None:
    project, model = exported
    on_onnx = prelabel(project, model, PrelabelOptions(items="all", workers=0, batch_size=3, runtime="onnx"))
    on_torch = prelabel(project, model, PrelabelOptions(items="all", workers=0, runtime="torch"))
    assert (on_onnx.runtime, on_torch.runtime) == ("onnx", "torch")
    assert on_onnx.predicted == on_torch.predicted == 10
    ours, theirs = _stored(project, on_onnx.run_id), _stored(project, on_torch.run_id)
    assert set(ours) == set(theirs)
    objects = 0
    for item, label in ours.items():
        reference = theirs[item]
        assert label.class_names == reference.class_names
        np.testing.assert_allclose(label.boxes, reference.boxes, atol=1e-2)
        assert label.scores is not None and reference.scores is not None
        np.testing.assert_allclose(label.scores, reference.scores, atol=1e-4)
        if reference.masks is not None:
            assert label.masks is not None
            for mine, their in zip(label.masks, reference.masks, strict=True):
                assert mine is not None and their is not None
                assert (rle_decode(mine) != rle_decode(their)).sum() <= 2
        objects += len(label)
    assert objects > 0
    our_ids, our_rows = load_embeddings(Path(on_onnx.embeddings))
    their_ids, their_rows = load_embeddings(Path(on_torch.embeddings))
    assert our_ids.tolist() == their_ids.tolist()
    np.testing.assert_allclose(our_rows, their_rows, rtol=2e-3, atol=2e-3)  # stored as float16
