"""Label Studio label configs: parsed safely, and bound to a model's schema per task type with
refusals that name what is missing."""

from __future__ import annotations

from contextlib import nullcontext as does_not_raise
from typing import Any

import pytest

from visionloop.core.errors import ValidationError
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.labelstudio import labeling_config
from visionloop.formats.ls_config import bind, parse_label_config

DETECTOR = LabelSchema(task=TaskType.DETECTION, classes=["car", "person"])
SEGMENTER = LabelSchema(task=TaskType.SEGMENTATION, classes=["car", "person"])
POSE = LabelSchema(task=TaskType.KEYPOINTS, classes=["person"], keypoints=["nose", "left_eye", "right_eye"])
CLASSIFIER = LabelSchema(task=TaskType.CLASSIFICATION, classes=["cat", "dog"])


def test_parse_reads_images_controls_labels_and_claims() -> None:
    config = parse_label_config(
        """<View>
          <Header value="Boxes"/>
          <View><Image name="photo" value="$img" zoom="true"/></View>
          <Image name="static" value="https://example.com/a.png"/>
          <rectanglelabels name="boxes" toName="photo, other">
            <Label value="Car" predicted_values="car,truck" background="red"/>
            <Label value="Person"/>
          </rectanglelabels>
          <KeyPointLabels name="kp" toName="photo"><Label value="Nose" model_index="0"/></KeyPointLabels>
          <TextArea name="notes" toName="photo"/>
        </View>"""
    )
    assert [(image.name, image.key) for image in config.images] == [("photo", "img")]
    boxes, points = config.controls
    assert (boxes.tag, boxes.name, boxes.to_names, boxes.labels) == (
        "rectanglelabels",
        "boxes",
        ("photo", "other"),
        ("Car", "Person"),
    )
    assert dict(boxes.predicted) == {"car": "Car", "truck": "Car"}
    assert dict(points.model_index) == {0: "Nose"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("<View><Image", "not valid XML"),
        ('<!DOCTYPE x [<!ENTITY a "aaaa">]><View>&a;</View>', "unsafe"),
        ("<View>" + " " * (1 << 20) + "</View>", "bytes"),
        # Found by fuzzing: expat's LookupError/ValueError for these escaped.
        ('<?xml version="1.0" encoding="Atf-8"?><View/>', "unusable encoding"),
        ('<?xml version="1.0" encoding="utf-7"?><View/>', "unusable encoding"),
    ],
)
def test_parse_refuses_bad_and_unsafe_xml(text: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        parse_label_config(text)


@pytest.mark.parametrize(
    ("schema", "config", "expected"),
    [
        (CLASSIFIER, labeling_config(CLASSIFIER), {"choices": "choice", "rectangle": None}),
        (DETECTOR, labeling_config(DETECTOR), {"rectangle": "label", "polygon": None, "brush": None}),
        (
            SEGMENTER,
            labeling_config(SEGMENTER),
            {"brush": "brush", "polygon": "polygon", "rectangle": "label"},
        ),
        (POSE, labeling_config(POSE), {"rectangle": "label", "keypoint": "kp", "brush": None}),
    ],
)
def test_generated_configs_bind_every_task(
    schema: LabelSchema, config: str, expected: dict[str, Any]
) -> None:
    binding = bind(parse_label_config(config), schema)
    assert binding.image_key == "image" and binding.targets.to_name == "image"
    for field, name in expected.items():
        assert getattr(binding.targets, field) == name, field
    assert dict(binding.targets.labels or {}) == {name: name for name in schema.classes}
    assert binding.targets.keypoint_labels == tuple(schema.keypoints)


def _config(*controls: str) -> str:
    return '<View><Image name="image" value="$image"/>' + "".join(controls) + "</View>"


def _labels(tag: str, *labels: str, name: str = "c", to: str = "image") -> str:
    child = "Choice" if tag == "Choices" else "Label"
    inner = "".join(f'<{child} value="{label}"/>' for label in labels)
    return f'<{tag} name="{name}" toName="{to}">{inner}</{tag}>'


@pytest.mark.parametrize(
    ("schema", "config", "outcome"),
    [
        (
            DETECTOR,
            _config(_labels("Choices", "car")),
            pytest.raises(ValidationError, match="no RectangleLabels"),
        ),
        (
            SEGMENTER,
            _config(_labels("RectangleLabels", "car")),
            pytest.raises(ValidationError, match="no BrushLabels or PolygonLabels"),
        ),
        (SEGMENTER, _config(_labels("PolygonLabels", "car")), does_not_raise()),
        (
            POSE,
            _config(_labels("RectangleLabels", "person")),
            pytest.raises(ValidationError, match='no KeyPointLabels control on <Image name="image">'),
        ),
        (
            POSE,
            _config(_labels("RectangleLabels", "person"), _labels("KeyPointLabels", "tail", name="k")),
            pytest.raises(
                ValidationError, match=r"none of the model's keypoints \(nose, left_eye, right_eye\)"
            ),
        ),
        (
            DETECTOR,
            _config(_labels("RectangleLabels", "bus", "tree")),
            pytest.raises(
                ValidationError, match=r"none of the model's classes \(car, person\).*has bus, tree"
            ),
        ),
        (
            DETECTOR,
            '<View><Image name="a" value="$a"/>' + _labels("RectangleLabels", "car", to="b") + "</View>",
            pytest.raises(ValidationError, match="no RectangleLabels control on an <Image> tag"),
        ),
        (CLASSIFIER, _config(_labels("Choices", "CAT")), does_not_raise()),
    ],
)
def test_bind_refuses_what_the_model_cannot_fill(schema: LabelSchema, config: str, outcome: Any) -> None:
    with outcome:
        bind(parse_label_config(config), schema)


def test_bind_maps_classes_by_name_claim_and_case_and_leaves_the_rest_out() -> None:
    config = _config(
        '<RectangleLabels name="b" toName="image"><Label value="Automobile" predicted_values="car"/>'
        '<Label value="PERSON"/><Label value="Person"/><Label value="Tree"/></RectangleLabels>'
    )
    labels = bind(parse_label_config(config), DETECTOR).targets.labels
    # "person" matches two labels ignoring case: ambiguous, so it is left out.
    assert dict(labels or {}) == {"car": "Automobile"}


def test_bind_picks_the_control_holding_most_classes_and_keeps_one_image() -> None:
    config = (
        '<View><Image name="left" value="$left"/><Image name="right" value="$right"/>'
        + _labels("RectangleLabels", "car", name="few", to="left")
        + _labels("RectangleLabels", "car", "person", name="many", to="right")
        + _labels("KeyPointLabels", "nose", name="kp_left", to="left")
        + _labels("KeyPointLabels", "nose", "left_eye", name="kp_right", to="right")
        + "</View>"
    )
    detection = bind(parse_label_config(config), DETECTOR)
    assert (detection.targets.rectangle, detection.targets.to_name, detection.image_key) == (
        "many",
        "right",
        "right",
    )
    pose = LabelSchema(
        task=TaskType.KEYPOINTS, classes=["person"], keypoints=["nose", "left_eye", "right_eye"]
    )
    targets = bind(parse_label_config(config), pose).targets
    # the boxes holding "person" are on the right image, so the points must be too
    assert targets.keypoint == "kp_right" and targets.keypoint_labels == ("nose", "left_eye", None)


def test_segmentation_keeps_a_second_shape_control_only_when_it_holds_every_label() -> None:
    def targets(brush: tuple[str, ...], polygon: tuple[str, ...]) -> tuple[str | None, str | None]:
        config = _config(
            _labels("BrushLabels", *brush, name="b"), _labels("PolygonLabels", *polygon, name="p")
        )
        bound = bind(parse_label_config(config), SEGMENTER).targets
        return bound.brush, bound.polygon

    assert targets(("car", "person"), ("car", "person")) == ("b", "p")
    assert targets(("car", "person"), ("car",)) == ("b", None)
    assert targets(("car",), ("car", "person")) == (None, "p")
