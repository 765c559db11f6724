"""Pascal VOC XML: exact float round trips with the 1-based pixel convention, element-path
rejections, subfolders that keep same basenames apart, and hostile XML that never crashes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from checks import load_malformed
from hypothesis import HealthCheck, given, settings
from strategies import assert_label_sets_equal, label_sets

from visionloop.core.errors import ConfigError
from visionloop.core.labels import ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.model import Annotation, LabeledImage, LabelSet
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format

VOC = get_format("voc")
HUMAN = Provenance.human("tester")
ROUND_TRIP = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _round_trip(labels: LabelSet, predictions: bool = False) -> LabelSet:
    """VOC files hold no class list, so loading uses the project schema (as an import does)."""
    options = LoadOptions(schema=labels.schema)
    with tempfile.TemporaryDirectory() as tmp:
        VOC.save(labels, Path(tmp) / "gt", SaveOptions())
        inferred = VOC.load(Path(tmp) / "gt", LoadOptions()).labels.schema
        used = {
            n
            for image in labels.images
            for a in image.annotations
            if a.provenance.kind is ProvenanceKind.HUMAN
            for n in a.label.class_counts()
        }
        assert set(inferred.classes if inferred else []) == used
        result = VOC.load(Path(tmp) / "gt", options)
        assert result.rejections == [], result.rejections
        if predictions:
            VOC.save(labels, Path(tmp) / "pred", SaveOptions(predictions=True))
            predicted = VOC.load(Path(tmp) / "pred", options)
            assert predicted.rejections == []
            by_name = {image.name: image for image in result.labels.images}
            for image in predicted.labels.images:
                by_name[image.name].annotations.extend(
                    a for a in image.annotations if a.provenance.kind is ProvenanceKind.MODEL
                )
        return result.labels


@ROUND_TRIP
@given(labels=label_sets(TaskType.DETECTION, integer=False))
def test_float_boxes_round_trip(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels))


@ROUND_TRIP
@given(labels=label_sets(TaskType.DETECTION, integer=True, predictions=True))
def test_integer_boxes_and_predictions_round_trip(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _round_trip(labels, predictions=True))


def _xml(objects: str, filename: str = "a.jpg", size: str = "<width>100</width><height>50</height>") -> str:
    return (
        f"<annotation><folder>VOC2012</folder><filename>{filename}</filename>"
        f"<size>{size}<depth>3</depth></size>{objects}</annotation>"
    )


def _object(name: str = "cat", box: str = "1 1 10 20", extra: str = "") -> str:
    xmin, ymin, xmax, ymax = box.split()
    return (
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult>{extra}<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
    )


def test_reads_voc_one_based_pixels_flags_and_subfolders(tmp_path: Path) -> None:
    (tmp_path / "Annotations/sub").mkdir(parents=True)
    flags = (
        "<occluded>1</occluded>"
        "<attributes><attribute><name>color</name><value>red</value></attribute></attributes>"
    )
    (tmp_path / "Annotations/a.xml").write_text(_xml(_object(box="1 1 100 50")))
    (tmp_path / "Annotations/sub/a.xml").write_text(
        _xml(_object("dog", "11 21 30 40", flags).replace("<difficult>0", "<difficult>1"))
    )
    result = VOC.load(tmp_path, LoadOptions())
    assert result.rejections == [] and result.records == 2
    images = {image.name: image for image in result.labels.images}
    assert sorted(images) == ["a.jpg", "sub/a.jpg"]
    whole = images["a.jpg"].annotations[0].label
    assert isinstance(whole, ObjectLabels)
    np.testing.assert_array_equal(whole.boxes, [[0, 0, 100, 50]])
    label = images["sub/a.jpg"].annotations[0].label
    assert isinstance(label, ObjectLabels) and label.attributes is not None
    np.testing.assert_array_equal(label.boxes, [[10, 20, 30, 40]])
    assert label.attributes[0] == {"difficult": 1, "occluded": 1, "color": "red"}
    assert result.labels.schema is not None and result.labels.schema.classes == ["cat", "dog"]
    out = tmp_path / "out"
    VOC.save(result.labels, out, SaveOptions())
    text = (out / "Annotations/sub/a.xml").read_text()
    assert "<xmin>11</xmin>" in text and "<filename>sub/a.jpg</filename>" in text
    again = VOC.load(out / "Annotations/sub/a.xml", LoadOptions())
    assert again.labels.images[0].annotations[0].label.attributes == label.attributes  # type: ignore[union-attr]


def test_save_refuses_two_images_with_one_annotation_file(tmp_path: Path) -> None:
    schema = LabelSchema(task=TaskType.DETECTION, classes=["cat"])
    labels = LabelSet(schema, [LabeledImage("x.jpg", 4, 4), LabeledImage("x.png", 4, 4)])
    with pytest.raises(ConfigError, match="both need the file"):
        VOC.save(labels, tmp_path, SaveOptions())


@pytest.mark.parametrize(
    ("bad", "locator", "reason"),
    [
        (_object(box="6 5 5 9"), "annotation/object[2]/bndbox", "zero or negative size"),
        (_object(box="1 1 500 9"), "annotation/object[2]/bndbox", "outside the 100x50 image"),
        (_object(box="1 x 5 9"), "annotation/object[2]/bndbox/ymin", "not a number"),
        (_object(box="1 1 inf 9"), "annotation/object[2]/bndbox/xmax", "not a finite number"),
        (_object(name=""), "annotation/object[2]/name", "non-empty <name>"),
        (_object(name="zebra"), "annotation/object[2]/name", "unknown class 'zebra'"),
        (
            _object(extra="<truncated>2</truncated>").replace("<truncated>0</truncated>", ""),
            "annotation/object[2]/truncated",
            "must be 0 or 1",
        ),
        ("<object><name>cat</name></object>", "annotation/object[2]/bndbox", "needs a <bndbox>"),
        (_object().replace("<xmax>10</xmax>", ""), "annotation/object[2]/bndbox/xmax", "needs <xmax>"),
        (_object(extra="<score>3</score>"), "annotation/object[2]/score", "score must be within"),
    ],
)
def test_bad_objects_are_rejected_with_element_path(
    tmp_path: Path, bad: str, locator: str, reason: str
) -> None:
    path = tmp_path / "a.xml"
    path.write_text(_xml(_object() + bad + _object("dog")))
    schema = LabelSchema(task=TaskType.DETECTION, classes=["cat", "dog"])
    result = VOC.load(path, LoadOptions(schema=schema))
    assert result.records == 3 and result.imported == 2
    [rejection] = result.rejections
    assert (rejection.file, rejection.locator) == (str(path), locator)
    assert reason in rejection.reason


@pytest.mark.parametrize(
    ("document", "locator", "reason"),
    [
        (_xml("", filename="../../etc/passwd"), "annotation/filename", "'..' segments"),
        (_xml("", filename=""), "annotation/filename", "needs a <filename>"),
        (_xml("", size="<width>-3</width><height>5</height>"), "annotation/size/width", "positive integer"),
        ("<notvoc/>", "notvoc", "must be <annotation>"),
        ("<annotation><filename>a.jpg", "/", "invalid XML"),
    ],
)
def test_whole_file_problems_are_one_rejection(
    tmp_path: Path, document: str, locator: str, reason: str
) -> None:
    path = tmp_path / "a.xml"
    path.write_text(document)
    result = VOC.load(path, LoadOptions())
    assert result.records == 1 and result.imported == 0
    [rejection] = result.rejections
    assert rejection.locator == locator and reason in rejection.reason


def test_duplicate_image_in_two_files(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text(_xml(_object(), filename="x/img.jpg"))
    (tmp_path / "b.xml").write_text(_xml(_object(), filename="x/img.jpg"))
    result = VOC.load(tmp_path, LoadOptions())
    assert result.records == 2 and len(result.rejections) == 1
    assert "duplicate image" in result.rejections[0].reason


def test_predictions_export_writes_scores(tmp_path: Path) -> None:
    schema = LabelSchema(task=TaskType.DETECTION, classes=["cat"])
    label = ObjectLabels(
        boxes=np.array([[0.5, 1.25, 3.0, 4.0]]), class_names=("cat",), scores=np.array([0.25])
    )
    image = LabeledImage("i.jpg", 10, 10, [Annotation(label, Provenance.model("m", 0.25))])
    VOC.save(LabelSet(schema, [image]), tmp_path, SaveOptions(predictions=True))
    back = VOC.load(tmp_path, LoadOptions()).labels.images[0].annotations
    assert [a.provenance.kind for a in back] == [ProvenanceKind.MODEL]
    assert back[0].label.scores.tolist() == [0.25]  # type: ignore[union-attr]


def test_entity_bombs_and_external_entities_are_refused(tmp_path: Path) -> None:
    for name, document in (("bomb.xml", BILLION_LAUGHS), ("xxe.xml", EXTERNAL_ENTITY)):
        (tmp_path / name).write_text(document)
        result = VOC.load(tmp_path / name, LoadOptions())
        [rejection] = result.rejections
        assert rejection.locator == "/" and "refused unsafe XML" in rejection.reason
    (tmp_path / "dtd.xml").write_text(EXTERNAL_DTD)  # parsed without fetching the DTD
    assert VOC.load(tmp_path / "dtd.xml", LoadOptions()).labels.images[0].name == "a.jpg"


# -- malformed inputs -----------------------------------------------------------------------
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<annotation><filename>&lol9;</filename></annotation>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>a.jpg</filename><object><name>&xxe;</name></object></annotation>
"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE annotation SYSTEM "http://example.invalid/evil.dtd">
<annotation><filename>a.jpg</filename></annotation>
"""


