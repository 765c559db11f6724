"""CVAT for images 1.1 XML: lossless round trips, a real-style export read exactly, clear
rejections with element-path locators, and hostile files that never escape as exceptions."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import assert_label_sets_equal, describe, label_sets

from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.masks import rle_decode, rle_encode
from visionloop.formats.model import Annotation, ImportResult, LabeledImage, LabelSet
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format
from visionloop.formats.safeio import FormatFileError, parse_xml

CVAT = get_format("cvat")
ROUND_TRIP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _round_trip(labels: LabelSet) -> LabelSet:
    with tempfile.TemporaryDirectory() as tmp:
        [path] = CVAT.save(labels, Path(tmp), SaveOptions())
        assert path == Path(tmp) / "annotations.xml"
        result = CVAT.load(path, LoadOptions())
        assert result.rejections == [], result.rejections
        assert result.imported == result.records
        return result.labels


def _counts_add_up(result: ImportResult) -> None:
    assert result.imported + len(result.rejections) == result.records
    assert result.imported >= 0


# -- round trips -------------------------------------------------------------------------------
@ROUND_TRIP
@given(labels=label_sets(TaskType.CLASSIFICATION, predictions=True))
def test_classification_round_trip_with_predictions(labels: LabelSet) -> None:
    back = _round_trip(labels)
    assert back.schema == labels.schema
    assert_label_sets_equal(labels, back)
    by_name = {image.name: image for image in back.images}
    for image in labels.images:
        want = [a.label for a in image.annotations if a.provenance.kind is ProvenanceKind.MODEL]
        got = [a.label for a in by_name[image.name].annotations if a.provenance.kind is ProvenanceKind.MODEL]
        assert [(c.score) for c in got] == pytest.approx([c.score for c in want])  # type: ignore[union-attr]


ATTRIBUTE_VALUES = {
    "color": st.text(st.characters(codec="utf-8", categories=["L", "N", "Zs", "P"]), max_size=8),
    "parked": st.booleans(),
    "doors": st.integers(-5, 10**9),
    "weight": st.floats(-1e6, 1e6, allow_nan=False),
    "occluded": st.just(True),
    "z_order": st.integers(1, 9),
}


def _with_attributes(data: st.DataObject, labels: LabelSet) -> LabelSet:
    """Each object gets a random subset of typed attributes (one type per name, as CVAT declares)."""
    for image in labels.images:
        for index, annotation in enumerate(image.annotations):
            label = annotation.label
            assert isinstance(label, ObjectLabels)
            attributes = tuple(
                {
                    key: data.draw(ATTRIBUTE_VALUES[key])
                    for key in data.draw(st.lists(st.sampled_from(sorted(ATTRIBUTE_VALUES)), unique=True))
                }
                for _ in range(len(label))
            )
            changed = ObjectLabels(
                boxes=label.boxes, class_names=label.class_names, scores=label.scores, attributes=attributes
            )
            image.annotations[index] = Annotation(changed, annotation.provenance)
    return labels


def _attributes_by_box(labels: LabelSet) -> dict[tuple[str, str, tuple[float, ...]], list[dict[str, Any]]]:
    out: dict[tuple[str, str, tuple[float, ...]], list[dict[str, Any]]] = {}
    for image in labels.images:
        for annotation in image.annotations:
            label = annotation.label
            assert isinstance(label, ObjectLabels)
            for i in range(len(label)):
                key = (image.name, annotation.provenance.kind.value, tuple(label.boxes[i].tolist()))
                attributes = label.attributes[i] if label.attributes is not None else {}
                out.setdefault(key, []).append(attributes)
    return {key: sorted(value, key=repr) for key, value in out.items()}


@ROUND_TRIP
@given(labels=label_sets(TaskType.DETECTION, predictions=True), data=st.data())
def test_detection_round_trip_keeps_typed_attributes(labels: LabelSet, data: st.DataObject) -> None:
    labels = _with_attributes(data, labels)
    back = _round_trip(labels)
    assert back.schema == labels.schema
    assert_label_sets_equal(labels, back)
    assert _attributes_by_box(back) == _attributes_by_box(labels)


@ROUND_TRIP
@given(labels=label_sets(TaskType.SEGMENTATION, polygons=True, predictions=True))
def test_polygon_segmentation_round_trip_with_predictions(labels: LabelSet) -> None:
    back = _round_trip(labels)
    assert back.schema == labels.schema
    assert_label_sets_equal(labels, back)


@ROUND_TRIP
@given(labels=label_sets(TaskType.SEGMENTATION, masks=True))
def test_mask_segmentation_round_trip_is_pixel_exact(labels: LabelSet) -> None:
    back = _round_trip(labels)
    assert back.schema is not None and back.schema.task is TaskType.SEGMENTATION
    assert_label_sets_equal(labels, back, mask_pixels=0)


def _as_cvat_keeps_keypoints(labels: LabelSet) -> LabelSet:
    """CVAT skeletons have no box: the box becomes the labeled keypoints' extent (a documented
    loss); objects without a labeled keypoint are saved as boxes and keep theirs."""
    out = LabelSet(labels.schema)
    for image in labels.images:
        copy = LabeledImage(image.name, image.width, image.height)
        for annotation in image.annotations:
            label = annotation.label
            assert isinstance(label, ObjectLabels) and label.keypoints is not None
            boxes = label.boxes.copy()
            for i in range(len(label)):
                points = label.keypoints[i][label.keypoints[i, :, 2] > 0, :2]
                if len(points):
                    boxes[i] = [*points.min(axis=0), *points.max(axis=0)]
            changed = ObjectLabels(
                boxes=boxes, class_names=label.class_names, scores=label.scores, keypoints=label.keypoints
            )
            copy.annotations.append(Annotation(changed, annotation.provenance))
        out.images.append(copy)
    return out


@ROUND_TRIP
@given(labels=label_sets(TaskType.KEYPOINTS, predictions=True))
def test_keypoints_round_trip_keeps_visibility_and_skeleton(labels: LabelSet) -> None:
    expected = _as_cvat_keeps_keypoints(labels)
    with tempfile.TemporaryDirectory() as tmp:
        [path] = CVAT.save(labels, Path(tmp) / "out.xml", SaveOptions())
        result = CVAT.load(path, LoadOptions())
    assert result.rejections == [] and result.imported == result.records
    assert result.labels.schema == labels.schema
    assert_label_sets_equal(expected, result.labels)


@settings(max_examples=5, deadline=None)
@given(labels=label_sets(TaskType.DETECTION, predictions=True, min_objects=1))
def test_predictions_option_writes_model_annotations_only(labels: LabelSet) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        [path] = CVAT.save(labels, Path(tmp) / "p.xml", SaveOptions(predictions=True))
        result = CVAT.load(path, LoadOptions())
    kinds = {a.provenance.kind for image in result.labels.images for a in image.annotations}
    assert kinds == {ProvenanceKind.MODEL}
    assert all(a.provenance.model_version == "cvat-auto" for i in result.labels.images for a in i.annotations)


def test_masks_stay_bounded_to_their_crop(tmp_path: Path) -> None:
    """The loader never builds a dense image for columns outside the crop: compare with rle_encode."""
    mask = np.zeros((7, 9), dtype=bool)
    mask[2:5, 3] = True
    mask[6, 8] = True
    schema = LabelSchema(task=TaskType.SEGMENTATION, classes=["blob"])
    label = ObjectLabels(boxes=np.array([[3, 2, 9, 7]]), class_names=("blob",), masks=(rle_encode(mask),))
    image = LabeledImage("m.png", 9, 7, [Annotation(label, _human())])
    back = _round_trip(LabelSet(schema, [image]))
    got = back.images[0].annotations[0].label
    assert isinstance(got, ObjectLabels) and got.masks is not None and got.masks[0] is not None
    assert got.masks[0] == rle_encode(mask)


def _human() -> Any:
    from visionloop.core.provenance import Provenance

    return Provenance.human("tester")


def test_odd_keypoint_names_and_a_skeleton_survive(tmp_path: Path) -> None:
    schema = LabelSchema(
        task=TaskType.KEYPOINTS,
        classes=['say "hi" <b>'],
        keypoints=["a&b", 'q"uote', "<x>"],
        skeleton=[("<x>", "a&b"), ('q"uote', "<x>")],
    )
    keypoints = np.array([[[1, 2, 2], [3, 4, 1], [0, 0, 0]]], dtype=np.float64)
    label = ObjectLabels(
        boxes=np.array([[1, 2, 3, 4]]), class_names=(schema.classes[0],), keypoints=keypoints
    )
    labels = LabelSet(schema, [LabeledImage("x.png", 8, 8, [Annotation(label, _human())])])
    back = _round_trip(labels)
    assert back.schema == schema
    assert_label_sets_equal(labels, back)


def test_save_refuses_what_cvat_cannot_hold(tmp_path: Path) -> None:
    from visionloop.formats.safeio import FormatFileError

    schema = LabelSchema(task=TaskType.DETECTION, classes=["cat"])
    label = ObjectLabels(
        boxes=np.array([[1, 1, 2, 2]]), class_names=("cat",), attributes=({"note": "bell\x07"},)
    )
    bad_text = LabelSet(schema, [LabeledImage("a.jpg", 4, 4, [Annotation(label, _human())])])
    with pytest.raises(FormatFileError, match="characters XML cannot hold"):
        CVAT.save(bad_text, tmp_path, SaveOptions())
    with pytest.raises(FormatFileError, match="no width/height"):
        CVAT.save(LabelSet(schema, [LabeledImage("b.jpg")]), tmp_path, SaveOptions())
    assert not (tmp_path / "annotations.xml").exists()


# -- a file as CVAT writes it ------------------------------------------------------------------
SKELETON_SVG = (
    '&lt;line x1="30" y1="20" x2="50" y2="40" data-type="edge" data-node-from="1" '
    'stroke="black" data-node-to="2"&gt;&lt;/line&gt;'
    '&lt;line x1="30" y1="20" x2="70" y2="40" data-type="edge" data-node-from="1" '
    'stroke="black" data-node-to="3"&gt;&lt;/line&gt;'
    '&lt;circle r="1.5" stroke="black" fill="#b3b3b3" cx="30" cy="20" stroke-width="0.1" '
    'data-type="element node" data-element-id="1" data-node-id="1" data-label-id="7" '
    'data-label-name="nose"&gt;&lt;/circle&gt;'
    '&lt;circle r="1.5" stroke="black" fill="#b3b3b3" cx="50" cy="40" stroke-width="0.1" '
    'data-type="element node" data-element-id="2" data-node-id="2" data-label-id="8" '
    'data-label-name="left_eye"&gt;&lt;/circle&gt;'
    '&lt;circle r="1.5" stroke="black" fill="#b3b3b3" cx="70" cy="40" stroke-width="0.1" '
    'data-type="element node" data-element-id="3" data-node-id="3" data-label-id="9" '
    'data-label-name="right_eye"&gt;&lt;/circle&gt;'
)


REAL_EXPORT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>42</id>
      <name>street scenes</name>
      <size>2</size>
      <mode>annotation</mode>
      <overlap>0</overlap>
      <created>2024-03-01 10:00:00.000000+00:00</created>
      <labels>
        <label>
          <name>car</name>
          <color>#fa3253</color>
          <type>any</type>
          <attributes>
            <attribute>
              <name>color</name>
              <mutable>False</mutable>
              <input_type>select</input_type>
              <default_value>red</default_value>
              <values>red
blue</values>
            </attribute>
            <attribute>
              <name>parked</name>
              <mutable>False</mutable>
              <input_type>checkbox</input_type>
              <default_value>false</default_value>
              <values>false</values>
            </attribute>
            <attribute>
              <name>doors</name>
              <mutable>False</mutable>
              <input_type>number</input_type>
              <default_value>2</default_value>
              <values>2;5;1</values>
            </attribute>
          </attributes>
        </label>
        <label>
          <name>person</name>
          <color>#33ddff</color>
          <type>skeleton</type>
          <attributes>
          </attributes>
          <svg>SKELETON_SVG</svg>
        </label>
        <label>
          <name>nose</name>
          <color>#d12345</color>
          <type>points</type>
          <attributes>
          </attributes>
          <parent>person</parent>
        </label>
        <label>
          <name>left_eye</name>
          <color>#350dea</color>
          <type>points</type>
          <attributes>
          </attributes>
          <parent>person</parent>
        </label>
        <label>
          <name>right_eye</name>
          <color>#479ffe</color>
          <type>points</type>
          <attributes>
          </attributes>
          <parent>person</parent>
        </label>
      </labels>
      <segments>
        <segment><id>1</id><start>0</start><stop>1</stop></segment>
      </segments>
      <owner><username>alice</username><email>alice@example.com</email></owner>
    </task>
    <dumped>2024-03-02 09:00:00.000000+00:00</dumped>
  </meta>
  <image id="0" name="frames/0001.jpg" width="20" height="10">
    <box label="car" source="manual" occluded="1" xtl="1.50" ytl="2.25" xbr="8.00" ybr="9.00" z_order="2">
      <attribute name="color">blue</attribute>
      <attribute name="parked">true</attribute>
      <attribute name="doors">4</attribute>
    </box>
    <polygon label="car" source="auto" occluded="0" points="10.00,1.00;15.50,1.00;15.50,6.25" z_order="0">
      <attribute name="color">red</attribute>
      <attribute name="parked">false</attribute>
      <attribute name="doors">2</attribute>
    </polygon>
    <mask label="car" source="manual" occluded="0" rle="1, 2, 3, 4, 2"
          left="3" top="2" width="4" height="3" z_order="0">
      <attribute name="color">red</attribute>
      <attribute name="parked">false</attribute>
      <attribute name="doors">2</attribute>
    </mask>
    <skeleton label="person" source="manual" z_order="0">
      <points label="nose" source="manual" outside="0" occluded="0" points="10.50,4.25">
      </points>
      <points label="left_eye" source="manual" outside="1" occluded="0" points="11.00,3.00">
      </points>
      <points label="right_eye" source="manual" outside="0" occluded="1" points="12.00,3.00">
      </points>
    </skeleton>
    <polyline label="car" source="manual" occluded="0" points="1.00,1.00;2.00,2.00" z_order="0">
    </polyline>
  </image>
  <image id="1" name="frames/0002.jpg" width="20" height="10">
  </image>
</annotations>
""".replace("SKELETON_SVG", SKELETON_SVG)


