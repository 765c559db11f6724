"""YOLO (Ultralytics layout): round trips for all four tasks, rejections with line locators,
image sizes from real image headers (EXIF included), and malformed inputs that never crash."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from checks import check_counts, load_malformed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from strategies import assert_label_sets_equal, label_sets

from images import exif_rotated_jpeg
from visionloop.core.errors import ConfigError
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.model import Annotation, LabeledImage, LabelSet
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format
from visionloop.formats.yolo import flip_indices

YOLO = get_format("yolo")
HUMAN = Provenance.human("tester")
ROUND_TRIP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def image_bytes(name: str, width: int, height: int) -> bytes:
    """A tiny real image of the given size, encoded as its suffix says."""
    buffer = io.BytesIO()
    fmt = "PNG" if name.lower().endswith(".png") else "JPEG"
    Image.new("RGB", (width, height), (90, 120, 150)).save(buffer, format=fmt)
    return buffer.getvalue()


def write_images(labels: LabelSet, folder: Path) -> Path:
    for image in labels.images:
        assert image.width is not None and image.height is not None
        path = folder / image.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image_bytes(image.name, image.width, image.height))
    return folder


def _round_trip(labels: LabelSet, predictions: bool = False, schema: LabelSchema | None = None) -> LabelSet:
    with tempfile.TemporaryDirectory() as tmp:
        source = write_images(labels, Path(tmp) / "source")
        out = Path(tmp) / "gt"
        YOLO.save(labels, out, SaveOptions(image_source=source))
        result = YOLO.load(out, LoadOptions(schema=schema))
        assert result.rejections == [], result.rejections
        if predictions:
            YOLO.save(labels, Path(tmp) / "pred", SaveOptions(predictions=True, image_source=source))
            predicted = YOLO.load(Path(tmp) / "pred" / "data.yaml", LoadOptions())
            assert predicted.rejections == []
            by_name = {image.name: image for image in result.labels.images}
            for image in predicted.labels.images:
                by_name[image.name].annotations.extend(
                    a for a in image.annotations if a.provenance.kind is ProvenanceKind.MODEL
                )
        return result.labels


@ROUND_TRIP
@given(labels=label_sets(TaskType.DETECTION, predictions=True))
def test_detection_round_trip_with_predictions(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels, predictions=True))


@ROUND_TRIP
@given(labels=label_sets(TaskType.SEGMENTATION, polygons=True))
def test_polygon_segmentation_round_trip(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels))


@ROUND_TRIP
@given(labels=label_sets(TaskType.KEYPOINTS))
def test_keypoints_round_trip(labels: LabelSet) -> None:
    back = _round_trip(labels)
    assert back.schema is not None and labels.schema is not None
    assert back.schema.keypoints == [f"kp{i}" for i in range(len(labels.schema.keypoints))]
    assert_label_sets_equal(labels, back)


@ROUND_TRIP
@given(labels=label_sets(TaskType.KEYPOINTS))
def test_keypoints_round_trip_with_project_schema_keeps_names(labels: LabelSet) -> None:
    back = _round_trip(labels, schema=labels.schema)
    assert back.schema == labels.schema
    assert_label_sets_equal(labels, back)


@st.composite
def classification_sets(draw: st.DrawFn) -> LabelSet:
    """Class-folder names (``<split>/<class>/<name>``), as a loaded YOLO classify dataset has."""
    labels = draw(label_sets(TaskType.CLASSIFICATION))
    for image in labels.images:
        label = image.annotations[0].label
        assert isinstance(label, ClassLabel)
        split = draw(st.sampled_from(["train", "val"]))
        image.name = f"{split}/{label.class_name}/{image.name}"
    return labels


@ROUND_TRIP
@given(labels=classification_sets())
def test_classification_round_trip(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels))


def test_classification_save_files_plain_names_under_train(tmp_path: Path) -> None:
    schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=["cat", "dog"])
    labels = LabelSet(schema, [LabeledImage("x/a.jpg", 20, 10)])
    labels.images[0].annotations.append(Annotation(ClassLabel("dog"), HUMAN))
    source = write_images(labels, tmp_path / "src")
    YOLO.save(labels, tmp_path / "out", SaveOptions(image_source=source))
    assert (tmp_path / "out/train/dog/x/a.jpg").is_file() and (tmp_path / "out/train/cat").is_dir()
    result = YOLO.load(tmp_path / "out", LoadOptions())
    assert [image.name for image in result.labels.images] == ["train/dog/x/a.jpg"]
    with pytest.raises(ConfigError, match="needs the images"):
        YOLO.save(labels, tmp_path / "nope", SaveOptions())


# -- hand-made datasets ---------------------------------------------------------------------
def _dataset(
    root: Path,
    lines: list[str],
    *,
    names: object = None,
    kpt_shape: list[int] | None = None,
    size: tuple[int, int] = (100, 50),
    image: str | None = "images/train/a.jpg",
) -> Path:
    data: dict[str, object] = {"path": str(root), "train": "images/train", "val": "images/train"}
    data["names"] = {0: "cat", 1: "dog"} if names is None else names
    if kpt_shape is not None:
        data["kpt_shape"] = kpt_shape
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    (root / "images/train").mkdir(parents=True, exist_ok=True)
    if image is not None:
        (root / image).write_bytes(image_bytes(image, *size))
    label = root / "labels/train/a.txt"
    label.parent.mkdir(parents=True, exist_ok=True)
    label.write_text("".join(line + "\n" for line in lines))
    return root


def test_reads_an_ultralytics_dataset_with_splits_and_repeated_basenames(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds", ["0 0.5 0.5 0.2 0.4", "1 0.25 0.25 0.1 0.1 0.875"])
    (root / "images/val").mkdir()
    (root / "images/val/a.jpg").write_bytes(image_bytes("a.jpg", 40, 40))
    (root / "labels/val").mkdir()
    (root / "labels/val/a.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (root / "images/train/unlabeled.png").write_bytes(image_bytes("u.png", 8, 8))
    data = yaml.safe_load((root / "data.yaml").read_text())
    data["val"] = "images/val"
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    result = YOLO.load(root / "data.yaml", LoadOptions())
    assert result.rejections == [] and result.records == 3
    images = {image.name: image for image in result.labels.images}
    assert sorted(images) == ["train/a.jpg", "train/unlabeled.png", "val/a.jpg"]
    assert images["train/unlabeled.png"].annotations == []
    train = images["train/a.jpg"]
    kinds = [a.provenance.kind for a in train.annotations]
    assert kinds == [ProvenanceKind.HUMAN, ProvenanceKind.MODEL]
    human, model = (a.label for a in train.annotations)
    assert isinstance(human, ObjectLabels) and isinstance(model, ObjectLabels)
    np.testing.assert_allclose(human.boxes, [[40, 15, 60, 35]])
    assert model.scores is not None and model.scores.tolist() == [0.875]
    assert model.class_names == ("dog",)
    assert (images["val/a.jpg"].width, images["val/a.jpg"].height) == (40, 40)


def test_roboflow_style_parent_relative_splits(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "train/images").mkdir(parents=True)
    (root / "train/images/a.jpg").write_bytes(image_bytes("a.jpg", 10, 10))
    (root / "train/labels").mkdir()
    (root / "train/labels/a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../../valid/images\nnc: 1\nnames: [a]\n")
    result = YOLO.load(root, LoadOptions())
    assert [image.name for image in result.labels.images] == ["train/images/a.jpg"]
    assert result.records == 2 and result.imported == 1
    assert result.rejections[0].locator == "val" and "'..' segments" in result.rejections[0].reason


def test_image_lists_and_exif_orientation(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "images/x").mkdir(parents=True)
    (root / "images/x/r.jpg").write_bytes(exif_rotated_jpeg(60, 40, orientation=6))
    (root / "labels/x").mkdir(parents=True)
    (root / "labels/x/r.txt").write_text("0 0.5 0.5 1 1\n")
    (root / "train.txt").write_text("./images/x/r.jpg\n../../etc/passwd\nimages/x/gone.jpg\n")
    (root / "data.yaml").write_text("train: train.txt\nval: train.txt\nnames: [thing]\n")
    result = YOLO.load(root, LoadOptions())
    check_counts(result)
    [image] = result.labels.images
    assert (image.name, image.width, image.height) == ("x/r.jpg", 40, 60)
    label = image.annotations[0].label
    assert isinstance(label, ObjectLabels)
    np.testing.assert_allclose(label.boxes, [[0, 0, 40, 60]])
    reasons = {r.locator: r.reason for r in result.rejections}
    assert "'..' segments" in reasons["line 2"] and "missing image" in reasons["line 3"]


@pytest.mark.parametrize(
    ("line", "reason", "kwargs"),
    [
        ("0 0.5 0.5 0.2", "wrong number of values", {}),
        ("0 0.5 abc 0.2 0.2", "non-numeric value 'abc'", {}),
        ("0 0.5 nan 0.2 0.2", "non-finite value", {}),
        ("7 0.5 0.5 0.2 0.2", "class index 7 out of range", {}),
        ("0.5 0.5 0.5 0.2 0.2", "class index must be an integer", {}),
        ("0 1.5 0.5 0.2 0.2", "outside the 100x50 image", {}),
        ("0 0.5 0.5 0 0.2", "zero or negative size", {}),
        ("0 0.5 0.5 -0.2 0.2", "zero or negative size", {}),
        ("0 0.5 0.5 0.2 0.2 1.7", "confidence must be within [0, 1]", {}),
        ("0 0.1 0.1 0.2 0.2 0.3 0.1 1.7", "confidence must be within", {"task": TaskType.SEGMENTATION}),
        ("0 0.1 0.1 0.2 0.2", "at least 3 are needed", {"task": TaskType.SEGMENTATION}),
        ("0 0.1 0.1 0.2 0.2 3 0.1", "outside the 100x50 image", {"task": TaskType.SEGMENTATION}),
        ("0", "wrong number of values", {"task": TaskType.SEGMENTATION}),
        ("0 0.5 0.5 0.2 0.2 0.5 0.5 5 0.1 0.1 2", "visibility must be 0, 1 or 2", {"kpt": [2, 3]}),
        ("0 0.5 0.5 0.2 0.2 0.5 0.5 2 3.0 0.1 2", "keypoint lies outside", {"kpt": [2, 3]}),
        ("0 0.5 0.5 0.2 0.2 0.5 0.5 2", "wrong number of values", {"kpt": [2, 3]}),
    ],
)
def test_bad_lines_are_rejected_with_line_locator_and_reason(
    tmp_path: Path, line: str, reason: str, kwargs: dict[str, object]
) -> None:
    kpt = kwargs.get("kpt")
    good = "0 0.5 0.5 0.2 0.2" + (" 0.5 0.5 2 0 0 0" if kpt else "")
    if kwargs.get("task") is TaskType.SEGMENTATION:
        good = "0 0.1 0.1 0.3 0.1 0.2 0.4"
    root = _dataset(tmp_path / "ds", [good, "", line], kpt_shape=kpt)  # type: ignore[arg-type]
    task = kwargs.get("task")
    result = YOLO.load(root, LoadOptions(task=task))  # type: ignore[arg-type]
    assert result.records == 2 and result.imported == 1
    [rejection] = result.rejections
    assert rejection.file == str(root / "labels/train/a.txt") and rejection.locator == "line 3"
    assert reason in rejection.reason


def test_unknown_class_with_project_schema_and_missing_image(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds", ["0 0.5 0.5 0.2 0.2", "1 0.5 0.5 0.2 0.2"])
    (root / "labels/train/ghost.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    schema = LabelSchema(task=TaskType.DETECTION, classes=["cat", "bird"])
    result = YOLO.load(root, LoadOptions(schema=schema))
    check_counts(result)
    reasons = {(Path(r.file).name, r.locator): r.reason for r in result.rejections}
    assert "unknown class 'dog'" in reasons[("a.txt", "line 2")]
    assert "references missing image" in reasons[("ghost.txt", "file")]
    assert result.records == 3 and result.imported == 1
    assert result.labels.schema == schema


def test_label_file_of_an_unreadable_image_is_rejected(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds", ["0 0.5 0.5 0.2 0.2"], image=None)
    (root / "images/train/a.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = YOLO.load(root, LoadOptions())
    [rejection] = result.rejections
    assert rejection.locator == "file" and "not a readable image" in rejection.reason
    check_counts(result)


def test_two_value_keypoints_and_flip_idx(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds", ["0 0.5 0.5 0.4 0.4 0.5 0.5 0 0"], kpt_shape=[2, 2])
    result = YOLO.load(root, LoadOptions())
    assert result.rejections == []
    label = result.labels.images[0].annotations[0].label
    assert isinstance(label, ObjectLabels) and label.keypoints is not None
    np.testing.assert_allclose(label.keypoints[0], [[50, 25, 2], [0, 0, 0]])
    assert flip_indices(["nose", "left_eye", "right_eye", "tail"]) == [0, 2, 1, 3]


def test_save_writes_full_precision_flip_idx_and_refuses_colliding_label_files(tmp_path: Path) -> None:
    schema = LabelSchema(
        task=TaskType.KEYPOINTS, classes=["cat"], keypoints=["left_paw", "nose", "right_paw"]
    )
    boxes = np.array([[1 / 3, 0.1, 10.7, 20.2]])
    keypoints = np.array([[[2.5, 3.5, 2], [0, 0, 0], [1 / 7, 1.0, 1]]], dtype=np.float64)
    label = ObjectLabels(boxes=boxes, class_names=("cat",), keypoints=keypoints)
    image = LabeledImage("p/q.jpg", 30, 40, [Annotation(label, HUMAN)])
    written = YOLO.save(LabelSet(schema, [image]), tmp_path / "out", SaveOptions())
    data = yaml.safe_load((tmp_path / "out/data.yaml").read_text())
    assert data["kpt_shape"] == [3, 3] and data["flip_idx"] == [2, 1, 0] and data["names"] == {0: "cat"}
    text = (tmp_path / "out/labels/p/q.txt").read_text()
    assert text.split()[0] == "0" and repr((1 / 3 + 10.7) / 2 / 30) in text
    assert tmp_path / "out/labels/p/q.txt" in written
    clash = LabelSet(schema, [LabeledImage("a.jpg", 4, 4), LabeledImage("a.png", 4, 4)])
    with pytest.raises(ConfigError, match="both need the label file"):
        YOLO.save(clash, tmp_path / "clash", SaveOptions())


# -- malformed inputs -----------------------------------------------------------------------
def malformed_inputs(folder: Path) -> list[Path]:
    """At least a dozen broken YOLO datasets; each returned path is what ``load`` gets."""
    inputs: list[Path] = []

    def dataset(name: str, yaml_text: str | bytes, labels: dict[str, str | bytes] | None = None) -> Path:
        root = folder / name
        (root / "images/train").mkdir(parents=True)
        (root / "images/train/a.jpg").write_bytes(image_bytes("a.jpg", 32, 24))
        raw = yaml_text.encode() if isinstance(yaml_text, str) else yaml_text
        (root / "data.yaml").write_bytes(raw)
        for rel, content in (labels or {}).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        inputs.append(root)
        return root

    ok = "train: images/train\nval: images/train\nnames: {0: cat}\n"
    dataset("truncated-yaml", "train: images/train\nnames: [cat, dog")
    dataset("garbage-yaml", b"\xff\xfe\x00\x01garbage\x00\x9c")
    dataset("yaml-not-mapping", "- 1\n- 2\n")
    dataset("names-wrong-type", "train: images/train\nnames: 5\n")
    dataset("names-gaps", "train: images/train\nnames: {0: a, 5: b}\n")
    dataset("names-comma", "train: images/train\nnames: ['a,b']\n")
    dataset("kpt-shape-absurd", "train: images/train\nnames: [a]\nkpt_shape: [1000000000, 7]\n")
    dataset("split-traversal", "train: ../../../etc\nval: /etc\nnames: [a]\n")
    dataset(
        "split-list-traversal",
        "train: list.txt\nnames: [a]\n",
        {"list.txt": "../outside/x.jpg\n/etc/passwd\n"},
    )
    dataset(
        "yaml-alias-bomb",
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nnames: *c\ntrain: images/train\n",
    )
    dataset("label-garbage-bytes", ok, {"labels/train/a.txt": b"\x00\xff\xfe\x80garbage\n"})
    dataset(
        "label-absurd-numbers",
        ok,
        {
            "labels/train/a.txt": "0 1e308 1e308 1e308 1e308\n0 inf 0.5 0.1 0.1\n"
            "99999999999999999999 0.5 0.5 0.1 0.1\n"
        },
    )
    dataset("label-missing-image", ok, {"labels/train/zzz.txt": "0 0.5 0.5 0.1 0.1\n"})
    dataset("label-huge-line", ok, {"labels/train/a.txt": "0 " + "0.5 " * 50_000 + "\n"})
    corrupt = dataset("image-corrupt", ok, {"labels/train/a.txt": "0 0.5 0.5 0.1 0.1\n"})
    (corrupt / "images/train/a.jpg").write_bytes(image_bytes("a.jpg", 32, 24)[:20])
    linked = dataset("label-symlink", ok)
    (linked / "labels/train").mkdir(parents=True)
    os.symlink("/etc/passwd", linked / "labels/train/a.txt")
    dataset("empty-yaml", "")
    (folder / "no-yaml").mkdir()
    inputs.append(folder / "no-yaml")
    inputs.append(folder / "does-not-exist" / "data.yaml")
    return inputs


def _count_malformed() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        return len(malformed_inputs(Path(tmp)))


MALFORMED_COUNT = _count_malformed()


@pytest.mark.parametrize("index", range(MALFORMED_COUNT))
def test_malformed_inputs_are_rejections_not_crashes(tmp_path: Path, index: int) -> None:
    inputs = malformed_inputs(tmp_path / "in")
    assert len(inputs) >= 12
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/x.jpg").write_bytes(image_bytes("x.jpg", 8, 8))
    # A VisionloopError is acceptable only for a wholly unusable folder argument.
    result = load_malformed(YOLO, inputs[index], LoadOptions(), watch=tmp_path)
    if result is None:
        return
    assert result.rejections or not any(image.annotations for image in result.labels.images)
    assert all(not image.name.startswith(("/", "..")) for image in result.labels.images)


def test_a_deeply_nested_data_yaml_is_a_format_error(tmp_path: Path) -> None:
    """Found by fuzzing: PyYAML's RecursionError escaped ``read_yaml``."""
    from visionloop.core.errors import VisionloopError

    (tmp_path / "data.yaml").write_text("[" * 5_000)
    try:
        result = YOLO.load(tmp_path / "data.yaml", LoadOptions())
    except VisionloopError as exc:
        assert "nested too deeply" in str(exc)
    else:
        assert any("nested too deeply" in r.reason for r in result.rejections), result.rejections