def malformed_inputs(folder: Path) -> list[Path]:
    """At least a dozen hostile or broken VOC inputs; each returned path is what ``load`` gets."""
    folder.mkdir(parents=True, exist_ok=True)
    documents: dict[str, str | bytes] = {
        "truncated.xml": _xml(_object())[:70],
        "garbage.xml": b"\x00\xff\xfe\x89garbage\x00\x01",
        "empty.xml": "",
        "billion-laughs.xml": BILLION_LAUGHS,
        "external-entity.xml": EXTERNAL_ENTITY,
        "external-dtd.xml": EXTERNAL_DTD,
        "traversal.xml": _xml(_object(), filename="../../../../tmp/evil.jpg"),
        "absolute.xml": _xml(_object(), filename="/etc/passwd"),
        "absurd-numbers.xml": _xml(_object(box="-1e308 1e308 1e400 nan")),
        "absurd-size.xml": _xml(_object(), size="<width>99999999999999999999</width><height>1</height>"),
        "wrong-types.xml": _xml("<object><name><b>x</b></name><bndbox>oops</bndbox></object>"),
        "deep-nesting.xml": "<annotation>" + "<a>" * 5000 + "</a>" * 5000 + "</annotation>",
        "wrong-root.xml": "<html><body>hello</body></html>",
        "percent-encoded.xml": _xml(_object(), filename="%2e%2e/%2e%2e/etc/passwd"),
    }
    inputs = []
    for name, content in documents.items():
        path = folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        inputs.append(path)
    (folder / "dataset/Annotations").mkdir(parents=True)
    for name in ("garbage.xml", "billion-laughs.xml", "traversal.xml"):
        (folder / "dataset/Annotations" / name).write_bytes((folder / name).read_bytes())
    os.symlink("/etc/passwd", folder / "dataset/Annotations/link.xml")
    inputs.append(folder / "dataset")
    inputs.append(folder / "missing.xml")
    return inputs


def _count_malformed() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        return len(malformed_inputs(Path(tmp)))


MALFORMED_COUNT = _count_malformed()


@pytest.mark.parametrize("index", range(MALFORMED_COUNT))
def test_malformed_inputs_are_rejections_not_crashes(tmp_path: Path, index: int) -> None:
    inputs = malformed_inputs(tmp_path / "in")
    assert len(inputs) >= 12
    result = load_malformed(VOC, inputs[index], LoadOptions(), watch=tmp_path)
    if result is None:
        return
    for image in result.labels.images:
        assert not image.name.startswith(("/", "..")) and "etc/passwd" not in image.name