def test_reads_a_real_style_export_coordinate_by_coordinate(tmp_path: Path) -> None:
    path = tmp_path / "annotations.xml"
    path.write_text(REAL_EXPORT, encoding="utf-8")
    result = CVAT.load(path, LoadOptions())
    assert result.records == 5 and result.imported == 4
    [rejection] = result.rejections
    assert rejection.locator == "annotations/image[1]/polyline[1]" and "unsupported shape" in rejection.reason
    schema = result.labels.schema
    assert schema == LabelSchema(
        task=TaskType.KEYPOINTS,
        classes=["car", "person"],
        keypoints=["nose", "left_eye", "right_eye"],
        skeleton=[("nose", "left_eye"), ("nose", "right_eye")],
    )
    first, second = result.labels.images
    assert (first.name, first.width, first.height) == ("frames/0001.jpg", 20, 10)
    assert (second.name, second.annotations) == ("frames/0002.jpg", [])
    human, model = first.annotations
    assert (
        human.provenance.kind is ProvenanceKind.HUMAN
        and human.provenance.annotator == "import:annotations.xml"
    )
    assert model.provenance.kind is ProvenanceKind.MODEL and model.provenance.model_version == "cvat-auto"
    objects = human.label
    assert isinstance(objects, ObjectLabels) and objects.class_names == ("car", "car", "person")
    np.testing.assert_array_equal(objects.boxes, [[1.5, 2.25, 8, 9], [3, 2, 7, 5], [10.5, 3, 12, 4.25]])
    assert objects.attributes == (
        {"occluded": True, "z_order": 2, "color": "blue", "parked": True, "doors": 4},
        {"color": "red", "parked": False, "doors": 2},
        {},
    )
    assert objects.masks is not None and objects.masks[0] is None and objects.masks[2] is None
    expected_mask = np.zeros((10, 20), dtype=bool)
    for x, y in [(4, 2), (5, 2), (5, 3), (6, 3), (3, 4), (4, 4)]:
        expected_mask[y, x] = True
    np.testing.assert_array_equal(rle_decode(objects.masks[1]), expected_mask)  # type: ignore[arg-type]
    assert objects.keypoints is not None
    np.testing.assert_array_equal(objects.keypoints[2], [[10.5, 4.25, 2], [0, 0, 0], [12, 3, 1]])
    predicted = model.label
    assert isinstance(predicted, ObjectLabels) and predicted.polygons is not None
    np.testing.assert_array_equal(predicted.polygons[0][0], [[10, 1], [15.5, 1], [15.5, 6.25]])
    np.testing.assert_array_equal(predicted.boxes, [[10, 1, 15.5, 6.25]])


