"""Object scenes built from real images, with exact labels, for detection, instance
segmentation and keypoint tests and benchmarks.

:func:`fashion_scenes` pastes real Fashion-MNIST items onto textured canvases. Every label is
derived from the pasted pixels, so it is exact by construction:

* An item is resized bilinearly (PIL) to ``round(28 * scale)`` pixels square; its foreground
  mask is ``resized > FOREGROUND_THRESHOLD`` (20 of 255). The canvas then shows exactly the
  masked pixels of the item (tinted by one colour per item, ``(value * tint + 127) // 255``);
  nothing outside the mask is touched (a hard alpha composite).
* Later items occlude earlier ones: an earlier object's mask loses the pixels a later item
  covers, and an object with less than ``MIN_VISIBLE`` (30 %) of its pasted pixels left is
  dropped (its few visible pixels stay in the image, unlabeled, as in copy-paste augmentation).
* A box is the tight box of the final visible mask, in the core's convention: the pixels
  ``[x0, x1)`` give ``x1 = last pixel + 1``.
* Keypoints come from the final visible mask, at pixel centres (``+ 0.5``), and always lie on
  a mask pixel: ``top`` is the middle pixel (upper median of the x order) of the topmost mask
  row, ``bottom``, ``left`` and ``right`` likewise for the bottom row and the outermost
  columns, and ``center`` is the mask pixel nearest the mask centroid (the centroid itself can
  fall outside a non-convex or occluded shape). All are visible (2).

Masks are COCO RLE dicts with uncompressed counts (column-major runs starting with zeros), the
form :mod:`visionloop.core.labels` holds. They are encoded here with a few lines of numpy that
follow the same convention as ``visionloop.formats.masks.rle_encode`` (the datasets layer may
not import formats; pycocotools only writes compressed strings, so it serves just the COCO
files that :func:`write_scene_folder` writes).

Each scene draws from its own generator seeded with ``(seed, scene index)``: a scene does not
depend on how many scenes are asked for, and the same arguments give the same scenes.

:func:`nuclei_scene` reads the real 512x512 fluorescence nuclei image with instance masks
(2018 Data Science Bowl, Caicedo et al., Nature Methods 2019) that the ``stardist`` wheel ships
as 16-bit TIFFs; PIL reads them, so neither tensorflow nor stardist's own code is needed, only
the wheel's files (an installed ``stardist`` package, the ``.whl`` file, or a folder).
"""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from visionloop.core.errors import ConfigError, ValidationError
from visionloop.core.labels import ObjectLabels
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.datasets import fashion_mnist
from visionloop.storage import atomic_write_local

Background = Literal["texture", "noise", "plain"]
BoolArray = npt.NDArray[np.bool_]
UInt8Array = npt.NDArray[np.uint8]

FOREGROUND_THRESHOLD = 20
MIN_VISIBLE = 0.3
PLACEMENT_TRIES = 20
KEYPOINT_NAMES = ("top", "bottom", "left", "right", "center")
SKELETON = (("top", "center"), ("bottom", "center"), ("left", "center"), ("right", "center"))
NUCLEUS = "nucleus"
_ITEM_PX = 28
_MIN_ITEM_PX = 4
_TINT_RANGE = (150, 256)  # per-channel item colour, bright enough that items stay visible
_BACKGROUNDS = ("texture", "noise", "plain")
_NUCLEI_DIR = "stardist/data/images"
_NUCLEI_FILES = ("img2d.tif", "mask2d.tif")


@dataclass(frozen=True)
class Scene:
    """One RGB image ``(H, W, 3)`` uint8 and its exact object labels."""

    image: UInt8Array
    label: ObjectLabels


def scene_schema(task: TaskType | str, classes: Sequence[str] | None = None) -> LabelSchema:
    """The schema of scenes for ``task`` (detection, segmentation or keypoints); ``classes``
    defaults to the ten Fashion-MNIST classes. Keypoint schemas name ``KEYPOINT_NAMES`` with
    a star skeleton around ``center``."""
    task = TaskType(task)
    if task is TaskType.CLASSIFICATION:
        raise ConfigError("scenes hold objects: use a detection, segmentation or keypoints schema")
    names = list(fashion_mnist.CLASSES if classes is None else classes)
    if task is TaskType.KEYPOINTS:
        return LabelSchema(task=task, classes=names, keypoints=list(KEYPOINT_NAMES), skeleton=list(SKELETON))
    return LabelSchema(task=task, classes=names)


