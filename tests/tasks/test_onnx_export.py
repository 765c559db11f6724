"""ONNX export: the graph returns the family's outputs and the embedding, ONNX Runtime agrees with
PyTorch, the sidecar records what it came from, and an export that disagrees is not kept."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from contextlib import ExitStack as DoesNotRaise
from pathlib import Path

import numpy as np
import pytest

from tiny_models import photos, write_model
from visionloop.core.errors import ValidationError
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.models.weights import sha256_file
from visionloop.tasks.classification import ClassifierFamily
from visionloop.tasks.onnx_export import export_onnx, parity
from visionloop.tasks.onnx_files import ONNX_META_NAME, ONNX_NAME
from visionloop.tasks.onnx_runtime import OnnxModel
from visionloop.tasks.predictor import load_predictor

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx") / "model"
    write_model(folder, "classifier", image_size=32)
    export_onnx(folder, photos(8))
    return folder


def test_export_writes_the_graph_and_what_it_came_from(classifier: Path) -> None:
    meta = json.loads((classifier / ONNX_META_NAME).read_text())
    artifact = json.loads((classifier / "model.json").read_text())
    assert meta["weights_sha256"] == artifact["weights_sha256"]
    assert meta["onnx_sha256"] == sha256_file(classifier / ONNX_NAME)
    assert (meta["opset"], meta["image_size"], meta["family"]) == (17, 32, "classifier")
    assert meta["input_name"] == "images"
    assert meta["outputs"] == ["logits", "embedding"]
    assert meta["parity"]["passed"] and meta["parity"]["images"] == 8
    assert meta["parity"]["agreement"] == 1.0
    assert meta["parity"]["max_abs_diff"]["logits"] < 1e-4
    assert (meta["version"], meta["images_per_run"], meta["int8"]) == (2, None, None)


def test_onnx_runtime_predicts_what_torch_predicts(classifier: Path) -> None:
    onnx, note = load_predictor(classifier, "auto")
    torch_model, _ = load_predictor(classifier, "torch")
    assert isinstance(onnx, OnnxModel) and note == ""
    assert (onnx.runtime, torch_model.runtime) == ("onnx", "torch")
    assert onnx.version == torch_model.version
    images = photos(20, seed=1)  # other images than the parity check's, batch size not seen before
    ours, our_rows = onnx.predict_and_embed(images)
    theirs, their_rows = torch_model.predict_and_embed(images)
    assert our_rows.dtype == np.float32 and our_rows.shape == their_rows.shape == (20, 1280)
    np.testing.assert_allclose(our_rows, their_rows, atol=1e-4)
    for mine, reference in zip(ours, theirs, strict=True):
        assert isinstance(mine, ClassLabel) and isinstance(reference, ClassLabel)
        assert mine.class_name == reference.class_name
        assert mine.score == pytest.approx(reference.score, abs=1e-5)
        assert mine.probabilities is not None and reference.probabilities is not None
        np.testing.assert_allclose(mine.probabilities, reference.probabilities, atol=1e-5)
    quick = onnx.predict(images[:3])
    assert [label.class_name for label in quick if isinstance(label, ClassLabel)] == [
        label.class_name for label in theirs[:3] if isinstance(label, ClassLabel)
    ]


def test_heatmap_pose_models_export_too(tmp_path: Path) -> None:
    folder = tmp_path / "pose"
    write_model(folder, "heatmap", image_size=64)
    export = export_onnx(folder, photos(4))
    assert export.outputs == ["scoremaps", "locref", "embedding"] and export.parity.passed
    onnx, _ = load_predictor(folder, "onnx")
    torch_model, _ = load_predictor(folder, "torch")
    images = photos(3, seed=2)
    ours, rows = onnx.predict_and_embed(images)
    theirs, reference_rows = torch_model.predict_and_embed(images)
    np.testing.assert_allclose(rows, reference_rows, atol=1e-4)
    for mine, reference in zip(ours, theirs, strict=True):
        assert isinstance(mine, ObjectLabels) and isinstance(reference, ObjectLabels)
        assert mine.keypoints is not None and reference.keypoints is not None
        np.testing.assert_allclose(mine.keypoints, reference.keypoints, atol=1e-3)
        np.testing.assert_allclose(mine.boxes, reference.boxes, atol=1e-3)


def test_families_without_a_graph_are_refused_with_a_clear_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "classifier"
    write_model(folder, "classifier")
    monkeypatch.delattr(ClassifierFamily, "labels_from_outputs")  # a family with no numpy decoding
    with pytest.raises(ValidationError, match="ONNX export of classifier models is not supported yet"):
        export_onnx(folder, photos(2))
    assert not (folder / ONNX_NAME).exists()


def test_an_export_that_fails_parity_is_not_kept_and_the_previous_one_stays(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    write_model(folder, "classifier", image_size=32)
    export_onnx(folder, photos(2))
    kept = (folder / ONNX_META_NAME).read_text(), (folder / ONNX_NAME).read_bytes()
    with pytest.raises(ValidationError, match=r"was not kept: .*logits differs by up to"):
        export_onnx(folder, photos(2), tolerance=-1.0)
    assert ((folder / ONNX_META_NAME).read_text(), (folder / ONNX_NAME).read_bytes()) == kept
    assert sorted(path.name for path in folder.iterdir()) == [
        "model.json",
        "model.onnx",
        "model.safetensors",
        "onnx.json",
    ]


def test_parity_needs_images(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    write_model(folder, "classifier")
    with pytest.raises(ValidationError, match="at least one image"):
        export_onnx(folder, [])


_LOGITS = np.array([[2.0, 1.0, 0.0], [0.0, 0.5, 0.1]], np.float32)
_MAPS = np.zeros((1, 2, 4, 4), np.float32)
_MAPS[0, 0, 1, 2] = _MAPS[0, 1, 3, 0] = 5.0
_MOVED = _MAPS.copy()
_MOVED[0, 1, 0, 0] = 6.0


@pytest.mark.parametrize(
    ("reference", "exported", "agreement", "passed", "expectation"),
    [
        (_LOGITS, _LOGITS + 1e-5, 1.0, True, DoesNotRaise()),
        (_LOGITS, _LOGITS[:, ::-1].copy(), 0.5, False, DoesNotRaise()),  # the first top class flips
        (_LOGITS, _LOGITS + np.array([[0, 0, 0], [0, 0, 0.5]], np.float32), 0.5, False, DoesNotRaise()),
        (_MAPS, _MAPS, 1.0, True, DoesNotRaise()),
        (_MAPS, _MOVED, 0.0, False, DoesNotRaise()),  # one part's peak moved
        (_LOGITS, np.full_like(_LOGITS, np.nan), 0.0, False, DoesNotRaise()),
        (_LOGITS, _LOGITS[:1], 0.0, False, pytest.raises(ValidationError, match="has shape")),
    ],
)
def test_parity_compares_decisions_and_differences(
    reference: np.ndarray,
    exported: np.ndarray,
    agreement: float,
    passed: bool,
    expectation: AbstractContextManager[object],
) -> None:
    with expectation:
        result = parity(["out"], [[reference]], [[exported]])
        assert result.agreement == pytest.approx(agreement)
        assert result.passed is passed
        assert result.passed == (not result.reasons)
