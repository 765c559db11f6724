"""R-CNN detectors on the edge runtime: one image per graph run at the detector's own size (never
squashed), the labels ONNX Runtime's predictor gives for the same images, in the full image's
pixels even when a JPEG decodes reduced, and captures by the least decisive object."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tiny_models import photos, write_model
from visionloop.core.labels import Label, ObjectLabels, label_from_dict
from visionloop.edge.decoders import object_score
from visionloop.edge.model import EdgeModel
from visionloop.edge.runner import EdgeOptions, run_edge
from visionloop.formats.masks import rle_decode
from visionloop.imaging.decode import decode_rgb, decode_rgb_reduced
from visionloop.models.artifact import read_artifact
from visionloop.tasks.detection_inputs import network_size
from visionloop.tasks.onnx_export import export_onnx
from visionloop.tasks.onnx_files import read_export
from visionloop.tasks.onnx_runtime import OnnxModel
from visionloop.tasks.rescale import rescale_label

SIDE = 64


def _export(folder: Path, family: str) -> Path:
    write_model(folder, family, image_size=SIDE, max_detections=10)
    export_onnx(folder, photos(2))
    return folder


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory.mktemp("edge-detector") / "model", "faster_rcnn")


@pytest.fixture(scope="module")
def detector_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small PNGs (decoded as they are) and one JPEG large enough to decode at 1/4 scale."""
    folder = tmp_path_factory.mktemp("edge-detector-photos")
    for index, image in enumerate(photos(4, seed=5)):
        Image.fromarray(image).save(folder / f"{index:02d}.png")
    large = Image.fromarray(photos(1, seed=6)[0]).resize((448, 320), Image.Resampling.BILINEAR)
    large.save(folder / "large.jpg", quality=95)
    return folder


def _onnx_model(folder: Path) -> OnnxModel:
    artifact = read_artifact(folder)
    return OnnxModel.open(artifact, read_export(folder, artifact))


def _lines(path: Path) -> dict[str, dict[str, Any]]:
    return {Path(line["source"]).name: line for line in map(json.loads, path.read_text().splitlines())}


def _assert_same_objects(ours: Label, reference: Label) -> None:
    assert isinstance(ours, ObjectLabels) and isinstance(reference, ObjectLabels)
    assert ours.class_names == reference.class_names
    np.testing.assert_allclose(ours.boxes, reference.boxes, atol=1e-2)
    assert ours.scores is not None and reference.scores is not None
    np.testing.assert_allclose(ours.scores, reference.scores, atol=1e-5)