def test_real_style_export_survives_save_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "annotations.xml"
    path.write_text(REAL_EXPORT, encoding="utf-8")
    first = CVAT.load(path, LoadOptions()).labels
    [again] = CVAT.save(first, tmp_path / "again.xml", SaveOptions())
    second = CVAT.load(again, LoadOptions())
    assert second.rejections == []
    assert second.labels.schema == first.schema
    assert_label_sets_equal(first, second.labels)
    assert describe(second.labels) == describe(first)


def test_project_export_labels_and_tags_for_classification(tmp_path: Path) -> None:
    text = """<annotations><version>1.1</version><meta><project><labels>
      <label><name>good</name><type>tag</type><attributes/></label>
      <label><name>bad</name><type>tag</type><attributes/></label></labels></project></meta>
      <image id="0" name="a.jpg" width="4" height="4"><tag label="bad" source="manual"/></image>
      <image id="1" name="b.jpg" width="4" height="4">
        <tag label="good" source="semi-auto"><attribute name="score">0.25</attribute></tag></image>
    </annotations>"""
    path = tmp_path / "p.xml"
    path.write_text(text)
    result = CVAT.load(path, LoadOptions())
    assert result.rejections == [] and result.records == 2
    assert result.labels.schema == LabelSchema(task=TaskType.CLASSIFICATION, classes=["good", "bad"])
    a, b = result.labels.images
    assert a.annotations[0].label == ClassLabel("bad")
    assert b.annotations[0].label == ClassLabel("good", 0.25)
    assert b.annotations[0].provenance.kind is ProvenanceKind.MODEL


