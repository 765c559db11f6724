"""Label Studio labeling configs: which control tags a project has, and where a model's
predictions land in them.

:func:`parse_label_config` reads the XML with defusedxml (no entity expansion, no external
entities) and keeps what predictions need: the image tags (``<Image name="image"
value="$image"/>``: regions name the tag, tasks hold the image under the value's key) and the
control tags visionloop can fill (Choices, RectangleLabels, PolygonLabels, BrushLabels,
KeyPointLabels) with their ``toName`` and label values. Tag names are matched case-insensitively,
as Label Studio does.

:func:`bind` matches a model's label schema to a config, one rule per task:

- classification needs Choices; detection RectangleLabels; instance segmentation BrushLabels
  and/or PolygonLabels (brush preferred for masks: it is exact); keypoints KeyPointLabels and
  the RectangleLabels their points hang from (``parentID``).
- A model class maps to the label of the same name, else to the label listing it in
  ``predicted_values`` (``<Label value="Car" predicted_values="car,truck"/>``), else to the one
  label equal to it ignoring case. A keypoint maps the same way by name, or by ``model_index``.
  Classes without a label are left out of predictions; a config with none of them is refused.

Refusals are :class:`~visionloop.core.errors.ValidationError` messages that say which tag is
missing or which names do not match, and show a config line that would work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import quoteattr

from visionloop.core.errors import ValidationError
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.ls_regions import RegionTargets

__all__ = ["Binding", "Control", "ImageTag", "LabelConfig", "bind", "parse_label_config"]

#: Largest config accepted, in bytes (Label Studio's own are a few kilobytes).
MAX_CONFIG_BYTES = 1 << 20
#: Control tags predictions can fill, lower-cased, and the tag of their label children.
CONTROL_TAGS = {
    "choices": "choice",
    "rectanglelabels": "label",
    "polygonlabels": "label",
    "brushlabels": "label",
    "keypointlabels": "label",
}
_DISPLAY = {
    "choices": "Choices",
    "rectanglelabels": "RectangleLabels",
    "polygonlabels": "PolygonLabels",
    "brushlabels": "BrushLabels",
    "keypointlabels": "KeyPointLabels",
}


@dataclass(frozen=True)
class ImageTag:
    """An ``<Image>`` object tag: regions name it (``to_name``); tasks hold the image URL
    under ``data[key]``."""

    name: str
    key: str


@dataclass(frozen=True)
class Control:
    """A control tag: its type (``rectanglelabels``, ...), name (``from_name``), the object
    tags it labels, its label values, and the model names its labels claim (``predicted_values``
    -> label value; ``model_index`` -> label value)."""

    tag: str
    name: str
    to_names: tuple[str, ...]
    labels: tuple[str, ...]
    predicted: Mapping[str, str]
    model_index: Mapping[int, str]

    def describe(self) -> str:
        return f'<{_DISPLAY[self.tag]} name="{self.name}">'


@dataclass(frozen=True)
class LabelConfig:
    images: tuple[ImageTag, ...]
    controls: tuple[Control, ...]

    def image(self, name: str) -> ImageTag | None:
        return next((image for image in self.images if image.name == name), None)


@dataclass(frozen=True)
class Binding:
    """Where a model's predictions go in one config: the region targets and the task data key
    holding the image."""

    targets: RegionTargets
    image_key: str


def parse_label_config(text: str) -> LabelConfig:
    """The image and control tags of a Label Studio labeling config (XML)."""
    import defusedxml.ElementTree as SafeElementTree
    from defusedxml import DefusedXmlException

    if not isinstance(text, str) or not text.strip():
        raise ValidationError("the Label Studio label config is empty")
    data = text.encode("utf-8")
    if len(data) > MAX_CONFIG_BYTES:
        raise ValidationError(f"the Label Studio label config is over {MAX_CONFIG_BYTES} bytes")
    try:
        root = SafeElementTree.fromstring(data)
    except DefusedXmlException as exc:
        raise ValidationError(f"refused an unsafe Label Studio label config: {exc}") from exc
    except SafeElementTree.ParseError as exc:
        raise ValidationError(f"the Label Studio label config is not valid XML: {exc}") from exc
    except (LookupError, ValueError) as exc:  # an encoding declaration expat cannot use
        raise ValidationError(f"the Label Studio label config has an unusable encoding ({exc})") from exc
    images: list[ImageTag] = []
    controls: list[Control] = []
    for element in root.iter():
        tag = str(element.tag).lower()
        name = element.get("name")
        if not name:
            continue
        if tag == "image":
            value = element.get("value", "")
            if value.startswith("$") and len(value) > 1:
                images.append(ImageTag(name, value[1:]))
        elif tag in CONTROL_TAGS:
            controls.append(_control(element, tag, name))
    return LabelConfig(tuple(images), tuple(controls))


def _control(element: Any, tag: str, name: str) -> Control:
    to_names = tuple(part.strip() for part in element.get("toName", "").split(",") if part.strip())
    labels: list[str] = []
    predicted: dict[str, str] = {}
    model_index: dict[int, str] = {}
    for child in element.iter():
        if str(child.tag).lower() != CONTROL_TAGS[tag]:
            continue
        value = child.get("value") or child.get("alias")
        if not value:
            continue
        labels.append(value)
        for claimed in (child.get("predicted_values") or "").split(","):
            if claimed.strip():
                predicted.setdefault(claimed.strip(), value)
        index = child.get("model_index")
        if index is not None and index.strip().isdigit():
            model_index.setdefault(int(index), value)
    return Control(tag, name, to_names, tuple(labels), predicted, model_index)


# -- binding a model to a config --------------------------------------------------------------
def bind(config: LabelConfig, schema: LabelSchema) -> Binding:
    """Where predictions of a model with ``schema`` go in ``config``; refuses, saying why, a
    config that has no control the model's task needs or none of its classes."""
    task = schema.task
    if task is TaskType.CLASSIFICATION:
        primary = _pick(config, schema, ("choices",), None)
    elif task is TaskType.SEGMENTATION:
        primary = _pick(config, schema, ("brushlabels", "polygonlabels"), None)
    else:  # detection, and the boxes keypoints hang from
        primary = _pick(config, schema, ("rectanglelabels",), None)
    labels = _class_map(primary, schema.classes)
    image = _image_of(config, primary)
    fields: dict[str, str | None] = {
        "choices": None,
        "rectangle": None,
        "polygon": None,
        "brush": None,
        "keypoint": None,
    }
    fields[_FIELD[primary.tag]] = primary.name
    keypoint_labels: tuple[str | None, ...] = ()
    if task is TaskType.SEGMENTATION:
        for tag in ("brushlabels", "polygonlabels", "rectanglelabels"):
            other = _compatible(config, tag, image.name, labels.values())
            if other is not None and fields[_FIELD[tag]] is None:
                fields[_FIELD[tag]] = other.name
    if task is TaskType.KEYPOINTS:
        points = _pick(config, schema, ("keypointlabels",), image.name)
        keypoint_labels = _keypoint_labels(points, schema.keypoints)
        fields["keypoint"] = points.name
    targets = RegionTargets(to_name=image.name, labels=labels, keypoint_labels=keypoint_labels, **fields)
    return Binding(targets, image.key)


