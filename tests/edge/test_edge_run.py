"""``edge run`` over a folder or a video: one JSON line per image with the labels pre-labeling
(ONNX Runtime) stores for the same images, unreadable files reported and skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from visionloop.active.prelabel import PrelabelOptions, prelabel
from visionloop.core.labels import ClassLabel, ObjectLabels, label_from_dict
from visionloop.edge.model import EdgeModel
from visionloop.edge.runner import EdgeOptions, run_edge
from visionloop.imaging.decode import decode_rgb
from visionloop.models.artifact import read_artifact
from visionloop.tasks.onnx_files import read_export
from visionloop.tasks.onnx_runtime import OnnxModel


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_folder_predictions_equal_what_prelabel_stores(edge_project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    output = tmp_path / "predictions.jsonl"
    report = run_edge(
        EdgeOptions(edge_project.model, edge_project.images, str(output), batch_size=4, workers=2)
    )
    lines = _lines(output)
    assert report.predicted == report.images == len(lines) == 21 and report.failed == []
    stored = prelabel(
        edge_project.project, edge_project.run_id, PrelabelOptions(items="all", workers=0, runtime="onnx")
    )
    with edge_project.project.open_catalog() as catalog:
        uris = {item.id: item.uri for item in catalog.iter_items()}
        theirs = {uris[item]: label for item, (label, _) in catalog.run_predictions(stored.run_id).items()}
    assert stored.predicted == 21 and set(theirs) == {line["source"] for line in lines}
    assert sum(line["source"].endswith(".jpg") for line in lines) == 6  # reduced JPEG decoding too
    for line in lines:
        ours, reference = label_from_dict(line["prediction"]), theirs[line["source"]]
        assert isinstance(ours, ClassLabel) and isinstance(reference, ClassLabel)
        assert ours.class_name == reference.class_name, line["source"]
        assert line["score"] == ours.score == pytest.approx(reference.score, abs=1e-6)
        np.testing.assert_allclose(ours.probabilities or (), reference.probabilities or (), atol=1e-6)
        assert line["model_version"] == stored.model_version == f"run:{edge_project.run_id}"
        assert line["captured"] is None and "frame" not in line


def test_pose_keypoints_come_back_in_the_full_image(
    pose_model: Path, photo_folder: Path, tmp_path: Path
) -> None:
    output = tmp_path / "pose.jsonl"
    report = run_edge(EdgeOptions(pose_model, photo_folder, str(output), batch_size=3, workers=0))
    lines = {Path(line["source"]).name: line for line in _lines(output)}
    assert report.predicted == 9 and report.skipped_files == 1
    assert [failure["source"] for failure in report.failed] == [str(photo_folder / "broken.jpg")]
    assert "cannot decode image" in report.failed[0]["reason"]
    artifact = read_artifact(pose_model)
    reference_model = OnnxModel.open(artifact, read_export(pose_model, artifact))
    pngs = sorted(photo_folder.rglob("*.png"))  # PNGs decode to the same pixels either way
    references = reference_model.predict([decode_rgb(path.read_bytes()) for path in pngs])
    for path, reference in zip(pngs, references, strict=True):
        ours = label_from_dict(lines[path.name]["prediction"])
        assert isinstance(ours, ObjectLabels) and isinstance(reference, ObjectLabels)
        np.testing.assert_allclose(ours.keypoints, reference.keypoints, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(ours.keypoint_scores, reference.keypoint_scores, atol=1e-6)
        assert lines[path.name]["score"] == pytest.approx(float(reference.scores.min()))  # type: ignore[union-attr]


def test_video_frames_are_predicted_every_nth(edge_project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cv2 = pytest.importorskip("cv2")
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(1)
    for index in range(10):
        frame = (rng.random((48, 64, 3)) * 80).astype(np.uint8)
        frame[:, : 32 if index % 2 else 64] += 150
        writer.write(frame)
    writer.release()
    output = tmp_path / "video.jsonl"
    report = run_edge(EdgeOptions(edge_project.model, video, str(output), every=3, batch_size=3))
    lines = _lines(output)
    assert [line["frame"] for line in lines] == [0, 3, 6, 9] and report.predicted == 4
    capture = cv2.VideoCapture(str(video))
    frames = [capture.read()[1][:, :, ::-1] for _ in range(10)]
    capture.release()
    references = EdgeModel.open(edge_project.model).predict([frames[i].copy() for i in (0, 3, 6, 9)])
    for line, reference in zip(lines, references, strict=True):
        ours = label_from_dict(line["prediction"])
        assert isinstance(ours, ClassLabel) and isinstance(reference, ClassLabel)
        assert line["source"] == str(video) and ours.class_name == reference.class_name
        assert ours.score == pytest.approx(reference.score, abs=1e-6)


def test_a_missing_source_is_an_error_before_any_output(edge_project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from visionloop.core.errors import ValidationError

    with pytest.raises(ValidationError, match="no such folder, image or video"):
        run_edge(EdgeOptions(edge_project.model, tmp_path / "nowhere", str(tmp_path / "out.jsonl")))
    assert not (tmp_path / "out.jsonl").exists()