def class_indices(classes: Sequence[int | str] | None) -> list[int]:
    """Fashion-MNIST class indices from indices or names (``None``: all ten), sorted."""
    if classes is None:
        return list(range(len(fashion_mnist.CLASSES)))
    out: set[int] = set()
    for value in classes:
        if isinstance(value, str):
            if value not in fashion_mnist.CLASSES:
                raise ConfigError(f"unknown Fashion-MNIST class {value!r}; known: {fashion_mnist.CLASSES}")
            out.add(fashion_mnist.CLASSES.index(value))
        elif isinstance(value, int | np.integer) and 0 <= int(value) < len(fashion_mnist.CLASSES):
            out.add(int(value))
        else:
            raise ConfigError(f"Fashion-MNIST class indices run from 0 to 9, got {value!r}")
    if not out:
        raise ConfigError("at least one Fashion-MNIST class is needed")
    return sorted(out)


@lru_cache(maxsize=4)
def _items(split: str, root: Path) -> tuple[UInt8Array, tuple[npt.NDArray[np.intp], ...]]:
    images, labels = fashion_mnist.load(split, root)
    by_class = tuple(np.flatnonzero(labels == c) for c in range(len(fashion_mnist.CLASSES)))
    return images, by_class


def fashion_scenes(
    count: int,
    *,
    size: tuple[int, int] = (128, 128),
    objects: tuple[int, int] = (1, 4),
    scale: tuple[float, float] = (1.0, 2.0),
    classes: Sequence[int | str] | None = None,
    background: Background = "texture",
    seed: int = 0,
    split: str = "train",
    with_masks: bool = True,
    with_keypoints: bool = False,
    max_overlap: float = 0.3,
    root: Path = fashion_mnist.DEBIAN_ROOT,
) -> Iterator[Scene]:
    """``count`` scenes of ``size`` (height, width) holding ``objects`` (inclusive range) items
    of ``classes`` drawn from Fashion-MNIST ``split``, each ``28 * scale`` pixels square.

    ``max_overlap`` bounds how much of an object's visible pixels one new item may cover (an
    item that finds no place within ``PLACEMENT_TRIES`` random positions is left out); use 1.0 for
    unrestricted occlusion. ``background``: ``texture`` (default: smooth colour variation plus
    fine grain, overlapping the intensities of dim item pixels, so masks cannot be had by
    thresholding), ``noise`` (one colour plus strong per-pixel noise) or ``plain`` (one colour).
    Labels carry masks (``with_masks``) and keypoints (``with_keypoints``, ``KEYPOINT_NAMES``);
    ``label.extra["pasted"]`` records every pasted item in paste order (Fashion-MNIST index,
    class, position, size, tint, and the object it became, or None when dropped).
    """
    height, width = size
    low, high = objects
    if count < 0 or height < _MIN_ITEM_PX or width < _MIN_ITEM_PX:
        raise ConfigError(f"need count >= 0 and a canvas of at least {_MIN_ITEM_PX} px, got {count}, {size}")
    if not 0 <= low <= high:
        raise ConfigError(f"objects must be a (min, max) range with 0 <= min <= max, got {objects}")
    if not 0 < scale[0] <= scale[1]:
        raise ConfigError(f"scale must be a (min, max) range with 0 < min <= max, got {scale}")
    if background not in _BACKGROUNDS:
        raise ConfigError(f"unknown background {background!r}; use one of {', '.join(_BACKGROUNDS)}")
    if not 0.0 <= max_overlap <= 1.0:
        raise ConfigError(f"max_overlap must lie within [0, 1], got {max_overlap}")
    allowed = class_indices(classes)
    images, by_class = _items(split, root)  # loaded now, so a missing dataset fails at the call
    settings = _Settings(size, objects, scale, background, split, with_masks, with_keypoints, max_overlap)
    return (
        _fashion_scene(np.random.default_rng((seed, index)), images, by_class, allowed, settings)
        for index in range(count)
    )


@dataclass(frozen=True)
class _Settings:
    size: tuple[int, int]
    objects: tuple[int, int]
    scale: tuple[float, float]
    background: str
    split: str
    with_masks: bool
    with_keypoints: bool
    max_overlap: float


