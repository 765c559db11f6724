"""Fashion-MNIST scenes: labels recomputed from the pasted pixels, occlusion, determinism,
schemas, and COCO folders that the repo's own COCO loader reads back exactly."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from visionloop.core.errors import ConfigError, ValidationError
from visionloop.core.labels import ObjectLabels
from visionloop.core.schema import TaskType
from visionloop.datasets import fashion_mnist
from visionloop.datasets.scenes import (
    FOREGROUND_THRESHOLD,
    KEYPOINT_NAMES,
    MIN_VISIBLE,
    Scene,
    decode_rle,
    fashion_scenes,
    mask_keypoints,
    nuclei_available,
    nuclei_scene,
    objects_from_masks,
    scene_schema,
    write_scene_folder,
)
from visionloop.formats.masks import rle_decode, rle_encode
from visionloop.formats.registry import LoadOptions, get_format

needs_fashion = pytest.mark.skipif(not fashion_mnist.available(), reason="Fashion-MNIST is not installed")


@pytest.fixture(scope="module")
def test_split() -> tuple[np.ndarray, np.ndarray]:
    if not fashion_mnist.available():
        pytest.skip("Fashion-MNIST is not installed")
    return fashion_mnist.load("test")


@pytest.fixture(scope="module")
def test_items(test_split: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return test_split[0]


def _scenes(count: int, **kwargs: Any) -> list[Scene]:
    kwargs.setdefault("split", "test")
    return list(fashion_scenes(count, **kwargs))


def _masks(label: ObjectLabels) -> list[np.ndarray]:
    assert label.masks is not None
    return [rle_decode(m) for m in label.masks if m is not None]


def _replay(scene: Scene, items: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Paste the recorded items again: the owner map, each item's full mask on the canvas, and
    each item's tinted pixels on the canvas."""
    height, width = scene.image.shape[:2]
    owner = np.full((height, width), -1)
    full, colours = [], []
    for k, entry in enumerate(scene.label.extra["pasted"]):
        side, x, y = entry["size"], entry["x"], entry["y"]
        pixels = np.asarray(Image.fromarray(items[entry["index"]]).resize((side, side), Image.BILINEAR))
        mask = np.zeros((height, width), dtype=bool)
        mask[y : y + side, x : x + side] = pixels > FOREGROUND_THRESHOLD
        colour = np.zeros((height, width, 3), dtype=np.int64)
        tint = np.array(entry["tint"])
        colour[y : y + side, x : x + side] = (pixels[:, :, None].astype(np.int64) * tint + 127) // 255
        owner[mask] = k
        full.append(mask)
        colours.append(colour)
    return owner, full, colours


@needs_fashion
def test_masks_are_exactly_the_visible_pasted_pixels(test_split: tuple[np.ndarray, np.ndarray]) -> None:
    test_items, test_classes = test_split
    dropped = 0
    for scene in _scenes(40, objects=(3, 6), max_overlap=1.0, seed=3):
        owner, full, colours = _replay(scene, test_items)
        masks = _masks(scene.label)
        pasted = scene.label.extra["pasted"]
        for k, entry in enumerate(pasted):
            visible = owner == k
            # the image shows exactly this item's (tinted) pixels wherever it is on top
            assert np.array_equal(scene.image[visible], colours[k][visible])
            assert fashion_mnist.CLASSES[test_classes[entry["index"]]] == entry["class"]
            if entry["object"] is None:
                dropped += 1
                assert visible.sum() < MIN_VISIBLE * full[k].sum()
            else:
                assert visible.sum() >= MIN_VISIBLE * full[k].sum()
                assert np.array_equal(masks[entry["object"]], visible)
                assert scene.label.class_names[entry["object"]] == entry["class"]
        assert len(masks) == sum(e["object"] is not None for e in pasted)
        assert [e["object"] for e in pasted if e["object"] is not None] == list(range(len(masks)))
    assert dropped > 0  # the scenes did exercise dropping


@needs_fashion
def test_masks_boxes_and_rle_agree() -> None:
    for scene in _scenes(30, seed=5):
        label = scene.label
        assert label.masks is not None
        for box, rle in zip(label.boxes, label.masks, strict=True):
            assert rle is not None
            mask = rle_decode(rle)
            assert rle == rle_encode(mask)  # the repo's own encoder gives the same dict
            assert np.array_equal(decode_rle(rle), mask)
            compressed = coco_mask.frPyObjects(rle, *rle["size"])
            assert np.array_equal(coco_mask.decode(compressed).astype(bool), mask)
            ys, xs = np.nonzero(mask)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@needs_fashion