# -- rejections --------------------------------------------------------------------------------
def _document(shapes: str, images: str = "") -> str:
    return (
        "<annotations><version>1.1</version><meta><task><labels>"
        "<label><name>cat</name><type>rectangle</type></label></labels></task></meta>"
        '<image id="0" name="a.jpg" width="100" height="50">'
        '<box label="cat" xtl="1" ytl="1" xbr="5" ybr="4"/>' + shapes + "</image>" + images + "</annotations>"
    )


@pytest.mark.parametrize(
    ("shape", "locator", "reason"),
    [
        ('<box label="cat" xtl="9" ytl="1" xbr="5" ybr="4"/>', "box[2]", "zero or negative size"),
        ('<box label="cat" xtl="1" ytl="1" xbr="5" ybr="4" source="x"/>', "box[2]", "unknown source"),
        ('<box label="cat" xtl="90" ytl="1" xbr="150" ybr="4"/>', "box[2]", "outside the 100x50 image"),
        ('<box label="cat" xtl="a" ytl="1" xbr="5" ybr="4"/>', "box[2]", "xtl must be a number"),
        ('<box label="cat" xtl="nan" ytl="1" xbr="5" ybr="4"/>', "box[2]", "finite"),
        ('<box label="cat" xtl="1" ytl="1" xbr="5"/>', "box[2]", "missing ybr"),
        ('<box xtl="1" ytl="1" xbr="5" ybr="4"/>', "box[2]", "needs a label"),
        ('<box label="cat" xtl="1" ytl="1" xbr="5" ybr="4" occluded="2"/>', "box[2]", "occluded must be"),
        ('<box label="cat" xtl="1" ytl="1" xbr="5" ybr="4" z_order="x"/>', "box[2]", "z_order must be"),
        ('<box label="cat" xtl="1" ytl="1" xbr="5" ybr="4"><attribute>v</attribute></box>', "box[2]", "name"),
        ('<polygon label="cat" points="1,1;2,2"/>', "polygon[1]", "at least 3"),
        ('<polygon label="cat" points="1,1;2,2;3"/>', "polygon[1]", "x,y pairs"),
        ('<polygon label="cat" points="1,1;200,2;3,3"/>', "polygon[1]", "outside"),
        ('<mask label="cat" rle="1, 2" left="0" top="0" width="2" height="2"/>', "mask[1]", "sum to 3"),
        ('<mask label="cat" rle="0, 4" left="99" top="0" width="2" height="2"/>', "mask[1]", "outside"),
        ('<mask label="cat" rle="4" left="0" top="0" width="2" height="2"/>', "mask[1]", "no foreground"),
        ('<mask label="cat" rle="a, 4" left="0" top="0" width="2" height="2"/>', "mask[1]", "integers"),
        ('<mask label="cat" rle="0, 4" left="-1" top="0" width="2" height="2"/>', "mask[1]", "left must"),
        (
            '<mask label="cat" rle="0, 1000000000000" left="0" top="0" width="2" height="2"/>',
            "mask[1]",
            "sum to 1000000000000",
        ),
        ('<ellipse label="cat" cx="1" cy="1" rx="1" ry="1"/>', "ellipse[1]", "unsupported shape <ellipse>"),
        ('<tag label="cat"/>', "tag[1]", "needs a classification project"),
        ('<skeleton label="cat"><points label="x" points="1,1"/></skeleton>', "skeleton[1]", "keypoints"),
        ('<points label="cat" points="1,1"/>', "points[1]", "keypoints project"),
    ],
)
def test_invalid_shapes_are_rejected_with_element_path_and_reason(
    tmp_path: Path, shape: str, locator: str, reason: str
) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(_document(shape))
    result = CVAT.load(path, LoadOptions())
    assert result.records == 2 and result.imported == 1
    [rejection] = result.rejections
    assert rejection.file == str(path)
    assert rejection.locator == f"annotations/image[1]/{locator}"
    assert reason in rejection.reason


