"""Opening an exported model without PyTorch: the folder or its model.onnx; clear refusals for
a folder that is not a model, a model without (or with a stale) export, an unsupported family;
and the same labels as the ONNX Runtime predictor pre-labeling uses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tiny_models import photos, write_model
from visionloop.core.errors import ValidationError
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.edge.decoders import DECODERS, decoder_for
from visionloop.edge.model import EdgeModel
from visionloop.models.artifact import read_artifact
from visionloop.tasks.onnx_files import ONNX_META_NAME, ONNX_NAME, read_export
from visionloop.tasks.onnx_runtime import OnnxModel
from visionloop.tasks.registry import TASKS
from visionloop.tasks.spec import ExportableFamily


def _onnx_model(folder: Path) -> OnnxModel:
    artifact = read_artifact(folder)
    return OnnxModel.open(artifact, read_export(folder, artifact))


def test_classifier_labels_equal_the_onnx_predictor(edge_project) -> None:  # type: ignore[no-untyped-def]
    images = photos(9, seed=7)
    ours = EdgeModel.open(edge_project.model).predict(images)
    theirs = _onnx_model(edge_project.model).predict(images)
    assert len(ours) == len(theirs) == 9
    for mine, reference in zip(ours, theirs, strict=True):
        assert isinstance(mine, ClassLabel) and isinstance(reference, ClassLabel)
        assert mine.class_name == reference.class_name
        assert mine.score == pytest.approx(reference.score, abs=1e-6)
        np.testing.assert_allclose(mine.probabilities or (), reference.probabilities or (), atol=1e-6)


def test_pose_labels_equal_the_onnx_predictor(pose_model: Path) -> None:
    images = photos(5, seed=8)
    ours = EdgeModel.open(pose_model / ONNX_NAME).predict(images)  # the graph's path works too
    theirs = _onnx_model(pose_model).predict(images)
    for mine, reference in zip(ours, theirs, strict=True):
        assert isinstance(mine, ObjectLabels) and isinstance(reference, ObjectLabels)
        np.testing.assert_allclose(mine.keypoints, reference.keypoints, atol=1e-5)
        np.testing.assert_allclose(mine.keypoint_scores, reference.keypoint_scores, atol=1e-6)
        np.testing.assert_allclose(mine.boxes, reference.boxes, atol=1e-5)


def test_the_model_names_itself_as_training_does(edge_project) -> None:  # type: ignore[no-untyped-def]
    model = EdgeModel.open(edge_project.model)
    assert model.version == read_artifact(edge_project.model).version == f"run:{edge_project.run_id}"
    assert (model.family, model.side, model.precision) == ("classifier", 32, "fp32")


def test_a_folder_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a visionloop model"):
        EdgeModel.open(tmp_path)
    with pytest.raises(ValidationError, match="no such model folder"):
        EdgeModel.open(tmp_path / "missing")
    other = tmp_path / "other.onnx"
    other.write_bytes(b"")
    with pytest.raises(ValidationError, match=r"expected the model\.onnx of a model folder"):
        EdgeModel.open(other)


def test_a_model_without_an_export_says_how_to_make_one(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    write_model(folder, "classifier", image_size=32)
    with pytest.raises(ValidationError, match=r"no ONNX export.*export-model MODEL --format onnx"):
        EdgeModel.open(folder)


def test_a_stale_or_replaced_export_is_refused(pose_model: Path, tmp_path: Path) -> None:
    stale = Path(shutil.copytree(pose_model, tmp_path / "stale"))
    meta = json.loads((stale / ONNX_META_NAME).read_text())
    meta["weights_sha256"] = "0" * 64
    (stale / ONNX_META_NAME).write_text(json.dumps(meta))
    with pytest.raises(ValidationError, match="is stale"):
        EdgeModel.open(stale)
    replaced = Path(shutil.copytree(pose_model, tmp_path / "replaced"))
    (replaced / ONNX_NAME).write_bytes((replaced / ONNX_NAME).read_bytes() + b"\0")
    with pytest.raises(ValidationError, match="changed since it was exported"):
        EdgeModel.open(replaced)


def test_the_weights_are_not_needed_on_the_device(pose_model: Path, tmp_path: Path) -> None:
    device = tmp_path / "device"
    device.mkdir()
    for name in ("model.json", ONNX_META_NAME, ONNX_NAME):
        shutil.copy(pose_model / name, device / name)
    assert len(EdgeModel.open(device).predict(photos(1))) == 1


def test_a_family_without_an_edge_decoder_is_refused() -> None:
    with pytest.raises(
        ValidationError, match=r"m: the edge runtime cannot run yolo models yet \(supported: classifier"
    ):
        decoder_for("yolo", "m")


def test_every_exportable_family_has_an_edge_decoder() -> None:
    exportable = {
        name
        for spec in TASKS.values()
        for name, family in spec.families.items()
        if isinstance(family, ExportableFamily)
    }
    assert exportable == set(DECODERS)