def test_keypoints_lie_on_the_mask_at_its_extremes() -> None:
    for scene in _scenes(30, seed=7, with_keypoints=True, max_overlap=1.0, objects=(2, 5)):
        label = scene.label
        assert label.keypoints is not None
        assert label.keypoints.shape == (len(label), len(KEYPOINT_NAMES), 3)
        for points, mask in zip(label.keypoints, _masks(label), strict=True):
            assert np.all(points[:, 2] == 2)
            assert np.all(points[:, :2] % 1 == 0.5)  # pixel centres
            cols, rows = (points[:, :2] - 0.5).astype(int).T
            assert mask[rows, cols].all()
            ys, xs = np.nonzero(mask)
            top, bottom, left, right, center = points
            assert (top[1], bottom[1]) == (ys.min() + 0.5, ys.max() + 0.5)
            assert (left[0], right[0]) == (xs.min() + 0.5, xs.max() + 0.5)
            distances = (ys + 0.5 - ys.mean() - 0.5) ** 2 + (xs + 0.5 - xs.mean() - 0.5) ** 2
            assert (center[1] - ys.mean() - 0.5) ** 2 + (center[0] - xs.mean() - 0.5) ** 2 == pytest.approx(
                distances.min()
            )


def test_keypoints_of_a_hand_drawn_mask() -> None:
    mask = np.zeros((10, 12), dtype=bool)
    mask[2, 3:8] = True  # top row: x 3..7 -> middle 5
    mask[3:7, 3] = True  # left column: y 2..6 -> middle 4
    mask[6, 3:10] = True  # bottom row: x 3..9 -> middle 6; right column x 9 holds y 6 only
    points = mask_keypoints(mask)
    assert points[:4, :2].tolist() == [[5.5, 2.5], [6.5, 6.5], [3.5, 4.5], [9.5, 6.5]]
    assert mask[int(points[4, 1]), int(points[4, 0])]  # the centroid (5.1, 4.3) is off the shape
    label = objects_from_masks([mask], ["bag"], with_keypoints=True)
    assert label.boxes.tolist() == [[3.0, 2.0, 10.0, 7.0]]
    with pytest.raises(ValidationError):
        objects_from_masks([np.zeros((4, 4), dtype=bool)], ["bag"])


@needs_fashion
def test_occlusion_keeps_masks_disjoint_and_max_overlap_zero_never_occludes(test_items: np.ndarray) -> None:
    for scene in _scenes(20, seed=11, objects=(4, 8), max_overlap=1.0):
        masks = _masks(scene.label)
        assert (np.sum(masks, axis=0) <= 1).all() if masks else True
    for scene in _scenes(20, seed=11, objects=(4, 8), max_overlap=0.0):
        _owner, full, _colours = _replay(scene, test_items)
        masks = _masks(scene.label)
        assert len(masks) == len(scene.label.extra["pasted"]) >= 1
        for k, mask in enumerate(masks):
            assert np.array_equal(mask, full[k])  # nothing covered any of it


@needs_fashion
def test_scenes_are_deterministic_and_independent_of_count() -> None:
    first, again, longer = _scenes(6, seed=9), _scenes(6, seed=9), _scenes(9, seed=9)
    other = _scenes(6, seed=10)
    for a, b, c in zip(first, again, longer, strict=False):
        for scene in (b, c):
            assert np.array_equal(a.image, scene.image)
            assert a.label.to_dict() == scene.label.to_dict()
    assert not all(np.array_equal(a.image, b.image) for a, b in zip(first, other, strict=True))


@needs_fashion
@pytest.mark.parametrize("background", ["texture", "noise", "plain"])
def test_options_shape_the_scenes(background: str) -> None:
    scenes = _scenes(
        15, size=(96, 160), objects=(2, 3), scale=(0.8, 1.2), classes=["sneaker", 8], background=background
    )
    for scene in scenes:
        assert scene.image.shape == (96, 160, 3)
        assert scene.image.dtype == np.uint8
        assert 1 <= len(scene.label) <= 3
        assert set(scene.label.class_names) <= {"sneaker", "bag"}
        assert all(22 <= e["size"] <= 34 for e in scene.label.extra["pasted"])
    if background == "texture":  # no single grey threshold separates items from the canvas
        grey = np.stack([s.image.mean(axis=2) for s in scenes])
        inside = np.stack([np.any(_masks(s.label), axis=0) for s in scenes])
        assert grey[~inside].max() > grey[inside].min()
    bare = _scenes(3, with_masks=False)
    assert all(s.label.masks is None and s.label.keypoints is None for s in bare)


def test_schemas() -> None:
    keypoints = scene_schema(TaskType.KEYPOINTS)
    assert keypoints.classes == list(fashion_mnist.CLASSES)
    assert keypoints.keypoints == list(KEYPOINT_NAMES)
    assert keypoints.skeleton_indices == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert scene_schema("segmentation", ["bag", "sneaker"]).classes == ["bag", "sneaker"]
    assert scene_schema(TaskType.DETECTION).keypoints == []
    with pytest.raises(ConfigError):
        scene_schema(TaskType.CLASSIFICATION)