def test_whole_images_rejected_once_and_their_shapes_not_counted(tmp_path: Path) -> None:
    images = (
        '<image id="1" name="a.jpg" width="10" height="10"><box label="cat" xtl="0" ytl="0" xbr="1" ybr="1"/>'
        "</image>"
        '<image id="2" name="../../etc/passwd" width="10" height="10"/>'
        '<image id="3" name="ok.jpg" width="0" height="10"/>'
        '<image id="4" name="ok2.jpg" height="10"/>'
        '<image id="5" name="%2e%2e/x.jpg" width="10" height="10"/>'
        '<image id="6" width="10" height="10"/>'
        "<track id='0' label='cat'/>"
    )
    path = tmp_path / "images.xml"
    path.write_text(_document("", images))
    result = CVAT.load(path, LoadOptions())
    reasons = {r.locator: r.reason for r in result.rejections}
    assert "duplicate image name 'a.jpg'" in reasons["annotations/image[2]"]
    assert "'..' segments" in reasons["annotations/image[3]"]
    assert "width must be an integer within [1" in reasons["annotations/image[4]"]
    assert "width must be an integer" in reasons["annotations/image[5]"]
    assert "'..' segments" in reasons["annotations/image[6]"]
    assert "needs a name" in reasons["annotations/image[7]"]
    assert "CVAT for video" in reasons["annotations/track[1]"]
    assert result.records == 1 + 6 + 1 and result.imported == 1
    assert [image.name for image in result.labels.images] == ["a.jpg"]