class _Recorder:
    """An ONNX Runtime session that remembers the input shape of every run."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.shapes: list[tuple[int, ...]] = []

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[Any]:
        self.shapes.extend(feed.shape for feed in feeds.values())
        return self.session.run(names, feeds)  # type: ignore[no-any-return]


def test_a_detector_runs_one_image_per_run_at_its_own_size(detector: Path) -> None:
    model = EdgeModel.open(detector)
    recorder = _Recorder(model.session)
    images = photos(3, seed=9)
    labels = replace(model, session=recorder).predict(images)
    assert model.images_per_run == 1 and model.squashed_size is None and len(labels) == 3
    expected = [(1, 3, *network_size(image.shape[0], image.shape[1], SIDE)) for image in images]
    assert recorder.shapes == expected  # aspect kept: 40x60 runs at 42x64, not squashed
    for ours, reference in zip(labels, _onnx_model(detector).predict(images), strict=True):
        _assert_same_objects(ours, reference)


def test_other_families_still_run_the_whole_batch_at_once(pose_model: Path) -> None:
    model = EdgeModel.open(pose_model)
    recorder = _Recorder(model.session)
    assert len(replace(model, session=recorder).predict(photos(3))) == 3
    assert model.images_per_run is None and recorder.shapes == [(3, 3, 32, 32)]


def test_edge_run_labels_equal_the_onnx_predictor(
    detector: Path, detector_photos: Path, tmp_path: Path
) -> None:
    output = tmp_path / "detections.jsonl"
    report = run_edge(EdgeOptions(detector, detector_photos, str(output), batch_size=3, workers=0))
    lines = _lines(output)
    assert report.predicted == len(lines) == 5 and report.failed == []
    reference_model = _onnx_model(detector)
    pngs = sorted(detector_photos.glob("*.png"))
    references = reference_model.predict([decode_rgb(path.read_bytes()) for path in pngs])
    objects = 0
    for path, reference in zip(pngs, references, strict=True):
        ours = label_from_dict(lines[path.name]["prediction"])
        _assert_same_objects(ours, reference)
        assert lines[path.name]["score"] == pytest.approx(object_score(reference), abs=1e-5)
        objects += len(reference)
    assert objects > 0  # an untrained head finds objects everywhere: the comparison saw some

    data = (detector_photos / "large.jpg").read_bytes()
    reduced, full = decode_rgb_reduced(data, SIDE)
    assert full == (320, 448) and reduced.shape[:2] == (80, 112)  # 1/4 scale, aspect kept, >= SIDE
    predicted = reference_model.predict([reduced])[0]
    reference = rescale_label(predicted, (80, 112), full)
    ours = label_from_dict(lines["large.jpg"]["prediction"])
    _assert_same_objects(ours, reference)  # in the full image's pixels
    assert isinstance(ours, ObjectLabels) and len(ours) > 0
    assert ours.boxes[:, 2].max() <= 448 and ours.boxes[:, 3].max() <= 320


def test_detector_captures_take_images_with_an_undecided_object(
    detector: Path, detector_photos: Path, tmp_path: Path
) -> None:
    destination, output = tmp_path / "captures", tmp_path / "run.jsonl"
    options = EdgeOptions(
        detector, detector_photos, str(output), capture_to=str(destination), spool=tmp_path / "spool",
        capture_below=0.9, workers=0,
    )  # fmt: skip
    report = run_edge(options)
    lines = _lines(output)
    for line in lines.values():
        label = label_from_dict(line["prediction"])
        assert line["score"] == pytest.approx(object_score(label))
        assert line["captured"] == ("uncertain" if line["score"] < 0.9 else None)
    captured = {name: line for name, line in lines.items() if line["captured"]}
    assert 0 < len(captured) == report.captured["uncertain"] and report.pending_upload == 0
    sidecars = [json.loads(p.read_text()) for p in (destination / "predictions").rglob("*.prediction.json")]
    assert {Path(sidecar["source"]).name for sidecar in sidecars} == set(captured)
    for sidecar in sidecars:
        line = captured[Path(sidecar["source"]).name]
        assert sidecar["prediction"] == line["prediction"] and sidecar["score"] == line["score"]


def _objects(scores: list[float], keypoint_scores: list[list[float]] | None = None) -> ObjectLabels:
    count = len(scores)
    return ObjectLabels(
        boxes=np.tile([0.0, 0.0, 4.0, 4.0], (count, 1)),
        class_names=("box",) * count,
        scores=np.asarray(scores),
        keypoints=None if keypoint_scores is None else np.ones((count, len(keypoint_scores[0]), 3)),
        keypoint_scores=None if keypoint_scores is None else np.asarray(keypoint_scores),
    )


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        (_objects([]), 1.0),  # nothing found: not worth a capture by itself (see object_score)
        (_objects([0.99, 0.02]), 0.96),
        (_objects([0.95, 0.55, 0.1]), 0.1),  # the least decisive object decides
        (_objects([0.5]), 0.0),
        (_objects([0.9], [[1.0, 0.5]]), 0.35),  # keypoint models: score x mean keypoint likelihood
    ],
)
def test_an_image_scores_by_its_least_decisive_object(label: Label, expected: float) -> None:
    assert object_score(label) == pytest.approx(expected)


@pytest.mark.slow  # two more R-CNN exports, ~5 s each
@pytest.mark.parametrize("family", ["mask_rcnn", "keypoint_rcnn"])
def test_masks_and_keypoints_equal_the_onnx_predictor(family: str, tmp_path: Path) -> None:
    folder = _export(tmp_path / "model", family)
    images = photos(3, seed=11)
    ours = EdgeModel.open(folder).predict(images)
    theirs = _onnx_model(folder).predict(images)
    found = 0
    for mine, reference in zip(ours, theirs, strict=True):
        _assert_same_objects(mine, reference)
        assert isinstance(mine, ObjectLabels) and isinstance(reference, ObjectLabels)
        found += len(mine)
        if family == "mask_rcnn":
            assert mine.masks is not None and reference.masks is not None
            for our_mask, their_mask in zip(mine.masks, reference.masks, strict=True):
                assert our_mask is not None and their_mask is not None
                assert (rle_decode(our_mask) != rle_decode(their_mask)).sum() <= 2
        else:
            np.testing.assert_allclose(mine.keypoints, reference.keypoints, atol=1e-2)
            np.testing.assert_allclose(mine.keypoint_scores, reference.keypoint_scores, atol=1e-4)
    assert found > 0


@pytest.mark.slow  # a fresh interpreter of the minimal environment
def test_a_detector_runs_where_torch_cannot_be_imported(
    edge_python: Path, detector: Path, detector_photos: Path, tmp_path: Path
) -> None:
    output = tmp_path / "edge.jsonl"
    args = ["run", "--model", str(detector), "--source", str(detector_photos), "-o", str(output), "--json"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    result = subprocess.run(
        [str(edge_python), "-m", "visionloop.edge", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["predicted"] == 5
    here = tmp_path / "here.jsonl"
    run_edge(EdgeOptions(detector, detector_photos, str(here), workers=0))
    there, ours = _lines(output), _lines(here)
    assert there.keys() == ours.keys()
    for name, line in ours.items():
        _assert_same_objects(label_from_dict(there[name]["prediction"]), label_from_dict(line["prediction"]))
