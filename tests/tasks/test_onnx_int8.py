"""The int8 option: the keep-or-discard rule on given figures (no timing involved), a kept int8
graph is what the runtime loads, a discarded one leaves nothing behind, and onnx.json records
the figures while version 1 descriptions still read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tiny_models import photos, write_model
from visionloop.core.labels import ClassLabel
from visionloop.models.artifact import read_artifact
from visionloop.tasks.onnx_export import export_onnx
from visionloop.tasks.onnx_files import INT8_NAME, ONNX_META_NAME, ONNX_NAME, read_export
from visionloop.tasks.onnx_int8 import decide_int8
from visionloop.tasks.onnx_runtime import OnnxModel
from visionloop.tasks.predictor import load_predictor

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize(
    ("fp32", "int8", "loss", "kept", "says"),
    [
        (100.0, 150.0, 1.0, True, "kept: 1.50x (100.0 -> 150.0 images/s), 1.00 points lost"),
        (100.0, 230.0, 0.0, True, "kept: 2.30x"),
        (100.0, 149.0, 0.0, False, "discarded: less than 1.5x faster: 1.49x"),
        (100.0, 300.0, 1.01, False, "discarded: loses more than 1 point: 3.00x"),
        (100.0, 120.0, 4.0, False, "less than 1.5x faster and loses more than 1 point"),
        (100.0, 90.0, -0.5, False, "0.90x"),  # int8 more accurate but slower
        (0.0, 10.0, 0.0, False, "less than 1.5x faster"),  # no fp32 figure: cannot claim a speedup
        (100.0, 200.0, float("nan"), False, "loses more than 1 point"),
    ],
)
def test_int8_is_kept_only_when_it_is_faster_enough_and_loses_little(
    fp32: float, int8: float, loss: float, kept: bool, says: str
) -> None:
    decision, reason = decide_int8(fp32, int8, loss)
    assert decision is kept and says in reason


def test_the_thresholds_are_options() -> None:
    assert decide_int8(100.0, 130.0, 2.0, min_speedup=1.2, max_loss=3.0)[0]
    assert not decide_int8(100.0, 130.0, 2.0, min_speedup=1.4, max_loss=3.0)[0]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("int8") / "model"
    write_model(folder, "classifier", image_size=32)
    return folder


@pytest.fixture
def model(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "model"))


def test_a_kept_int8_graph_is_what_the_runtime_loads(model: Path) -> None:
    export = export_onnx(model, photos(6), int8=True, min_int8_speedup=0.0, max_int8_loss=100.0)
    assert export.int8 is not None and export.int8.kept and export.precision == "int8"
    assert (model / INT8_NAME).is_file() and export.runtime_path == model / INT8_NAME
    meta = json.loads((model / ONNX_META_NAME).read_text())
    assert meta["version"] == 2 and meta["int8"]["kept"] and meta["int8"]["file"] == INT8_NAME
    assert meta["int8"]["fp32_images_per_second"] > 0 and meta["int8"]["int8_images_per_second"] > 0
    assert meta["int8"]["loss_basis"] == "torch" and meta["int8"]["calibration_images"] == 6
    assert meta["int8"]["scored_images"] == meta["int8"]["images"] == 6
    assert meta["int8"]["calibration_source"] == "the parity images"
    assert meta["int8"]["scores"]["int8"]["accuracy"] == pytest.approx(100.0 - meta["int8"]["accuracy_loss"])
    predictor, note = load_predictor(model, "auto")
    assert isinstance(predictor, OnnxModel) and note == ""
    assert predictor.precision == "int8"
    labels = predictor.predict(photos(4, seed=3))
    assert len(labels) == 4 and all(isinstance(label, ClassLabel) for label in labels)


@pytest.mark.slow  # three exports, two of them quantized: about 5 s
def test_a_discarded_int8_graph_leaves_nothing_behind(model: Path) -> None:
    export_onnx(model, photos(4), int8=True, min_int8_speedup=0.0, max_int8_loss=100.0)
    assert (model / INT8_NAME).is_file()
    export = export_onnx(model, photos(4), int8=True, min_int8_speedup=1e9)
    assert export.int8 is not None and not export.int8.kept and export.int8.file is None
    assert "discarded: less than 1e+09x faster" in export.int8.reason
    assert not (model / INT8_NAME).exists() and export.precision == "fp32"
    predictor, _ = load_predictor(model, "onnx")
    assert isinstance(predictor, OnnxModel) and predictor.precision == "fp32"
    export_onnx(model, photos(2))  # without --int8: no trial, no int8 graph
    assert json.loads((model / ONNX_META_NAME).read_text())["int8"] is None
    assert sorted(path.name for path in model.iterdir()) == [
        "model.json",
        "model.onnx",
        "model.safetensors",
        "onnx.json",
    ]


@pytest.mark.slow
def test_int8_is_judged_by_people_s_labels_when_there_are_enough(model: Path) -> None:
    images = photos(20, seed=5)
    truths = [ClassLabel(("cat", "dog", "fox")[index % 3]) for index in range(20)]
    export = export_onnx(model, images, int8=True, truths=truths, min_int8_speedup=0.0)
    assert export.int8 is not None and export.int8.loss_basis == "labels"
    assert export.int8.scored_images == 20
    fp32, int8 = export.int8.scores["fp32"]["accuracy"], export.int8.scores["int8"]["accuracy"]
    assert fp32 is not None and int8 is not None
    assert export.int8.accuracy_loss == pytest.approx(fp32 - int8)


def test_a_replaced_int8_graph_makes_the_export_unusable(model: Path) -> None:
    export_onnx(model, photos(4), int8=True, min_int8_speedup=0.0, max_int8_loss=100.0)
    (model / INT8_NAME).write_bytes((model / INT8_NAME).read_bytes() + b"\0")
    predictor, note = load_predictor(model, "auto")
    assert predictor.runtime == "torch" and "model.int8.onnx changed since it was exported" in note


def test_a_version_1_description_still_reads(model: Path) -> None:
    export_onnx(model, photos(2))
    meta = json.loads((model / ONNX_META_NAME).read_text())
    for added in ("int8", "images_per_run"):
        del meta[added]
    for added in ("metrics", "points_lost", "max_points_lost"):
        del meta["parity"][added]
    meta["version"] = 1
    (model / ONNX_META_NAME).write_text(json.dumps(meta))
    export = read_export(model, read_artifact(model))
    assert export.int8 is None and export.images_per_run is None and export.precision == "fp32"
    assert export.runtime_path == model / ONNX_NAME
    meta["version"] = 3
    (model / ONNX_META_NAME).write_text(json.dumps(meta))
    with pytest.raises(Exception, match="unsupported export description version"):
        read_export(model, read_artifact(model))