@needs_fashion
def test_bad_options_are_refused() -> None:
    for kwargs in ({"classes": [10]}, {"classes": ["hat"]}, {"objects": (3, 2)}, {"background": "sky"}):
        with pytest.raises(ConfigError):
            fashion_scenes(1, split="test", **kwargs)  # refused at the call, before iterating


@needs_fashion
@pytest.mark.parametrize("task", [TaskType.DETECTION, TaskType.SEGMENTATION, TaskType.KEYPOINTS])
def test_coco_folder_loads_back_exactly(tmp_path: Path, task: TaskType) -> None:
    classes = ["t-shirt", "trouser", "bag", "ankle-boot"]
    schema = scene_schema(task, classes)
    scenes = _scenes(
        12,
        seed=13,
        classes=classes,
        objects=(0, 5),
        max_overlap=0.8,
        with_masks=task is not TaskType.DETECTION,
        with_keypoints=task is TaskType.KEYPOINTS,
    )
    path = write_scene_folder(scenes, tmp_path, schema)
    assert path == tmp_path / "annotations.json"
    result = get_format("coco").load(path, LoadOptions())
    assert result.rejections == []
    assert result.labels.schema == schema
    assert len(result.labels.images) == len(scenes)
    by_name = {image.name: image for image in result.labels.images}
    for index, scene in enumerate(scenes):
        image = by_name[f"images/scene_{index:05d}.png"]
        assert np.array_equal(np.asarray(Image.open(tmp_path / image.name)), scene.image)
        assert (image.height, image.width) == scene.image.shape[:2]
        if not len(scene.label):
            assert image.annotations == []
            continue
        [annotation] = image.annotations
        back = annotation.label
        assert isinstance(back, ObjectLabels)
        assert back.class_names == scene.label.class_names
        assert np.array_equal(back.boxes, scene.label.boxes)
        assert back.masks == scene.label.masks
        if task is TaskType.KEYPOINTS:
            assert np.array_equal(back.keypoints, scene.label.keypoints)
        else:
            assert back.keypoints is None


@needs_fashion
def test_coco_folder_refuses_labels_it_cannot_write(tmp_path: Path) -> None:
    boxes_only = _scenes(2, with_masks=False)
    with pytest.raises(ValidationError, match="masks"):
        write_scene_folder(boxes_only, tmp_path, scene_schema(TaskType.SEGMENTATION))
    with pytest.raises(ValidationError, match="not in the schema"):
        write_scene_folder(_scenes(4, classes=[8]), tmp_path, scene_schema(TaskType.DETECTION, ["sneaker"]))


def _tiff(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint16)).save(buffer, format="TIFF")
    return buffer.getvalue()


def test_nuclei_scene_reads_the_wheel_layout(tmp_path: Path) -> None:
    image = np.arange(64 * 48).reshape(64, 48) % 200
    instances = np.zeros((64, 48), dtype=np.uint16)
    instances[5:15, 4:9] = 7
    instances[30:41, 20:40] = 3
    wheel = tmp_path / "stardist-0.9.2-cp311-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("stardist/data/images/img2d.tif", _tiff(image))
        archive.writestr("stardist/data/images/mask2d.tif", _tiff(instances))
    assert nuclei_available(wheel)
    assert not nuclei_available(tmp_path)
    scene = nuclei_scene(wheel, with_keypoints=True)
    assert scene.image.shape == (64, 48, 3)
    assert np.array_equal(scene.image[:, :, 1], image)
    assert scene.label.class_names == ("nucleus", "nucleus")
    assert scene.label.extra["instance_ids"] == [3, 7]
    assert scene.label.boxes.tolist() == [[20, 30, 40, 41], [4, 5, 9, 15]]
    assert [m.sum() for m in _masks(scene.label)] == [11 * 20, 10 * 5]
    with pytest.raises(ConfigError):
        nuclei_scene(tmp_path)


def test_real_nuclei_sample_when_present() -> None:
    """The real image, from an installed stardist or a wheel named by $STARDIST_WHEEL."""
    source = Path(os.environ["STARDIST_WHEEL"]) if os.environ.get("STARDIST_WHEEL") else None
    if not nuclei_available(source):
        pytest.skip("stardist's nuclei sample is not here (pip download stardist==0.9.2 --no-deps)")
    scene = nuclei_scene(source)
    assert scene.image.shape == (512, 512, 3)
    assert len(scene.label) > 50
    masks = _masks(scene.label)
    assert (np.sum(masks, axis=0) <= 1).all()
    assert scene_schema(TaskType.SEGMENTATION, ["nucleus"]).classes == ["nucleus"]
