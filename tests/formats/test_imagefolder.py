"""ImageFolder: class folders round-trip, every file is a record, non-images are rejected, and
export needs the images."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import pytest
from checks import check_counts, load_malformed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from strategies import assert_label_sets_equal, label_sets

from images import exif_rotated_jpeg, png_bomb, truncated_png
from visionloop.core.errors import ConfigError, VisionloopError
from visionloop.core.labels import ClassLabel
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.model import Annotation, LabeledImage, LabelSet
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format

FOLDER = get_format("imagefolder")
ROUND_TRIP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def image_bytes(name: str, width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    fmt = "PNG" if name.lower().endswith(".png") else "JPEG"
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def write_images(labels: LabelSet, folder: Path) -> Path:
    for image in labels.images:
        assert image.width is not None and image.height is not None
        path = folder / image.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image_bytes(image.name, image.width, image.height))
    return folder


@st.composite
def loaded_style_sets(draw: st.DrawFn) -> LabelSet:
    """Names that start with their class folder, as a loaded ImageFolder names them; some keep
    a plain name to show export files them under ``<class>/``."""
    labels = draw(label_sets(TaskType.CLASSIFICATION))
    for image in labels.images:
        label = image.annotations[0].label
        assert isinstance(label, ClassLabel)
        image.name = f"{label.class_name}/{image.name}"
    return labels


def _round_trip(labels: LabelSet) -> LabelSet:
    with tempfile.TemporaryDirectory() as tmp:
        source = write_images(labels, Path(tmp) / "source")
        FOLDER.save(labels, Path(tmp) / "out", SaveOptions(image_source=source))
        result = FOLDER.load(Path(tmp) / "out", LoadOptions())
        assert result.rejections == [] and result.records == len(labels.images)
        return result.labels


@ROUND_TRIP
@given(labels=loaded_style_sets())
def test_round_trip(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels))


@ROUND_TRIP
@given(labels=label_sets(TaskType.CLASSIFICATION))
def test_plain_names_are_filed_under_their_class(labels: LabelSet) -> None:
    back = {image.name: image for image in _round_trip(labels).images}
    for image in labels.images:
        label = image.annotations[0].label
        assert isinstance(label, ClassLabel)
        loaded = back[f"{label.class_name}/{image.name}"]
        assert (loaded.width, loaded.height) == (image.width, image.height)
        assert loaded.annotations[0].label == ClassLabel(label.class_name)


def test_export_needs_the_images(tmp_path: Path) -> None:
    schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=["cat"])
    labels = LabelSet(
        schema, [LabeledImage("a.jpg", 4, 4, [Annotation(ClassLabel("cat"), Provenance.human("t"))])]
    )
    with pytest.raises(ConfigError, match="ImageFolder export needs the images"):
        FOLDER.save(labels, tmp_path / "out", SaveOptions())
    assert not (tmp_path / "out").exists()
    with pytest.raises(VisionloopError, match="not in the image source"):
        FOLDER.save(labels, tmp_path / "out", SaveOptions(image_source=tmp_path / "empty"))


def test_predictions_export_files_by_top_prediction(tmp_path: Path) -> None:
    schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=["cat", "dog"])
    image = LabeledImage("a.jpg", 8, 8)
    image.annotations += [
        Annotation(ClassLabel("cat", 0.3), Provenance.model("m", 0.3)),
        Annotation(ClassLabel("dog", 0.7), Provenance.model("m", 0.7)),
    ]
    labels = LabelSet(schema, [image])
    FOLDER.save(
        labels, tmp_path / "out", SaveOptions(predictions=True, image_source=write_images(labels, tmp_path))
    )
    assert (tmp_path / "out/dog/a.jpg").is_file() and not (tmp_path / "out/cat/a.jpg").exists()


def test_every_file_is_a_record_and_non_images_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "cat/sub").mkdir(parents=True)
    (tmp_path / "dog").mkdir()
    (tmp_path / "empty-class").mkdir()
    (tmp_path / "cat/1.jpg").write_bytes(image_bytes("1.jpg", 30, 20))
    (tmp_path / "cat/sub/1.jpg").write_bytes(exif_rotated_jpeg(60, 40, orientation=8))
    (tmp_path / "dog/1.jpg").write_bytes(image_bytes("1.jpg", 5, 5))
    (tmp_path / "dog/notes.txt").write_text("not an image")
    (tmp_path / "dog/half.png").write_bytes(truncated_png()[:30])
    (tmp_path / "dog/.DS_Store").write_bytes(b"\x00")
    (tmp_path / "loose.jpg").write_bytes(image_bytes("x.jpg", 5, 5))
    result = FOLDER.load(tmp_path, LoadOptions())
    check_counts(result)
    assert result.records == 6 and result.imported == 3
    images = {image.name: image for image in result.labels.images}
    assert sorted(images) == ["cat/1.jpg", "cat/sub/1.jpg", "dog/1.jpg"]
    assert (images["cat/sub/1.jpg"].width, images["cat/sub/1.jpg"].height) == (40, 60)
    assert result.labels.schema is not None and result.labels.schema.classes == ["cat", "dog", "empty-class"]
    reasons = {Path(r.file).name: r.reason for r in result.rejections}
    assert "not a readable image" in reasons["notes.txt"] and "not a readable image" in reasons["half.png"]
    assert "not inside a class folder" in reasons["loose.jpg"]


def test_project_schema_rejects_unknown_class_folders(tmp_path: Path) -> None:
    (tmp_path / "zebra").mkdir()
    (tmp_path / "zebra/1.jpg").write_bytes(image_bytes("1.jpg", 5, 5))
    schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=["cat"])
    result = FOLDER.load(tmp_path, LoadOptions(schema=schema))
    [rejection] = result.rejections
    assert rejection.locator == "image" and "unknown class 'zebra'" in rejection.reason
    assert result.labels.schema == schema


# -- malformed inputs -----------------------------------------------------------------------
def malformed_inputs(folder: Path) -> list[Path]:
    """At least a dozen broken ImageFolder inputs; each returned path is what ``load`` gets."""
    inputs: list[Path] = []

    def dataset(name: str, files: dict[str, bytes]) -> Path:
        root = folder / name
        root.mkdir(parents=True)
        for rel, content in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
        inputs.append(root)
        return root

    good = image_bytes("g.jpg", 6, 6)
    dataset("truncated-png", {"cat/a.png": truncated_png()[:40], "cat/ok.jpg": good})
    dataset("garbage-bytes", {"cat/a.jpg": b"\x00\xff\xfe garbage \x89PNG"})
    dataset("empty-file", {"cat/a.jpg": b""})
    dataset("text-as-image", {"cat/a.jpg": b"<html>hello</html>"})
    dataset("png-bomb-header", {"cat/bomb.png": png_bomb()})
    dataset("comma-class", {"a,b/x.jpg": good})
    dataset("control-char-class", {"bad\x01class/x.jpg": good})
    dataset("backslash-name", {"cat/evil\\..\\x.jpg": good})
    dataset("only-loose-files", {"x.jpg": good, "y.txt": b"hello"})
    dataset("empty-root", {})
    linked = dataset("symlinks", {"cat/ok.jpg": good})
    os.symlink("/etc/passwd", linked / "cat/passwd.jpg")
    os.symlink("/", linked / "root-link")
    os.symlink(linked / "cat", linked / "cat/loop")
    fifo = dataset("fifo", {"cat/ok.jpg": good})
    os.mkfifo(fifo / "cat/pipe.jpg")
    (folder / "plain-file.jpg").write_bytes(good)
    inputs.append(folder / "plain-file.jpg")
    inputs.append(folder / "does-not-exist")
    return inputs


def _count_malformed() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        return len(malformed_inputs(Path(tmp)))


MALFORMED_COUNT = _count_malformed()


@pytest.mark.parametrize("index", range(MALFORMED_COUNT))
def test_malformed_inputs_are_rejections_not_crashes(tmp_path: Path, index: int) -> None:
    inputs = malformed_inputs(tmp_path / "in")
    assert len(inputs) >= 12
    result = load_malformed(FOLDER, inputs[index], LoadOptions(), watch=tmp_path)
    if result is None:
        return
    for image in result.labels.images:
        assert image.name.split("/")[-1] == "ok.jpg", image.name
