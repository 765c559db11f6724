"""COCO JSON: detection, instance segmentation (polygons and RLE), keypoints with skeleton, and
results (prediction) files.

COCO boxes are ``[x, y, width, height]`` in absolute pixels from the top-left corner; the core
uses ``xyxy``. Polygons stay polygons; RLE masks (compressed or not) become uncompressed RLE.
Keypoints are flat ``[x1, y1, v1, ...]``; skeleton edges are 1-based. Annotations with a
``score`` are model predictions.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from visionloop.core.errors import UnsafePathError, ValidationError
from visionloop.core.labels import ObjectLabels
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.common import (
    ObjectRow,
    human_provenance,
    labels_to_save,
    model_provenance,
    objects_label,
)
from visionloop.formats.masks import polygon_area, rle_area, rle_compress, rle_decode, rle_encode
from visionloop.formats.model import Annotation, ImportResult, LabeledImage, LabelSet, Rejection
from visionloop.formats.registry import LoadOptions, SaveOptions
from visionloop.formats.safeio import FormatFileError, read_json
from visionloop.formats.validate import (
    EDGE_TOLERANCE_PX,
    box_problem,
    class_problem,
    finite_numbers,
    flat_polygon_problem,
    keypoints_problem,
)
from visionloop.storage import atomic_write_local, safe_relative_path


class _Reject(Exception):
    """Internal: a record is invalid for the reason given."""


def load(path: Path, options: LoadOptions) -> ImportResult:
    try:
        data = read_json(path)
    except FormatFileError as exc:
        return ImportResult(
            LabelSet(options.schema), records=1, rejections=[Rejection(str(path), "/", str(exc))]
        )
    if isinstance(data, list):
        return _load_results(path, data, options)
    if not isinstance(data, dict):
        return ImportResult(
            LabelSet(options.schema),
            1,
            [Rejection(str(path), "/", "expected a JSON object or a results list")],
        )
    return _Loader(path, options).run(data)


class _Loader:
    def __init__(self, path: Path, options: LoadOptions) -> None:
        self.path = path
        self.options = options
        self.rejections: list[Rejection] = []
        self.records = 0
        self.categories: dict[Any, dict[str, Any]] = {}
        self.images: dict[Any, LabeledImage] = {}

    def reject(self, locator: str, reason: str) -> None:
        self.rejections.append(Rejection(str(self.path), locator, reason))

    def section(self, data: dict[str, Any], key: str) -> list[Any]:
        value = data.get(key, [])
        if not isinstance(value, list):
            self.records += 1
            self.reject(f"/{key}", f"'{key}' must be a list")
            return []
        return value

    def run(self, data: dict[str, Any]) -> ImportResult:
        categories = self.section(data, "categories")
        images = self.section(data, "images")
        annotations = self.section(data, "annotations")
        self.records += len(categories) + len(images) + len(annotations)
        for index, category in enumerate(categories):
            self._guard(f"/categories/{index}", self._category, category)
        schema = self.options.schema or self._schema(annotations)
        names: set[str] = set()
        for index, image in enumerate(images):
            self._guard(f"/images/{index}", self._image, image, names)
        rows: dict[tuple[Any, bool], list[tuple[int, ObjectRow | int]]] = defaultdict(list)
        seen_ids: set[Any] = set()
        fast = _FastPath(self, schema)
        for index in fast.run(annotations, seen_ids, rows):
            annotation = annotations[index]
            ids = None if index in fast.checked_ids else seen_ids
            row = self._guard(f"/annotations/{index}", self._annotation, annotation, schema, ids)
            if row is not None:
                rows[(annotation["image_id"], row.score is not None)].append((index, row))
        labels = LabelSet(schema, list(self.images.values()))
        keypoint_count = len(schema.keypoints) if schema else 0
        for (image_id, is_prediction), indexed in rows.items():
            image = self.images[image_id]
            positions = [entry for _index, entry in indexed if isinstance(entry, int)]
            if len(positions) == len(indexed):  # only fast-path objects: build the columns directly
                label = fast.label(positions)
                provenance = human_provenance(self.path, self.options.provenance)
                image.annotations.append(Annotation(label, provenance))
                continue
            objects = [
                fast.row(e) if isinstance(e, int) else e for _i, e in sorted(indexed, key=lambda p: p[0])
            ]
            if is_prediction:
                provenance = model_provenance(None, _mean_score(objects), self.options.provenance)
            else:
                provenance = human_provenance(self.path, self.options.provenance)
            image.annotations.append(Annotation(objects_label(objects, keypoint_count), provenance))
        return ImportResult(labels, self.records, self.rejections)

    def _guard(self, locator: str, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except _Reject as exc:
            self.reject(locator, str(exc))
        except (UnsafePathError, ValidationError, ValueError, TypeError, KeyError) as exc:
            self.reject(locator, f"invalid record: {exc}")
        return None

    def _category(self, category: Any) -> None:
        if (
            not isinstance(category, dict)
            or not isinstance(category.get("name"), str)
            or not category["name"]
        ):
            raise _Reject("a category needs an id and a non-empty name")
        cat_id = category.get("id")
        if not isinstance(cat_id, int) or isinstance(cat_id, bool):
            raise _Reject(f"category id must be an integer, got {cat_id!r}")
        if cat_id in self.categories:
            raise _Reject(f"duplicate category id {cat_id}")
        keypoints = category.get("keypoints", [])
        if not isinstance(keypoints, list) or not all(isinstance(k, str) for k in keypoints):
            raise _Reject("category keypoints must be a list of names")
        skeleton = category.get("skeleton", [])
        if not isinstance(skeleton, list) or not all(
            isinstance(edge, list)
            and len(edge) == 2
            and all(isinstance(i, int) and 1 <= i <= len(keypoints) for i in edge)
            for edge in skeleton
        ):
            raise _Reject(f"skeleton edges must be pairs of 1-based indices into {len(keypoints)} keypoints")
        self.categories[cat_id] = {"name": category["name"], "keypoints": keypoints, "skeleton": skeleton}

    def _schema(self, annotations: list[Any]) -> LabelSchema | None:
        if not self.categories:
            return None
        names = list(dict.fromkeys(c["name"] for c in self.categories.values()))
        with_keypoints = next((c for c in self.categories.values() if c["keypoints"]), None)
        if with_keypoints is not None:
            kps = with_keypoints["keypoints"]
            skeleton = [(kps[a - 1], kps[b - 1]) for a, b in with_keypoints["skeleton"]]
            return LabelSchema(task=TaskType.KEYPOINTS, classes=names, keypoints=kps, skeleton=skeleton)
        has_masks = any(isinstance(a, dict) and a.get("segmentation") for a in annotations)
        task = self.options.task or (TaskType.SEGMENTATION if has_masks else TaskType.DETECTION)
        return LabelSchema(task=task, classes=names)

    def _image(self, image: Any, names: set[str]) -> None:
        if not isinstance(image, dict):
            raise _Reject("an image record must be an object")
        image_id = image.get("id")
        if not isinstance(image_id, int | str) or isinstance(image_id, bool):
            raise _Reject(f"image id must be an integer or string, got {image_id!r}")
        if image_id in self.images:
            raise _Reject(f"duplicate image id {image_id!r}")
        name = image.get("file_name")
        if not isinstance(name, str):
            raise _Reject("image needs a file_name")
        name = safe_relative_path(name)
        if name in names:
            raise _Reject(f"duplicate file_name {name!r}")
        width, height = image.get("width"), image.get("height")
        for value, label in ((width, "width"), (height, "height")):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise _Reject(f"image {label} must be a positive integer, got {value!r}")
        names.add(name)
        self.images[image_id] = LabeledImage(name, width, height)

    def _annotation(
        self, annotation: Any, schema: LabelSchema | None, seen_ids: set[Any] | None
    ) -> ObjectRow:
        """The exact, record-by-record path: every check with its own reason. ``seen_ids`` is
        None for records the fast path already checked for duplicate ids."""
        if not isinstance(annotation, dict):
            raise _Reject("an annotation must be an object")
        for key in ("id", "image_id", "category_id"):
            if not _is_key(annotation.get(key)):
                raise _Reject(f"{key} must be a number or string, got {type(annotation.get(key)).__name__}")
        ann_id = annotation.get("id")
        if ann_id is not None and seen_ids is not None:
            if ann_id in seen_ids:
                raise _Reject(f"duplicate annotation id {ann_id!r}")
            seen_ids.add(ann_id)
        image = self.images.get(annotation.get("image_id"))
        if image is None:
            raise _Reject(f"references missing image id {annotation.get('image_id')!r}")
        category = self.categories.get(annotation.get("category_id"))
        if category is None:
            raise _Reject(f"unknown category id {annotation.get('category_id')!r}")
        if "problem" not in category:  # checked once per category, not per annotation
            category["problem"] = class_problem(category["name"], schema)
        if category["problem"]:
            raise _Reject(category["problem"])
        return _object_row(annotation, category, image, schema)


_KEY_TYPES = frozenset({int, str, float, bool, type(None)})  # a list or object id cannot be looked up


def _is_key(value: Any) -> bool:
    return type(value) in _KEY_TYPES


def _plain_rings(segmentation: list[Any]) -> bool:
    """Polygon lists with even numbers of at least six coordinates (the usual COCO shape)."""
    for ring in segmentation:  # noqa: SIM110 - a plain loop beats all(genexpr) on this hot path
        if type(ring) is not list or len(ring) < 6 or len(ring) % 2:
            return False
    return True


_FAST_KEYS = frozenset({"id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd"})
_NUMBER_TYPES = frozenset({int, float})


class _FastPath:
    """Validates the common record shape (a box, optional single-part polygons) for all records
    at once with numpy. Records it cannot vouch for, or that fail a check, go back to the exact
    path, which finds and words the reason. Same results, several times faster on large files.
    """

    def __init__(self, loader: _Loader, schema: LabelSchema | None) -> None:
        self.loader = loader
        self.schema = schema
        self.checked_ids: set[int] = set()  # records whose id the fast path already registered
        self.xyxy: Any = np.zeros((0, 4))
        self.polygons: list[list[Any]] = []
        self.names: list[str] = []
        self.crowd: list[bool] = []

    def run(
        self,
        annotations: list[Any],
        seen_ids: set[Any],
        rows: dict[tuple[Any, bool], list[tuple[int, ObjectRow | int]]],
    ) -> list[int]:
        """Take what it can into ``rows`` (as positions in its arrays); return the record
        indices that need the exact path."""
        exact: list[int] = []
        picked: list[tuple[int, Any, LabeledImage, str, bool]] = []
        boxes: list[Any] = []
        coords: list[Any] = []
        ring_lengths: list[int] = []
        ring_owner: list[int] = []
        images = self.loader.images
        # Categories the fast path may take: no keypoints, a class the schema knows.
        categories = {
            cid: c
            for cid, c in self.loader.categories.items()
            if not c["keypoints"] and not self._class_problem(c)
        }
        for index, record in enumerate(annotations):
            if (
                type(record) is not dict
                or not record.keys() <= _FAST_KEYS
                or type(record.get("id")) not in _KEY_TYPES
                or type(record.get("image_id")) not in _KEY_TYPES
                or type(record.get("category_id")) not in _KEY_TYPES
            ):
                exact.append(index)  # the exact path says what is wrong with it
                continue
            ann_id = record.get("id")
            if ann_id is not None and ann_id in seen_ids:
                self.loader.reject(f"/annotations/{index}", f"duplicate annotation id {ann_id!r}")
                continue
            image = images.get(record.get("image_id"))
            category = categories.get(record.get("category_id"))
            bbox = record.get("bbox")
            segmentation = record.get("segmentation") or ()
            if (
                image is None
                or category is None
                or type(bbox) is not list
                or len(bbox) != 4
                or type(segmentation) not in (list, tuple)
                or (segmentation and not _plain_rings(segmentation))
            ):
                exact.append(index)
                continue
            if ann_id is not None:
                seen_ids.add(ann_id)
            position = len(picked)
            picked.append((index, record["image_id"], image, category["name"], bool(record.get("iscrowd"))))
            boxes.extend(bbox)
            for ring in segmentation:
                coords.extend(ring)
                ring_lengths.append(len(ring) // 2)
                ring_owner.append(position)
        if not picked:
            return exact
        if not set(map(type, boxes)) <= _NUMBER_TYPES or not set(map(type, coords)) <= _NUMBER_TYPES:
            self.checked_ids.update(entry[0] for entry in picked)
            return sorted(exact + [entry[0] for entry in picked])  # odd types somewhere: go exact
        failed, xyxy, points, starts = self._check(picked, boxes, coords, ring_lengths, ring_owner)
        polygons: list[list[Any]] = [[] for _ in picked]
        for owner, start, length in zip(ring_owner, starts, ring_lengths, strict=True):
            polygons[owner].append(points[start : start + length])
        self.xyxy, self.polygons = xyxy, polygons
        self.names = [entry[3] for entry in picked]
        self.crowd = [entry[4] for entry in picked]
        for position, (index, image_id, _image, _class_name, _crowd) in enumerate(picked):
            if failed[position]:
                exact.append(index)
                self.checked_ids.add(index)
                continue
            rows[(image_id, False)].append((index, position))
        return sorted(exact)

    def label(self, positions: list[int]) -> ObjectLabels:
        """The objects at ``positions`` as column-oriented labels (what ``objects_label`` builds)."""
        rings = [self.polygons[p] for p in positions]
        crowd = [self.crowd[p] for p in positions]
        return ObjectLabels(
            boxes=self.xyxy[positions],
            class_names=tuple(self.names[p] for p in positions),
            polygons=tuple(tuple(r) for r in rings) if any(rings) else None,
            attributes=tuple({"iscrowd": 1} if c else {} for c in crowd) if any(crowd) else None,
        )

    def row(self, position: int) -> ObjectRow:
        attributes = {"iscrowd": 1} if self.crowd[position] else {}
        box = self.xyxy[position].tolist()
        return ObjectRow(
            box, self.names[position], polygons=list(self.polygons[position]), attributes=attributes
        )

    def _class_problem(self, category: dict[str, Any]) -> str | None:
        if "problem" not in category:
            category["problem"] = class_problem(category["name"], self.schema)
        problem: str | None = category["problem"]
        return problem

    @staticmethod
    def _check(
        picked: list[tuple[int, Any, LabeledImage, str, bool]],
        boxes: list[Any],
        coords: list[Any],
        ring_lengths: list[int],
        ring_owner: list[int],
    ) -> tuple[Any, Any, Any, Any]:
        tol = EDGE_TOLERANCE_PX
        xywh = np.array(boxes, dtype=np.float64).reshape(-1, 4)
        size = np.array([(entry[2].width, entry[2].height) for entry in picked], dtype=np.float64)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        with np.errstate(invalid="ignore", over="ignore"):
            failed = ~np.isfinite(xyxy).all(axis=1) | (xywh[:, 2] <= 0) | (xywh[:, 3] <= 0)
            failed |= (xyxy[:, :2] < -tol).any(axis=1) | (xyxy[:, 2:] > size + tol).any(axis=1)
        points = np.array(coords, dtype=np.float64).reshape(-1, 2)
        starts = (
            np.concatenate([[0], np.cumsum(ring_lengths)[:-1]]).astype(np.int64)
            if ring_lengths
            else np.zeros(0, np.int64)
        )
        if len(points):
            owners = np.array(ring_owner)
            finite = np.isfinite(points).all(axis=1)
            bad_ring = ~np.logical_and.reduceat(finite, starts)
            low = np.minimum.reduceat(np.where(np.isfinite(points), points, 0.0), starts, axis=0)
            high = np.maximum.reduceat(np.where(np.isfinite(points), points, 0.0), starts, axis=0)
            bad_ring |= (low < -tol).any(axis=1) | (high > size[owners] + tol).any(axis=1)
            np.logical_or.at(failed, owners[bad_ring], True)
        return failed, xyxy, points, starts.tolist()


def _object_row(
    annotation: dict[str, Any], category: dict[str, Any], image: LabeledImage, schema: LabelSchema | None
) -> ObjectRow:
    width, height = image.width, image.height
    bbox = finite_numbers(annotation.get("bbox"), 4)
    if bbox is None:
        raise _Reject("bbox must be [x, y, width, height] of finite numbers")
    box = [bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]]
    if bbox[2] <= 0 or bbox[3] <= 0:
        raise _Reject(f"bbox {bbox} has zero or negative size")
    problem = box_problem(box, width, height)
    if problem:
        raise _Reject(problem)
    row = ObjectRow(box=box, class_name=category["name"])
    score = annotation.get("score")
    if score is not None:
        if finite_numbers([score]) is None or not 0.0 <= float(score) <= 1.0:
            raise _Reject(f"score must be a number within [0, 1], got {score!r}")
        row.score = float(score)
    _read_segmentation(annotation.get("segmentation"), row, width, height)
    keypoint_names = category["keypoints"] or (schema.keypoints if schema else [])
    if annotation.get("keypoints") is not None and keypoint_names:
        flat = finite_numbers(annotation["keypoints"], 3 * len(keypoint_names))
        if flat is None:
            raise _Reject(f"keypoints must be {3 * len(keypoint_names)} numbers (x, y, v for each keypoint)")
        points = np.array(flat).reshape(-1, 3)
        problem = keypoints_problem(points, width, height)
        if problem:
            raise _Reject(problem)
        points[points[:, 2] == 0, :2] = 0.0
        row.keypoints = points
    if annotation.get("iscrowd"):
        row.attributes["iscrowd"] = 1
    if isinstance(annotation.get("attributes"), dict):
        row.attributes.update(annotation["attributes"])
    return row


def _read_segmentation(segmentation: Any, row: ObjectRow, width: int | None, height: int | None) -> None:
    if segmentation is None or segmentation == []:
        return
    if isinstance(segmentation, list):
        for ring_index, ring in enumerate(segmentation):
            flat = finite_numbers(ring)
            if flat is None or len(flat) % 2:
                raise _Reject(f"segmentation polygon {ring_index} must be an even-length list of numbers")
            problem = flat_polygon_problem(flat, width, height)
            if problem:
                raise _Reject(problem)
            row.polygons.append(flat)  # flat list; objects_label converts all rings at once
        return
    if isinstance(segmentation, dict):
        if height is not None and width is not None and list(segmentation.get("size", [])) != [height, width]:
            raise _Reject(f"RLE size {segmentation.get('size')!r} does not match the {width}x{height} image")
        try:
            row.mask = rle_encode(rle_decode(segmentation))
        except (ValueError, ValidationError) as exc:
            raise _Reject(f"invalid RLE mask: {exc}") from exc
        return
    raise _Reject("segmentation must be a list of polygons or an RLE object")


def _mean_score(rows: list[ObjectRow]) -> float | None:
    scores = [r.score for r in rows if r.score is not None]
    return float(np.mean(scores)) if scores else None


def _load_results(path: Path, data: list[Any], options: LoadOptions) -> ImportResult:
    """A results list: ``image_id`` resolves through ``options.reference`` (a ground-truth file)."""
    reference, problem = _reference(options)
    if reference is None:
        rejections = [Rejection(str(path), f"/{i}", problem) for i in range(len(data))]
        return ImportResult(LabelSet(options.schema), len(data), rejections)
    loader = _Loader(path, options)
    loader.records = len(data)
    loader.categories, loader.images = reference.categories, reference.images
    schema = options.schema or reference._schema([])
    rows: dict[Any, list[ObjectRow]] = defaultdict(list)
    for index, result in enumerate(data):
        row = loader._guard(f"/{index}", loader._annotation, result, schema, None)
        if row is None:
            continue
        if row.score is None:
            loader.reject(f"/{index}", "a result needs a score")
            continue
        rows[result["image_id"]].append(row)
    keypoint_count = len(schema.keypoints) if schema else 0
    for image_id, objects in rows.items():
        provenance = model_provenance(None, _mean_score(objects), options.provenance)
        loader.images[image_id].annotations.append(
            Annotation(objects_label(objects, keypoint_count), provenance)
        )
    images = [image for image in loader.images.values() if image.annotations]
    return ImportResult(LabelSet(schema, images), loader.records, loader.rejections)


def _reference(options: LoadOptions) -> tuple[_Loader | None, str]:
    """The categories and images of the ground-truth file a results file refers to, read once
    (its annotations are not needed), or None and why the file cannot serve."""
    if options.reference is None:
        return None, "a results file needs --reference GROUND_TRUTH.json"
    try:
        data = read_json(options.reference)
    except FormatFileError as exc:
        return None, f"unusable reference file: {exc}"
    if not isinstance(data, dict):
        return None, f"unusable reference file {options.reference}: expected a COCO JSON object"
    reference = _Loader(options.reference, options)  # its own rejections concern the reference file
    for index, category in enumerate(reference.section(data, "categories")):
        reference._guard(f"/categories/{index}", reference._category, category)
    names: set[str] = set()
    for index, image in enumerate(reference.section(data, "images")):
        reference._guard(f"/images/{index}", reference._image, image, names)
    return reference, ""


# -- saving ---------------------------------------------------------------------------------
def save(labels: LabelSet, out: Path, options: SaveOptions) -> list[Path]:
    schema = labels.schema
    assert schema is not None  # noqa: S101 - FormatSpec.save checked it
    target = (
        out / ("results.json" if options.predictions else "annotations.json")
        if out.suffix != ".json"
        else out
    )
    images = sorted(labels.images, key=lambda image: image.name)
    category_ids = {name: index + 1 for index, name in enumerate(schema.classes)}
    annotations: list[dict[str, Any]] = []
    coco_images = []
    for image_id, image in enumerate(images, start=1):
        if image.width is None or image.height is None:
            raise FormatFileError(f"cannot write COCO: image {image.name!r} has no width/height")
        coco_images.append(
            {"id": image_id, "file_name": image.name, "width": image.width, "height": image.height}
        )
        for annotation in labels_to_save(image, options.predictions):
            if isinstance(annotation.label, ObjectLabels):
                annotations.extend(_coco_objects(annotation.label, image_id, category_ids, len(annotations)))
    if options.predictions:
        document: Any = [
            {key: value for key, value in a.items() if key not in ("id", "area", "iscrowd", "num_keypoints")}
            for a in annotations
        ]
    else:
        document = {
            "info": {"description": "exported by visionloop"},
            "images": coco_images,
            "annotations": annotations,
            "categories": [_category(name, cid, schema) for name, cid in category_ids.items()],
        }
    atomic_write_local(str(target), orjson.dumps(document))
    return [target]


def _category(name: str, category_id: int, schema: LabelSchema) -> dict[str, Any]:
    category: dict[str, Any] = {"id": category_id, "name": name, "supercategory": name}
    if schema.task is TaskType.KEYPOINTS:
        category["keypoints"] = list(schema.keypoints)
        category["skeleton"] = [[a + 1, b + 1] for a, b in schema.skeleton_indices]
    return category


def _coco_objects(
    label: ObjectLabels, image_id: int, category_ids: dict[str, int], first_id: int
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, (box, name) in enumerate(zip(label.boxes, label.class_names, strict=True)):
        x0, y0, x1, y1 = (float(v) for v in box)
        attributes = dict(label.attributes[i]) if label.attributes is not None else {}
        iscrowd = int(attributes.pop("iscrowd", 0))
        record: dict[str, Any] = {
            "id": first_id + len(out) + 1,
            "image_id": image_id,
            "category_id": category_ids[name],
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "iscrowd": iscrowd,
        }
        area = (x1 - x0) * (y1 - y0)
        rings = label.polygons[i] if label.polygons is not None else ()
        mask = label.masks[i] if label.masks is not None else None
        if rings:
            record["segmentation"] = [ring.reshape(-1).tolist() for ring in rings]
            area = sum(polygon_area(ring) for ring in rings)
        elif mask is not None:
            record["segmentation"] = rle_compress(mask)
            area = float(rle_area(mask))
        record["area"] = area
        if label.keypoints is not None:
            points = label.keypoints[i]
            record["keypoints"] = points.reshape(-1).tolist()
            record["num_keypoints"] = int(np.count_nonzero(points[:, 2] > 0))
        if label.scores is not None:
            record["score"] = float(label.scores[i])
        if attributes:
            record["attributes"] = attributes
        out.append(record)
    return out