def test_unknown_labels_rejected_against_a_project_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.xml"
    path.write_text(_document('<box label="zebra" xtl="1" ytl="1" xbr="5" ybr="4"/>'))
    schema = LabelSchema(task=TaskType.DETECTION, classes=["cat"])
    result = CVAT.load(path, LoadOptions(schema=schema))
    [rejection] = result.rejections
    assert rejection.locator == "annotations/image[1]/box[2]" and "unknown class 'zebra'" in rejection.reason
    assert result.labels.schema is schema
    _counts_add_up(result)


def test_skeleton_problems(tmp_path: Path) -> None:
    meta = (
        "<annotations><meta><task><labels><label><name>p</name><type>skeleton</type></label>"
        "<label><name>a</name><type>points</type><parent>p</parent></label>"
        "<label><name>b</name><type>points</type><parent>p</parent></label></labels></task></meta>"
        '<image id="0" name="i.jpg" width="10" height="10">'
    )
    shapes = [
        '<skeleton label="p"><points label="a" points="1,1"/><points label="a" points="2,2"/></skeleton>',
        '<skeleton label="p"><points label="zz" points="1,1"/></skeleton>',
        '<skeleton label="p"><points label="a" points="1,1;2,2"/></skeleton>',
        '<skeleton label="p"><points label="a" outside="1" points="1,1"/></skeleton>',
        '<skeleton label="p"><points label="a" points="1,50"/></skeleton>',
        '<skeleton label="p"><points label="a" points="1,2"/><points label="b" occluded="1" points="3,4"/>'
        "</skeleton>",
        '<points label="p" points="1,2;3,4"/>',
        '<points label="p" points="1,2"/>',
    ]
    path = tmp_path / "k.xml"
    path.write_text(meta + "".join(shapes) + "</image></annotations>")
    result = CVAT.load(path, LoadOptions())
    reasons = {r.locator.rsplit("/", 1)[1]: r.reason for r in result.rejections}
    assert "twice" in reasons["skeleton[1]"]
    assert "not a known keypoint" in reasons["skeleton[2]"]
    assert "one x,y point" in reasons["skeleton[3]"]
    assert "no labeled" in reasons["skeleton[4]"]
    assert "outside the 10x10 image" in reasons["skeleton[5]"]
    assert "1 points; this project has 2" in reasons["points[2]"]
    assert result.records == 8 and result.imported == 2
    label = result.labels.images[0].annotations[0].label
    assert isinstance(label, ObjectLabels) and label.keypoints is not None
    np.testing.assert_array_equal(label.keypoints, [[[1, 2, 2], [3, 4, 1]], [[1, 2, 2], [3, 4, 2]]])
    np.testing.assert_array_equal(label.boxes, [[1, 2, 3, 4], [1, 2, 3, 4]])


