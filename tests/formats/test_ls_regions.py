"""Core labels -> Label Studio regions with the targets a config gives (names, labels, which
shape controls exist), and mask outlines traced along pixel edges."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.core.errors import ValidationError
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.formats import ls_brush
from visionloop.formats.ls_regions import RegionTargets, RegionWriter
from visionloop.formats.masks import mask_to_polygon, polygons_to_mask, rle_encode

W, H = 40, 20


def _disc() -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (yy - 10) ** 2 + (xx - 12) ** 2 < 36


def _objects(**extra: object) -> ObjectLabels:
    return ObjectLabels(np.array([[6.0, 4.0, 18.0, 16.0]]), ("car",), scores=np.array([0.75]), **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("targets", "kind"),
    [
        (RegionTargets(), "brushlabels"),
        (RegionTargets(brush=None), "polygonlabels"),
        (RegionTargets(brush=None, polygon=None), "rectanglelabels"),
        (RegionTargets(brush=None, polygon=None, rectangle=None), None),
    ],
)
def test_a_mask_becomes_the_first_shape_the_targets_hold(targets: RegionTargets, kind: str | None) -> None:
    mask = _disc()
    regions = RegionWriter(targets).regions(_objects(masks=(rle_encode(mask),)), W, H, scores=True)
    if kind is None:
        assert regions == []
        return
    [region] = regions
    assert region["type"] == kind and region["score"] == 0.75
    assert (region["original_width"], region["original_height"]) == (W, H)
    value = region["value"]
    if kind == "brushlabels":
        np.testing.assert_array_equal(ls_brush.decode(value["rle"], H, W), mask)
    elif kind == "polygonlabels":
        ring = np.array(value["points"]) / 100 * [W, H]
        np.testing.assert_array_equal(polygons_to_mask([np.round(ring, 9)], H, W), mask)
    else:
        assert value.pop("rectanglelabels") == ["car"]
        assert value == pytest.approx({"x": 15.0, "y": 20.0, "width": 30.0, "height": 60.0, "rotation": 0})


def test_polygons_stay_polygons_or_are_painted_as_a_brush() -> None:
    ring = np.array([[2.0, 2.0], [30.0, 2.0], [16.0, 18.0]])
    label = _objects(polygons=((ring,),))
    [polygon] = RegionWriter().regions(label, W, H, scores=False)
    assert polygon["type"] == "polygonlabels" and "score" not in polygon
    np.testing.assert_allclose(np.array(polygon["value"]["points"]) / 100 * [W, H], ring)
    [brush] = RegionWriter(RegionTargets(polygon=None)).regions(label, W, H, scores=False)
    np.testing.assert_array_equal(
        ls_brush.decode(brush["value"]["rle"], H, W), polygons_to_mask([ring], H, W)
    )


def test_names_labels_and_keypoints_follow_the_targets() -> None:
    targets = RegionTargets(
        to_name="photo",
        rectangle="boxes",
        keypoint="points",
        labels={"person": "Human"},
        keypoint_labels=("Nose", None),
    )
    label = ObjectLabels(
        np.array([[0.0, 0.0, 20.0, 10.0], [1.0, 1.0, 2.0, 2.0]]),
        ("person", "dog"),
        scores=np.array([0.9, 0.8]),
        keypoints=np.array([[[4.0, 5.0, 2.0], [6.0, 7.0, 2.0]], [[1.0, 1.0, 2.0], [1.0, 1.0, 2.0]]]),
    )
    box, nose = RegionWriter(targets).regions(label, W, H, scores=True)  # the dog has no label
    assert (box["from_name"], box["to_name"], box["value"]["rectanglelabels"]) == (
        "boxes",
        "photo",
        ["Human"],
    )
    assert nose["from_name"] == "points" and nose["parentID"] == box["id"]
    assert nose["value"]["keypointlabels"] == ["Nose"] and nose["value"]["x"] == pytest.approx(10.0)
    [choice] = RegionWriter(RegionTargets(labels={"cat": "Kitty"})).regions(
        ClassLabel("cat", 0.6), W, H, True
    )
    assert choice["value"] == {"choices": ["Kitty"]} and choice["score"] == 0.6
    assert RegionWriter(RegionTargets(labels={})).regions(ClassLabel("cat", 0.6), W, H, True) == []


def test_geometry_needs_the_image_size_and_a_fitting_mask() -> None:
    with pytest.raises(ValidationError, match="width/height"):
        RegionWriter().regions(_objects(), None, None, scores=False)
    with pytest.raises(ValidationError, match="does not fit"):
        RegionWriter().regions(_objects(masks=(rle_encode(np.ones((5, 5))),)), W, H, scores=False)


@pytest.mark.parametrize(
    "mask",
    [
        np.pad(np.ones((3, 6), bool), ((2, 5), (3, 3))),  # a rectangle
        _disc(),
        np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], bool),  # an L with a notch
        np.ones((4, 4), bool),  # touching every border
        np.array([[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1]], bool),  # a hole: filled in
    ],
)
def test_mask_outlines_paint_back_to_the_filled_mask(mask: np.ndarray) -> None:
    ring = mask_to_polygon(mask)
    assert ring is not None
    filled = mask.copy()
    if mask.shape == (3, 4):
        filled[1, 1:3] = True
    np.testing.assert_array_equal(polygons_to_mask([ring], *mask.shape), filled)
    # Only corners are kept: consecutive edges turn.
    steps = np.diff(np.vstack([ring, ring[:1]]), axis=0)
    assert np.all((steps[:, 0] == 0) ^ (steps[:, 1] == 0))
    turns = steps[:, 0] * np.roll(steps, -1, axis=0)[:, 1] - steps[:, 1] * np.roll(steps, -1, axis=0)[:, 0]
    assert np.all(turns != 0)


def test_the_largest_region_is_outlined_and_an_empty_mask_has_none() -> None:
    mask = np.zeros((10, 12), bool)
    mask[1:3, 1:3] = True  # 4 pixels
    mask[5:9, 4:10] = True  # 24 pixels
    mask[0, 11] = True
    ring = mask_to_polygon(mask)
    assert ring is not None
    assert sorted(map(tuple, ring.tolist())) == [(4.0, 5.0), (4.0, 9.0), (10.0, 5.0), (10.0, 9.0)]
    assert mask_to_polygon(np.zeros((3, 3), bool)) is None
    with pytest.raises(ValidationError, match="2-D"):
        mask_to_polygon(np.zeros(3, bool))
