"""Choosing the runtime: ONNX Runtime only for an export of exactly these weights; a stale,
replaced or missing export falls back to PyTorch under ``auto`` (saying why) and fails ``onnx``."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from tiny_models import photos, write_model
from visionloop.core.errors import ConfigError, ValidationError
from visionloop.models.artifact import read_artifact
from visionloop.tasks.onnx_export import export_onnx
from visionloop.tasks.onnx_files import ONNX_META_NAME, ONNX_NAME, read_export
from visionloop.tasks.onnx_runtime import OnnxModel, SessionSettings
from visionloop.tasks.predictor import load_predictor
from visionloop.tasks.registry import TrainedModel

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx") / "model"
    write_model(folder, "classifier", image_size=32)
    export_onnx(folder, photos(2))
    return folder


@pytest.fixture
def exported(pristine: Path, tmp_path: Path) -> Path:
    """A model folder with a current export, for this test alone to damage."""
    return Path(shutil.copytree(pristine, tmp_path / "model"))


def test_without_an_export_auto_runs_torch_and_onnx_refuses(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    write_model(folder, "classifier", image_size=32)
    predictor, note = load_predictor(folder, "auto")
    assert isinstance(predictor, TrainedModel) and "no ONNX export" in note
    with pytest.raises(ValidationError, match="no ONNX export"):
        load_predictor(folder, "onnx")


def test_an_export_of_older_weights_is_ignored(exported: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_model(exported, "classifier", image_size=32, seed=1)  # retrained: new weights, old export
    with caplog.at_level(logging.WARNING, logger="visionloop.tasks.predictor"):
        predictor, note = load_predictor(exported, "auto")
    assert predictor.runtime == "torch"
    assert "is stale" in note and "weights sha256" in note
    assert any("is stale" in record.getMessage() for record in caplog.records)
    with pytest.raises(ValidationError, match="is stale"):
        load_predictor(exported, "onnx")


def test_an_export_at_another_input_size_is_ignored(exported: Path) -> None:
    meta_path = exported / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["model"]["image_size"] = 48
    meta_path.write_text(json.dumps(meta))
    predictor, note = load_predictor(exported, "auto")
    assert predictor.runtime == "torch" and "at 32 px" in note


def test_a_replaced_graph_is_ignored(exported: Path) -> None:
    (exported / ONNX_NAME).write_bytes((exported / ONNX_NAME).read_bytes() + b"\0")
    predictor, note = load_predictor(exported, "auto")
    assert predictor.runtime == "torch" and "changed since it was exported" in note


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda meta: meta.unlink(), "missing"),
        (lambda meta: meta.write_text("{not json"), "unreadable export description"),
        (lambda meta: meta.write_text(json.dumps({"version": 1})), "malformed export description"),
        (lambda meta: meta.write_text(json.dumps({"version": 99})), "unsupported export description"),
    ],
)
def test_a_damaged_description_is_ignored(exported: Path, damage: object, reason: str) -> None:
    damage(exported / ONNX_META_NAME)  # type: ignore[operator]
    predictor, note = load_predictor(exported, "auto")
    assert predictor.runtime == "torch" and reason in note


def test_torch_is_used_when_asked_and_unknown_runtimes_are_refused(exported: Path) -> None:
    predictor, note = load_predictor(exported, "torch")
    assert predictor.runtime == "torch" and note == ""
    with pytest.raises(ConfigError, match="choose from auto, onnx, torch"):
        load_predictor(exported, "tensorrt")


def test_session_settings_change_speed_not_results(exported: Path) -> None:
    artifact = read_artifact(exported)
    export = read_export(exported, artifact)
    images = photos(5, seed=3)
    default = OnnxModel.open(artifact, export).outputs(images)
    frugal = OnnxModel.open(artifact, export, SessionSettings(threads=1, busy_wait=False)).outputs(images)
    for ours, theirs in zip(default, frugal, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
