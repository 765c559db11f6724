"""Detectors export to ONNX: each R-CNN family's graph passes the metric parity check, ONNX
Runtime plus the numpy decoding give the labels and embeddings PyTorch gives, and an export
that loses points is refused with the figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tiny_models import photos, write_model
from visionloop.core.errors import ValidationError
from visionloop.core.labels import ObjectLabels
from visionloop.formats.masks import rle_decode
from visionloop.tasks.onnx_export import export_onnx
from visionloop.tasks.onnx_files import ONNX_META_NAME, ONNX_NAME
from visionloop.tasks.onnx_runtime import OnnxModel
from visionloop.tasks.predictor import load_predictor

pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.slow  # an R-CNN export traces and converts the whole detector: ~5 s each

FAMILIES = {
    "faster_rcnn": (["boxes", "labels", "scores", "embedding"], {"map"}),
    "mask_rcnn": (["boxes", "labels", "scores", "masks", "embedding"], {"map", "mask_map"}),
    "keypoint_rcnn": (["boxes", "labels", "scores", "keypoint_heatmaps", "embedding"], {"map", "oks_ap"}),
}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    family = str(request.param)
    folder = tmp_path_factory.mktemp(family) / "model"
    write_model(folder, family, image_size=64, max_detections=10)
    export_onnx(folder, photos(6))
    return family, folder


def test_the_export_records_its_metric_parity(exported: tuple[str, Path]) -> None:
    family, folder = exported
    meta = json.loads((folder / ONNX_META_NAME).read_text())
    outputs, metrics = FAMILIES[family]
    assert meta["outputs"] == outputs and meta["images_per_run"] == 1 and meta["family"] == family
    parity = meta["parity"]
    assert parity["passed"] and parity["images"] == 6 and parity["max_points_lost"] == 0.5
    assert set(parity["points_lost"]) == metrics and all(v <= 0.5 for v in parity["points_lost"].values())
    assert parity["max_abs_diff"]["embedding"] < 1e-3 * max(1.0, parity["max_abs_reference"]["embedding"])


def test_onnx_runtime_labels_what_torch_labels(exported: tuple[str, Path]) -> None:
    family, folder = exported
    onnx, note = load_predictor(folder, "auto")
    torch_model, _ = load_predictor(folder, "torch")
    assert isinstance(onnx, OnnxModel) and note == "" and onnx.precision == "fp32"
    images = photos(5, seed=4)  # other images and sizes than the parity check's
    ours, our_rows = onnx.predict_and_embed(images)
    theirs, their_rows = [], []
    for image in images:  # one at a time, as the graph runs
        labels, rows = torch_model.predict_and_embed([image])
        theirs.extend(labels)
        their_rows.append(rows)
    np.testing.assert_allclose(our_rows, np.concatenate(their_rows), rtol=1e-4, atol=1e-4)
    found = 0
    for mine, reference in zip(ours, theirs, strict=True):
        assert isinstance(mine, ObjectLabels) and isinstance(reference, ObjectLabels)
        assert mine.class_names == reference.class_names
        np.testing.assert_allclose(mine.boxes, reference.boxes, atol=1e-2)
        assert mine.scores is not None and reference.scores is not None
        np.testing.assert_allclose(mine.scores, reference.scores, atol=1e-4)
        found += len(mine)
        if family == "mask_rcnn":
            assert mine.masks is not None and reference.masks is not None
            for ours_mask, their_mask in zip(mine.masks, reference.masks, strict=True):
                assert ours_mask is not None and their_mask is not None
                differing = rle_decode(ours_mask) != rle_decode(their_mask)
                assert differing.sum() <= 2  # probabilities at exactly 0.5 may round either way
        if family == "keypoint_rcnn":
            assert mine.keypoints is not None and reference.keypoints is not None
            np.testing.assert_allclose(mine.keypoints, reference.keypoints, atol=1e-2)
            np.testing.assert_allclose(mine.keypoint_scores, reference.keypoint_scores, atol=1e-4)
    assert found > 0  # an untrained head finds objects everywhere: the comparison saw some


def test_an_export_that_loses_points_is_refused_with_the_figures(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    write_model(folder, "faster_rcnn", image_size=32, max_detections=5)
    with pytest.raises(
        ValidationError, match=r"was not kept: map 0\.00 points below PyTorch's \(allowed -1\)"
    ):
        export_onnx(folder, photos(2), max_points_lost=-1.0)
    assert not (folder / ONNX_NAME).exists() and not (folder / ONNX_META_NAME).exists()