def _fashion_scene(
    rng: np.random.Generator,
    images: UInt8Array,
    by_class: tuple[npt.NDArray[np.intp], ...],
    allowed: list[int],
    settings: _Settings,
) -> Scene:
    (height, width), (low, high), scale = settings.size, settings.objects, settings.scale
    max_overlap = settings.max_overlap
    canvas = _background(rng, height, width, settings.background)
    owner = np.full((height, width), -1, dtype=np.int16)
    pasted: list[dict[str, Any]] = []
    full_area: list[int] = []
    visible = np.zeros(high, dtype=np.int64)
    for _ in range(int(rng.integers(low, high + 1))):
        klass = allowed[int(rng.integers(len(allowed)))]
        pool = by_class[klass]
        item_index = int(pool[int(rng.integers(len(pool)))])
        side = min(max(round(_ITEM_PX * float(rng.uniform(*scale))), _MIN_ITEM_PX), height, width)
        pixels = np.asarray(
            Image.fromarray(images[item_index]).resize((side, side), Image.Resampling.BILINEAR)
        )
        mask = pixels > FOREGROUND_THRESHOLD
        tint = rng.integers(*_TINT_RANGE, size=3)
        area = int(mask.sum())
        if area == 0:
            continue
        n = len(pasted)
        spot = _place(rng, owner, visible[:n], mask, max_overlap)
        if spot is None:
            continue
        y, x, covered = spot
        window = (slice(y, y + side), slice(x, x + side))
        tinted = ((pixels[:, :, None].astype(np.uint16) * tint + 127) // 255).astype(np.uint8)
        canvas[window][mask] = tinted[mask]
        owner[window][mask] = n
        visible[:n] -= covered
        visible[n] = area
        full_area.append(area)
        pasted.append(
            {
                "index": item_index,
                "class": fashion_mnist.CLASSES[klass],
                "x": x,
                "y": y,
                "size": side,
                "tint": [int(t) for t in tint],
            }
        )
    kept = [k for k in range(len(pasted)) if visible[k] >= MIN_VISIBLE * full_area[k]]
    for k, entry in enumerate(pasted):
        entry["object"] = kept.index(k) if k in kept else None
    label = objects_from_masks(
        [owner == k for k in kept],
        [pasted[k]["class"] for k in kept],
        with_masks=settings.with_masks,
        with_keypoints=settings.with_keypoints,
        extra={"source": "fashion-mnist", "split": settings.split, "pasted": pasted},
    )
    return Scene(canvas, label)


def _place(
    rng: np.random.Generator,
    owner: npt.NDArray[np.int16],
    visible: npt.NDArray[np.int64],
    mask: BoolArray,
    max_overlap: float,
) -> tuple[int, int, npt.NDArray[np.int64]] | None:
    """A random top-left corner where ``mask`` covers at most ``max_overlap`` of each earlier
    object's visible pixels, with the pixels it covers per object; None after the tries."""
    side = mask.shape[0]
    height, width = owner.shape
    limit = max_overlap * visible
    for _ in range(PLACEMENT_TRIES):
        y = int(rng.integers(0, height - side + 1))
        x = int(rng.integers(0, width - side + 1))
        under = owner[y : y + side, x : x + side][mask]
        covered = np.bincount(under + 1, minlength=len(visible) + 1)[1:].astype(np.int64)
        if np.all(covered <= limit):
            return y, x, covered
    return None


def _background(rng: np.random.Generator, height: int, width: int, kind: str) -> UInt8Array:
    base = rng.uniform(40.0, 100.0, size=3).astype(np.float32)
    if kind == "plain":
        out = np.broadcast_to(base, (height, width, 3))
    elif kind == "noise":
        out = base + rng.normal(0.0, 18.0, size=(height, width, 3)).astype(np.float32)
    else:
        out = _smooth_field(rng, height, width, 5, 28.0)
        out += _smooth_field(rng, height, width, max(height, width) // 6, 10.0)
        out += base
        out += rng.normal(0.0, 5.0, size=(height, width, 1)).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _smooth_field(
    rng: np.random.Generator, height: int, width: int, cells: int, amplitude: float
) -> npt.NDArray[np.float32]:
    """A ``(H, W, 3)`` field in about ``[-amplitude, amplitude]``: random values on a ``cells``
    grid, interpolated bilinearly (small matrix products, so it stays fast for any canvas)."""
    grid = rng.uniform(-amplitude, amplitude, size=(3, cells + 1, cells + 1)).astype(np.float32)
    rows, cols = _interpolation(height, cells), _interpolation(width, cells)
    field: npt.NDArray[np.float32] = np.ascontiguousarray((rows @ grid @ cols.T).transpose(1, 2, 0))
    return field


@lru_cache(maxsize=16)
def _interpolation(length: int, cells: int) -> npt.NDArray[np.float32]:
    position = (np.arange(length) + 0.5) * cells / length
    low = np.minimum(position.astype(np.int64), cells - 1)
    frac = position - low
    weights = np.zeros((length, cells + 1), dtype=np.float32)
    weights[np.arange(length), low] = 1.0 - frac
    weights[np.arange(length), low + 1] = frac
    weights.setflags(write=False)  # shared through the cache
    return weights


# -- labels from masks ----------------------------------------------------------------------
def rle_from_mask(mask: BoolArray) -> dict[str, Any]:
    """Binary ``(H, W)`` mask -> COCO RLE with uncompressed counts: column-major runs that
    start with a run of zeros (of length 0 when the first pixel is set)."""
    height, width = mask.shape
    flat = mask.flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate(([0], changes, [flat.size]))).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    return {"size": [height, width], "counts": [int(r) for r in runs]}


def mask_box(mask: BoolArray) -> list[float]:
    """Tight ``xyxy`` box of a non-empty mask (``x1``/``y1`` one past the last pixel)."""
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def mask_keypoints(mask: BoolArray) -> npt.NDArray[np.float64]:
    """``KEYPOINT_NAMES`` of a non-empty mask as ``(5, 3)`` x, y, visibility at pixel centres,
    each on a mask pixel (see the module docstring)."""
    ys, xs = np.nonzero(mask)  # row-major: sorted by y, then x
    order = np.lexsort((ys, xs))  # column-major: sorted by x, then y
    cys, cxs = ys[order], xs[order]

    def middle(values: npt.NDArray[np.intp]) -> int:
        return int(values[len(values) // 2])

    top = (middle(xs[ys == ys[0]]), int(ys[0]))
    bottom = (middle(xs[ys == ys[-1]]), int(ys[-1]))
    left = (int(cxs[0]), middle(cys[cxs == cxs[0]]))
    right = (int(cxs[-1]), middle(cys[cxs == cxs[-1]]))
    nearest = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    center = (int(xs[nearest]), int(ys[nearest]))
    points = np.array([top, bottom, left, right, center], dtype=np.float64) + 0.5
    return np.concatenate([points, np.full((len(points), 1), 2.0)], axis=1)


def objects_from_masks(
    masks: Sequence[BoolArray],
    class_names: Sequence[str],
    *,
    with_masks: bool = True,
    with_keypoints: bool = False,
    extra: dict[str, Any] | None = None,
) -> ObjectLabels:
    """Exact labels of non-empty instance masks: tight boxes, RLE masks, mask keypoints."""
    if any(not mask.any() for mask in masks):
        raise ValidationError("every instance mask needs at least one pixel")
    boxes = np.array([mask_box(mask) for mask in masks], dtype=np.float64).reshape(-1, 4)
    keypoints = None
    if with_keypoints:
        keypoints = np.array([mask_keypoints(m) for m in masks], dtype=np.float64).reshape(
            len(masks), len(KEYPOINT_NAMES), 3
        )
    return ObjectLabels(
        boxes=boxes,
        class_names=tuple(class_names),
        masks=tuple(rle_from_mask(mask) for mask in masks) if with_masks else None,
        keypoints=keypoints,
        extra=dict(extra or {}),
    )


def decode_rle(rle: dict[str, Any]) -> BoolArray:
    """Uncompressed-count RLE -> binary ``(H, W)`` mask (the inverse of :func:`rle_from_mask`)."""
    height, width = rle["size"]
    values = np.zeros(len(rle["counts"]), dtype=bool)
    values[1::2] = True
    return np.repeat(values, rle["counts"]).reshape((width, height)).T


# -- COCO folders ---------------------------------------------------------------------------
def write_scene_folder(scenes: Iterable[Scene], folder: Path, schema: LabelSchema) -> Path:
    """Write ``folder/images/scene_00000.png``... and ``folder/annotations.json`` (COCO: boxes
    as xywh, masks as compressed RLE for segmentation and keypoints schemas, keypoints as flat
    x, y, v with 1-based skeleton edges) so ``visionloop import coco`` reads them back; returns
    the annotations path."""
    from pycocotools import mask as coco_mask

    category_ids = {name: index + 1 for index, name in enumerate(schema.classes)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, scene in enumerate(scenes, start=1):
        name = f"images/scene_{image_id - 1:05d}.png"
        height, width = scene.image.shape[:2]
        buffer = io.BytesIO()
        Image.fromarray(scene.image).save(buffer, format="PNG")
        atomic_write_local(str(folder / name), buffer.getvalue())
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        label = scene.label
        for i, (box, class_name) in enumerate(zip(label.boxes, label.class_names, strict=True)):
            if class_name not in category_ids:
                raise ValidationError(f"{name}: class {class_name!r} is not in the schema {schema.classes}")
            x0, y0, x1, y1 = (float(v) for v in box)
            record: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": category_ids[class_name],
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0),
                "iscrowd": 0,
            }
            if schema.task is not TaskType.DETECTION:
                mask = label.masks[i] if label.masks is not None else None
                if mask is None:
                    raise ValidationError(
                        f"{name}: a {schema.task} folder needs masks; make scenes with masks"
                    )
                compressed = coco_mask.frPyObjects(mask, height, width)
                record["segmentation"] = {"size": [height, width], "counts": compressed["counts"].decode()}
                record["area"] = float(sum(mask["counts"][1::2]))
            if schema.task is TaskType.KEYPOINTS:
                if label.keypoints is None:
                    raise ValidationError(f"{name}: a keypoints folder needs keypoints; use with_keypoints")
                points = label.keypoints[i]
                record["keypoints"] = points.reshape(-1).tolist()
                record["num_keypoints"] = int(np.count_nonzero(points[:, 2] > 0))
            annotations.append(record)
    categories: list[dict[str, Any]] = []
    for class_name, category_id in category_ids.items():
        category: dict[str, Any] = {"id": category_id, "name": class_name, "supercategory": "object"}
        if schema.task is TaskType.KEYPOINTS:
            category["keypoints"] = list(schema.keypoints)
            category["skeleton"] = [[a + 1, b + 1] for a, b in schema.skeleton_indices]
        categories.append(category)
    document = {
        "info": {"description": "visionloop scenes with exact labels"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    target = folder / "annotations.json"
    atomic_write_local(str(target), json.dumps(document, separators=(",", ":")).encode())
    return target


# -- nuclei (stardist's bundled sample) -----------------------------------------------------
def _nuclei_bytes(source: Path | None) -> tuple[bytes, bytes] | None:
    """The image and mask TIFF bytes from a wheel/zip, a folder, or the installed package."""
    if source is None:
        spec = importlib.util.find_spec("stardist")  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            return None
        source = Path(next(iter(spec.submodule_search_locations))).parent
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            names = set(archive.namelist())
            members = [f"{_NUCLEI_DIR}/{name}" for name in _NUCLEI_FILES]
            if not all(member in names for member in members):
                return None
            return archive.read(members[0]), archive.read(members[1])
    for folder in (source, source / _NUCLEI_DIR):
        paths = [folder / name for name in _NUCLEI_FILES]
        if all(path.is_file() for path in paths):
            return paths[0].read_bytes(), paths[1].read_bytes()
    return None


def nuclei_available(source: Path | None = None) -> bool:
    return _nuclei_bytes(source) is not None


def nuclei_scene(
    source: Path | None = None, *, with_masks: bool = True, with_keypoints: bool = False
) -> Scene:
    """stardist's real nuclei image (grey, as RGB) with one ``nucleus`` object per instance id
    of its label image, ordered by id. ``source``: the stardist wheel file, a folder holding
    ``img2d.tif`` and ``mask2d.tif``, or None for an installed ``stardist`` package."""
    found = _nuclei_bytes(source)
    if found is None:
        raise ConfigError(
            "the stardist nuclei sample was not found; pass the wheel from "
            "'pip download stardist==0.9.2 --no-deps' or install stardist"
        )
    image = np.asarray(Image.open(io.BytesIO(found[0])))
    instances = np.asarray(Image.open(io.BytesIO(found[1])))
    if image.ndim != 2 or image.shape != instances.shape:
        raise ValidationError(f"nuclei image {image.shape} and mask {instances.shape} do not match")
    peak = int(image.max())
    grey = image if peak <= 255 else image.astype(np.float64) * (255.0 / peak)
    rgb = np.repeat(np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    ids = [int(i) for i in np.unique(instances) if i != 0]
    label = objects_from_masks(
        [instances == i for i in ids],
        [NUCLEUS] * len(ids),
        with_masks=with_masks,
        with_keypoints=with_keypoints,
        extra={"source": "stardist img2d.tif (2018 Data Science Bowl)", "instance_ids": ids},
    )
    return Scene(rgb, label)
