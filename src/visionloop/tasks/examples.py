"""Training examples: one image with its label as dense arrays, ready for augmentation.

Core labels are storage-friendly (RLE masks, per-object polygons, class names); models want
arrays (binary masks, class indices). :func:`example_from_label` converts once per sample so
augmentations (flips, crops, albumentations) move image, boxes, masks and keypoints together.
Boxes stay absolute pixel ``xyxy`` in the image's (EXIF-transposed) orientation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError
from visionloop.core.labels import ClassLabel, Label, ObjectLabels
from visionloop.core.schema import LabelSchema
from visionloop.formats.masks import polygons_to_mask, rle_decode

__all__ = ["Example", "example_from_label", "flip_pairs"]


@dataclass(frozen=True)
class Example:
    image: npt.NDArray[np.uint8]  # (H, W, 3) RGB
    class_index: int | None = None  # classification
    boxes: npt.NDArray[np.float32] | None = None  # (N, 4) xyxy pixels
    labels: npt.NDArray[np.int64] | None = None  # (N,) 0-based class indices
    masks: npt.NDArray[np.uint8] | None = None  # (N, H, W) 0/1
    keypoints: npt.NDArray[np.float32] | None = None  # (N, K, 3) x, y, visibility

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])

    def with_image(self, image: npt.NDArray[np.uint8]) -> Example:
        return replace(self, image=image)


def example_from_label(
    image: npt.NDArray[np.uint8],
    label: Label | None,
    schema: LabelSchema,
    *,
    need_masks: bool = False,
    need_keypoints: bool = False,
) -> Example:
    """Dense arrays for ``label`` on ``image``; objects of classes outside the schema are refused."""
    index = {name: i for i, name in enumerate(schema.classes)}
    if label is None:
        return Example(image=image)
    if isinstance(label, ClassLabel):
        if label.class_name not in index:
            raise ValidationError(f"class {label.class_name!r} is not in the project's label schema")
        return Example(image=image, class_index=index[label.class_name])
    return _objects_example(image, label, index, schema, need_masks, need_keypoints)


def _objects_example(
    image: npt.NDArray[np.uint8],
    label: ObjectLabels,
    index: dict[str, int],
    schema: LabelSchema,
    need_masks: bool,
    need_keypoints: bool,
) -> Example:
    unknown = sorted(set(label.class_names) - set(index))
    if unknown:
        raise ValidationError(f"classes {unknown} are not in the project's label schema")
    height, width = image.shape[:2]
    boxes = np.clip(label.boxes, 0, [width, height, width, height]).astype(np.float32)
    labels = np.array([index[name] for name in label.class_names], dtype=np.int64)
    masks = None
    if need_masks:
        masks = np.zeros((len(label), height, width), dtype=np.uint8)
        for i in range(len(label)):
            masks[i] = _object_mask(label, i, height, width)
    keypoints = None
    if need_keypoints:
        parts = len(schema.keypoints)
        if label.keypoints is None:
            keypoints = np.zeros((len(label), parts, 3), dtype=np.float32)
        elif label.keypoints.shape[1] != parts:
            raise ValidationError(
                f"label has {label.keypoints.shape[1]} keypoints per object, the schema {parts}"
            )
        else:
            keypoints = label.keypoints.astype(np.float32)
    return Example(image=image, boxes=boxes, labels=labels, masks=masks, keypoints=keypoints)


def _object_mask(label: ObjectLabels, i: int, height: int, width: int) -> npt.NDArray[np.uint8]:
    rle = label.masks[i] if label.masks is not None else None
    if rle is not None:
        mask = rle_decode(rle)
        if mask.shape != (height, width):
            raise ValidationError(f"mask of size {mask.shape} does not match the image {(height, width)}")
        decoded: npt.NDArray[np.uint8] = mask.astype(np.uint8)
        return decoded
    if label.polygons is not None and label.polygons[i]:
        polygon_mask: npt.NDArray[np.uint8] = polygons_to_mask(label.polygons[i], height, width).astype(
            np.uint8
        )
        return polygon_mask
    # A box-only object in a segmentation set: its box is the best mask we know.
    x0, y0, x1, y1 = np.round(label.boxes[i]).astype(int)
    box_mask = np.zeros((height, width), dtype=np.uint8)
    box_mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = 1
    return box_mask


def flip_pairs(names: list[str]) -> list[tuple[int, int]]:
    """Index pairs of keypoints that swap under a horizontal flip (``left_eye``/``right_eye``,
    ``l_paw``/``r_paw``, ``LeftEar``/``RightEar``...)."""
    lowered = {name.lower(): i for i, name in enumerate(names)}
    pairs: list[tuple[int, int]] = []
    for name, i in lowered.items():
        for left, right in (("left", "right"), ("l_", "r_"), ("_l", "_r")):
            if left in name:
                partner = lowered.get(name.replace(left, right))
                if partner is not None and partner != i:
                    pairs.append((i, partner))
                break
    return sorted(set(pairs))