def test_grouped_polygons_are_one_object(tmp_path: Path) -> None:
    path = tmp_path / "g.xml"
    path.write_text(
        _document(
            '<polygon label="cat" group_id="3" points="1,1;4,1;4,4"/>'
            '<polygon label="cat" group_id="3" points="10,10;20,10;20,20"/>'
        )
    )
    result = CVAT.load(path, LoadOptions())
    assert result.rejections == [] and result.records == 3
    label = result.labels.images[0].annotations[0].label
    assert isinstance(label, ObjectLabels) and len(label) == 2 and label.polygons is not None
    assert len(label.polygons[1]) == 2
    np.testing.assert_array_equal(label.boxes[1], [1, 1, 20, 20])


# -- hostile and broken files ------------------------------------------------------------------
PASSWD_MARKER = "root:x:0:0"  # noqa: S105 - the first line of /etc/passwd, not a secret


def malformed_inputs(folder: Path) -> list[Path]:
    """Write distinct malformed or hostile CVAT files into ``folder``; return their paths."""
    head = '<annotations><version>1.1</version><image id="0" name="a.jpg" width="10" height="10">'
    tail = "</image></annotations>"
    entities = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    cases: dict[str, bytes | str] = {
        "billion_laughs.xml": f"<?xml version='1.0'?><!DOCTYPE annotations [{''.join(entities)}]>"
        + head.replace('name="a.jpg"', 'name="&l9;"')
        + tail,
        "xxe.xml": '<?xml version="1.0"?><!DOCTYPE annotations [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        + head
        + '<box label="&xxe;" xtl="1" ytl="1" xbr="2" ybr="2"/>'
        + tail,
        "xxe_parameter.xml": '<?xml version="1.0"?><!DOCTYPE annotations [<!ENTITY % p SYSTEM '
        '"file:///etc/passwd"> %p;]>' + head + tail,
        "external_dtd.xml": '<?xml version="1.0"?><!DOCTYPE annotations SYSTEM "http://127.0.0.1:9/x.dtd">'
        + head
        + tail,
        "dtd.xml": '<?xml version="1.0"?><!DOCTYPE annotations [<!ELEMENT annotations ANY>]>' + head + tail,
        "garbage.xml": bytes(range(256)) * 4,
        "empty.xml": b"",
        "truncated.xml": (head + '<box label="cat" xtl="1" ytl="1"')[:-3],
        "wrong_root.xml": "<html><body>not cvat</body></html>",
        "huge_numbers.xml": head.replace('width="10"', 'width="' + "9" * 400 + '"')
        + '</image><image id="1" name="b.jpg" width="10" height="10">'
        + '<box label="c" xtl="1e308" ytl="-1e999" xbr="1'
        + "0" * 400
        + '" ybr="2"/>'
        + '<box label="c" xtl="1" ytl="1" xbr="2" ybr="2" z_order="9999999999999999999999"/>'
        + tail,
        "nan.xml": head + '<box label="c" xtl="NaN" ytl="1" xbr="inf" ybr="2"/>'
        '<polygon label="c" points="nan,1;2,2;3,3"/>' + tail,
        "rle_bomb.xml": head
        + '<mask label="c" rle="0, 1000000000000" left="0" top="0" width="2" height="2"/>'
        '<mask label="c" rle="0, 1000000000000" left="0" top="0" width="1000000" height="1000000"/>' + tail,
        "huge_image_mask.xml": '<annotations><image id="0" name="a.jpg" width="2000000000" '
        'height="2000000000"><mask label="c" rle="0, 4000000000000000000" left="0" top="0" '
        'width="2000000000" height="2000000000"/>' + tail,
        "unicode_digits.xml": head
        + '<mask label="c" rle="², ٣" left="0" top="0" width="1" height="1"/>'
        + tail,
        "odd_points.xml": head
        + '<polygon label="c" points="1,2;3,4;5"/><points label="c" points="1"/>'
        + tail,
        "traversal.xml": '<annotations><image id="0" name="../../../etc/passwd" width="1" height="1"/>'
        '<image id="1" name="/etc/passwd" width="1" height="1"/>'
        '<image id="2" name="C:\\Windows\\x.jpg" width="1" height="1"/>'
        '<image id="3" name="%252e%252e/x.jpg" width="1" height="1"/>'
        '<image id="4" name="sub/../../x.jpg" width="1" height="1"/></annotations>',
        "control_characters.xml": head.replace("a.jpg", "a&#1;b.jpg") + tail,
        "bad_labels.xml": "<annotations><meta><task><labels><label><name>a,b</name></label><label/>"
        "<label><name>ok</name><type>skeleton</type><svg>&lt;line data-node-from='x'&gt;</svg></label>"
        "<label><name>k</name><parent>ok</parent></label><label><name>k</name><parent>ok</parent></label>"
        "</labels></task></meta>"
        + head[len("<annotations><version>1.1</version>") :]
        + '<skeleton label="ok"><points label="k" points="1,1"/></skeleton><tag label=" sp "/>'
        + tail,
        "deep.xml": head + "<box>" * 5000 + "</box>" * 5000 + tail,
        "utf16.xml": (head + tail).encode("utf-16"),
        "attribute_junk.xml": head + '<box label="c" source="auto" xtl="1" ytl="1" xbr="2" ybr="2">'
        '<attribute name="score">nan</attribute></box>'
        '<tag label="c" source="auto"><attribute name="score">7</attribute></tag>' + tail,
        "comments_and_pi.xml": head + "<!-- x --><?pi x?>text" + tail,
    }
    paths = []
    for name, content in cases.items():
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        paths.append(path)
    return paths