_FIELD = {
    "choices": "choices",
    "rectanglelabels": "rectangle",
    "polygonlabels": "polygon",
    "brushlabels": "brush",
    "keypointlabels": "keypoint",
}


def _pick(config: LabelConfig, schema: LabelSchema, tags: Sequence[str], image: str | None) -> Control:
    """The control of one of ``tags`` (in order of preference) on an image tag (``image``, if
    given) whose labels hold the most of the model's names."""
    names = schema.keypoints if tags == ("keypointlabels",) else schema.classes
    candidates = [
        control
        for control in config.controls
        if control.tag in tags
        and any(config.image(target) is not None for target in control.to_names)
        and (image is None or image in control.to_names)
    ]
    if not candidates:
        wanted = " or ".join(_DISPLAY[tag] for tag in tags)
        where = f' on <Image name="{image}">' if image else " on an <Image> tag"
        raise ValidationError(
            f"the Label Studio label config has no {wanted} control{where}, which a {schema.task} "
            f"model needs; add one, e.g. {_example_line(tags[0], names)}"
        )

    def fit(control: Control) -> tuple[int, int]:
        if control.tag == "keypointlabels":
            matched = sum(label is not None for label in _keypoint_labels(control, names, strict=False))
        else:
            matched = len(_class_map(control, names, strict=False))
        return matched, -tags.index(control.tag)

    return max(candidates, key=fit)


def _class_map(control: Control, classes: Sequence[str], strict: bool = True) -> dict[str, str]:
    mapped = {}
    for name in classes:
        label = _match(control, name)
        if label is not None:
            mapped[name] = label
    if strict and not mapped:
        raise ValidationError(
            f"none of the model's classes ({', '.join(classes)}) is a label of {control.describe()}, "
            f"which has {_listing(control.labels)}; add them, e.g. "
            f"<Label value={quoteattr(classes[0])}/>, or name them in predicted_values, e.g. "
            f'<Label value="MyLabel" predicted_values={quoteattr(classes[0])}/>'
        )
    return mapped


def _keypoint_labels(
    control: Control, keypoints: Sequence[str], strict: bool = True
) -> tuple[str | None, ...]:
    mapped = tuple(control.model_index.get(k) or _match(control, name) for k, name in enumerate(keypoints))
    if strict and not any(label is not None for label in mapped):
        raise ValidationError(
            f"none of the model's keypoints ({', '.join(keypoints)}) is a label of {control.describe()}, "
            f"which has {_listing(control.labels)}; add them, e.g. <Label value={quoteattr(keypoints[0])}/>, "
            'or give each its model_index, e.g. <Label value="nose" model_index="0"/>'
        )
    return mapped


def _match(control: Control, name: str) -> str | None:
    if name in control.labels:
        return name
    if name in control.predicted:
        return control.predicted[name]
    folded = [label for label in control.labels if label.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def _compatible(config: LabelConfig, tag: str, image: str, values: Iterable[str]) -> Control | None:
    """A ``tag`` control on ``image`` holding every mapped label, if the config has one."""
    wanted = set(values)
    for control in config.controls:
        if control.tag == tag and image in control.to_names and wanted <= set(control.labels):
            return control
    return None


def _image_of(config: LabelConfig, control: Control) -> ImageTag:
    for target in control.to_names:
        image = config.image(target)
        if image is not None:
            return image
    raise ValidationError(f"{control.describe()} labels no <Image> tag")  # _pick checked it


def _example_line(tag: str, names: Sequence[str]) -> str:
    child = CONTROL_TAGS[tag].capitalize()
    labels = "".join(f"<{child} value={quoteattr(name)}/>" for name in names[:3])
    return f'<{_DISPLAY[tag]} name="{tag}" toName="image">{labels}</{_DISPLAY[tag]}>'


def _listing(labels: Sequence[str]) -> str:
    if not labels:
        return "no labels"
    shown = ", ".join(labels[:10])
    return f"{shown}, ..." if len(labels) > 10 else shown
