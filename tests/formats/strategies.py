"""Hypothesis strategies for label sets of every task, and an equality check with tolerances.

Round-trip tests draw a LabelSet, save it in a format, load it back and compare with
:func:`assert_label_sets_equal`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.masks import rle_decode, rle_encode
from visionloop.formats.model import Annotation, LabeledImage, LabelSet

CLASS_NAMES = ["cat", "dog", "person", "traffic light", "Ünïcode"]
KEYPOINT_NAMES = ["nose", "left_eye", "right_eye", "tail", "paw"]
# Subfolders with repeated basenames: exports must never let same-named files collide.
IMAGE_NAMES = ["a.jpg", "b.png", "sub/a.jpg", "sub/deeper/b.png", "other/a.jpg", "c d.jpeg"]
HUMAN = Provenance.human("tester")


@st.composite
def schemas(draw: st.DrawFn, task: TaskType) -> LabelSchema:
    classes = draw(st.lists(st.sampled_from(CLASS_NAMES), min_size=1, max_size=4, unique=True))
    if task is not TaskType.KEYPOINTS:
        return LabelSchema(task=task, classes=classes)
    keypoints = KEYPOINT_NAMES[: draw(st.integers(2, len(KEYPOINT_NAMES)))]
    skeleton = [(keypoints[i], keypoints[i + 1]) for i in range(len(keypoints) - 1)]
    return LabelSchema(task=task, classes=classes, keypoints=keypoints, skeleton=skeleton)


def _coordinate(draw: st.DrawFn, low: float, high: float, integer: bool) -> float:
    if integer:
        return float(draw(st.integers(int(np.ceil(low)), int(np.floor(high)))))
    return draw(st.floats(low, high, allow_nan=False, allow_infinity=False))


@st.composite
def object_labels(
    draw: st.DrawFn,
    schema: LabelSchema,
    width: int,
    height: int,
    *,
    polygons: bool = False,
    masks: bool = False,
    scores: bool = False,
    integer: bool = False,
    min_objects: int = 0,
) -> ObjectLabels:
    """Objects inside a ``width`` x ``height`` image; polygons are boxes' inscribed quadrilaterals
    (so the box is the polygon's extent), masks are random blobs whose box is their extent."""
    n = draw(st.integers(min_objects, 4))
    boxes, names, rings, rles, kps = [], [], [], [], []
    for _ in range(n):
        x0 = _coordinate(draw, 0, width - 4, integer)
        y0 = _coordinate(draw, 0, height - 4, integer)
        x1 = _coordinate(draw, x0 + 2, width, integer)
        y1 = _coordinate(draw, y0 + 2, height, integer)
        if masks:
            mask = np.zeros((height, width), dtype=bool)
            mask[int(y0) : max(int(y1), int(y0) + 1), int(x0) : max(int(x1), int(x0) + 1)] = True
            ys, xs = np.nonzero(mask)
            x0, y0, x1, y1 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
            rles.append(rle_encode(mask))
        boxes.append([x0, y0, x1, y1])
        names.append(draw(st.sampled_from(schema.classes)))
        if polygons:
            mx, my = (x0 + x1) / 2, (y0 + y1) / 2
            rings.append((np.array([[mx, y0], [x1, my], [mx, y1], [x0, my]]),))
        if schema.task is TaskType.KEYPOINTS:
            points = []
            for _k in schema.keypoints:
                visibility = draw(st.sampled_from([0, 1, 2]))
                if visibility == 0:
                    points.append([0.0, 0.0, 0.0])
                else:
                    px = _coordinate(draw, x0, x1, integer)
                    py = _coordinate(draw, y0, y1, integer)
                    points.append([px, py, float(visibility)])
            kps.append(points)
    return ObjectLabels(
        boxes=np.array(boxes, dtype=np.float64).reshape(-1, 4),
        class_names=tuple(names),
        scores=np.array([draw(st.floats(0.01, 1.0)) for _ in range(n)]) if scores else None,
        masks=tuple(rles) if masks else None,
        keypoints=np.array(kps, dtype=np.float64).reshape(n, len(schema.keypoints), 3)
        if schema.task is TaskType.KEYPOINTS
        else None,
        polygons=tuple(rings) if polygons else None,
    )


@st.composite
def label_sets(
    draw: st.DrawFn,
    task: TaskType,
    *,
    polygons: bool = False,
    masks: bool = False,
    predictions: bool = False,
    integer: bool = False,
    min_objects: int = 0,
    names: list[str] | None = None,
) -> LabelSet:
    """A set of 1-4 images with one human annotation each (plus a model one with ``predictions``)."""
    schema = draw(schemas(task))
    chosen = draw(st.lists(st.sampled_from(names or IMAGE_NAMES), min_size=1, max_size=4, unique=True))
    images = []
    for name in chosen:
        width, height = draw(st.integers(16, 160)), draw(st.integers(16, 160))
        image = LabeledImage(name, width, height)
        if task is TaskType.CLASSIFICATION:
            image.annotations.append(Annotation(ClassLabel(draw(st.sampled_from(schema.classes))), HUMAN))
            if predictions:
                score = draw(st.floats(0.01, 1.0))
                label = ClassLabel(draw(st.sampled_from(schema.classes)), score)
                image.annotations.append(Annotation(label, Provenance.model("m-1", score)))
        else:
            label = draw(
                object_labels(
                    schema,
                    width,
                    height,
                    polygons=polygons,
                    masks=masks,
                    integer=integer,
                    min_objects=min_objects,
                )
            )
            image.annotations.append(Annotation(label, HUMAN))
            if predictions:
                predicted = draw(
                    object_labels(schema, width, height, polygons=polygons, scores=True, min_objects=1)
                )
                image.annotations.append(Annotation(predicted, Provenance.model("m-1", 0.5)))
        images.append(image)
    return LabelSet(schema, images)


def assert_label_sets_equal(
    expected: LabelSet,
    actual: LabelSet,
    *,
    rel: float = 1e-6,
    abs_px: float = 1e-6,
    mask_pixels: int = 0,
    kinds: tuple[ProvenanceKind, ...] = (ProvenanceKind.HUMAN, ProvenanceKind.MODEL),
    check_provenance_kind: bool = True,
) -> None:
    """Same images, same labels per provenance kind, coordinates within tolerance.

    ``mask_pixels`` allows raster masks to differ by that many pixels per object (formats that
    store masks as polygons or PNGs may shift an edge pixel).
    """
    assert expected.schema is not None and actual.schema is not None
    assert list(expected.schema.classes) == list(actual.schema.classes) or set(
        expected.schema.classes
    ) <= set(actual.schema.classes)
    by_name = {image.name: image for image in actual.images}
    for image in expected.images:
        assert image.name in by_name, f"image {image.name} missing after round trip; have {sorted(by_name)}"
        other = by_name[image.name]
        if image.width is not None and other.width is not None:
            assert (image.width, image.height) == (other.width, other.height), image.name
        for kind in kinds:
            want = [a for a in image.annotations if a.provenance.kind is kind]
            got = [a for a in other.annotations if a.provenance.kind is kind]
            if not check_provenance_kind:
                got = got or [a for a in other.annotations]
            _compare_annotations(image.name, want, got, rel, abs_px, mask_pixels, image.height, image.width)


def _compare_annotations(
    name: str,
    want: list[Annotation],
    got: list[Annotation],
    rel: float,
    abs_px: float,
    mask_pixels: int,
    height: int | None,
    width: int | None,
) -> None:
    want_objects = [a.label for a in want if not (isinstance(a.label, ObjectLabels) and len(a.label) == 0)]
    got_objects = [a.label for a in got if not (isinstance(a.label, ObjectLabels) and len(a.label) == 0)]
    assert len(want_objects) == len(got_objects), (
        f"{name}: {len(want_objects)} labels expected, got {len(got_objects)}"
    )
    for expected, actual in zip(want_objects, got_objects, strict=True):
        if isinstance(expected, ClassLabel):
            assert isinstance(actual, ClassLabel) and actual.class_name == expected.class_name, name
            continue
        assert isinstance(actual, ObjectLabels), name
        order = _match(expected, actual)
        assert sorted(order) == list(range(len(actual))), f"{name}: objects do not correspond"
        np.testing.assert_allclose(actual.boxes[order], expected.boxes, rtol=rel, atol=abs_px, err_msg=name)
        assert [actual.class_names[i] for i in order] == list(expected.class_names), name
        if expected.scores is not None:
            assert actual.scores is not None, name
            np.testing.assert_allclose(
                actual.scores[order], expected.scores, rtol=1e-4, atol=1e-6, err_msg=name
            )
        if expected.keypoints is not None:
            assert actual.keypoints is not None, name
            np.testing.assert_allclose(
                actual.keypoints[order], expected.keypoints, rtol=rel, atol=abs_px, err_msg=name
            )
        if expected.polygons is not None:
            assert actual.polygons is not None, f"{name}: polygons lost"
            for i, rings in zip(order, expected.polygons, strict=True):
                assert len(actual.polygons[i]) == len(rings), name
                for got_ring, want_ring in zip(actual.polygons[i], rings, strict=True):
                    np.testing.assert_allclose(got_ring, want_ring, rtol=rel, atol=abs_px, err_msg=name)
        if expected.masks is not None:
            assert actual.masks is not None, f"{name}: masks lost"
            for i, mask in zip(order, expected.masks, strict=True):
                if mask is None:
                    continue
                got_mask = actual.masks[i]
                assert got_mask is not None, name
                diff = int(np.count_nonzero(rle_decode(got_mask) != rle_decode(mask)))
                assert diff <= mask_pixels, f"{name}: mask differs in {diff} pixels"


def _match(expected: ObjectLabels, actual: ObjectLabels) -> list[int]:
    """For each expected object, the index of the actual object with the nearest box and same class."""
    assert len(expected) == len(actual), f"{len(expected)} objects expected, got {len(actual)}"
    free = list(range(len(actual)))
    order = []
    for box, name in zip(expected.boxes, expected.class_names, strict=True):
        candidates = [i for i in free if actual.class_names[i] == name] or free
        best = min(candidates, key=lambda i: float(np.abs(actual.boxes[i] - box).sum()))
        order.append(best)
        free.remove(best)
    return order


def describe(labels: LabelSet) -> dict[str, Any]:
    """A compact summary for failure messages."""
    return {image.name: [a.label.to_dict() for a in image.annotations] for image in labels.images}