MALFORMED_NAMES = [p.name for p in malformed_inputs(Path(tempfile.mkdtemp()))]


def test_at_least_fifteen_distinct_malformed_inputs(tmp_path: Path) -> None:
    paths = malformed_inputs(tmp_path)
    assert len(paths) >= 15 and len({p.read_bytes() for p in paths}) == len(paths)


@pytest.mark.parametrize("name", MALFORMED_NAMES)
def test_malformed_inputs_become_rejections(tmp_path: Path, name: str) -> None:
    [path] = [p for p in malformed_inputs(tmp_path) if p.name == name]
    for options in (LoadOptions(), LoadOptions(schema=LabelSchema(task=TaskType.DETECTION, classes=["c"]))):
        result = CVAT.load(path, options)
        _counts_add_up(result)
        assert all(r.file == str(path) and r.locator and r.reason for r in result.rejections)
        text = repr(describe(result.labels)) + repr([image.name for image in result.labels.images])
        assert PASSWD_MARKER not in text and "/etc/passwd" not in text
        for image in result.labels.images:
            assert ".." not in image.name.split("/") and not image.name.startswith("/")


def test_hostile_files_are_refused_for_the_right_reason(tmp_path: Path) -> None:
    results = {p.name: CVAT.load(p, LoadOptions()) for p in malformed_inputs(tmp_path)}
    for name in ("billion_laughs.xml", "xxe.xml", "xxe_parameter.xml"):
        [rejection] = results[name].rejections
        assert rejection.locator == "/" and (
            "unsafe XML" in rejection.reason or "invalid XML" in rejection.reason
        )
    assert "expected an <annotations> root" in results["wrong_root.xml"].rejections[0].reason
    bomb = results["rle_bomb.xml"].rejections
    assert [r.locator for r in bomb] == ["annotations/image[1]/mask[1]", "annotations/image[1]/mask[2]"]
    assert "sum to 1000000000000, expected 2x2 = 4" in bomb[0].reason and "outside" in bomb[1].reason
    traversal = results["traversal.xml"]
    assert traversal.records == 5 and len(traversal.rejections) == 5 and traversal.labels.images == []
    huge = results["huge_image_mask.xml"].rejections
    assert len(huge) == 1 and "exceeds the mask limit" in huge[0].reason


@pytest.mark.parametrize("encoding", ["Atf-8", "hex", "utf-7", "idna"])
def test_an_unusable_encoding_declaration_is_a_format_error(tmp_path: Path, encoding: str) -> None:
    """Found by fuzzing: expat's LookupError or ValueError escaped ``parse_xml``."""
    path = tmp_path / "annotations.xml"
    path.write_text(
        f'<?xml version="1.0" encoding="{encoding}"?><annotations><version>1.1</version></annotations>'
    )
    with pytest.raises(FormatFileError, match="unusable encoding declaration"):
        parse_xml(path)
