"""DeepLabCut projects: ``config.yaml`` plus ``labeled-data/<video>/CollectedData_<scorer>.csv``.

Input is a project folder, its ``config.yaml``, or a ``.zip`` of the project (extracted with
:func:`~visionloop.formats.safeio.extract_zip` into a temporary folder, removed afterwards).
Only ``config.yaml`` (safe YAML) and ``CollectedData_*.csv`` are read: the ``.h5`` twin needs
PyTables and ``.pickle`` files could run code, so neither is ever opened.

CSV layout (as pandas writes DeepLabCut's column MultiIndex): header rows ``scorer`` /
``bodyparts`` / ``coords`` (single animal) or ``scorer`` / ``individuals`` / ``bodyparts`` /
``coords`` (multi-animal), then one row per frame. The row index is one column
(``labeled-data/<video>/img0042.png``; backslashes of old Windows projects become ``/``) or
three (``labeled-data``, ``<video>``, ``img0042.png``). Coordinates are absolute pixels; an empty
or NaN cell means unlabeled (visibility 0), a number means visible (visibility 2).

Each CSV row is one image named ``labeled-data/<video>/<img>`` with one human annotation (by
``deeplabcut:<scorer>``) holding one object per individual that has a labeled point: class
``animal`` (or the schema's first class), ``attributes={"individual": name}`` in multi-animal
projects. The schema's keypoints are the ``bodyparts`` (multi-animal: ``multianimalbodyparts``
then ``uniquebodyparts``; unique body parts form their own object, individual ``single``).
DeepLabCut has no boxes: an object's box is the extent of its labeled points. Image sizes come
from the image files next to the CSV when they are present and readable, else they are None.

``records`` counts CSV data rows, plus one for each file that could not be used at all
(locator ``/`` for the project or config, ``header`` for a CSV header); row locators are
``row N``, N being the 1-based row of the CSV file including its header rows.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from visionloop.core.errors import UnsafePathError, ValidationError
from visionloop.core.labels import FloatArray, ObjectLabels
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.common import ObjectRow, labels_to_save, objects_label
from visionloop.formats.model import Annotation, ImportResult, LabeledImage, LabelSet, Rejection
from visionloop.formats.registry import LoadOptions, SaveOptions
from visionloop.formats.safeio import MAX_ARCHIVE_ENTRIES, FormatFileError, extract_zip, read_text, read_yaml
from visionloop.formats.validate import keypoints_problem
from visionloop.imaging import ImageRejected, probe_image
from visionloop.storage import atomic_write_local, safe_relative_path

DEFAULT_CLASS = "animal"
DEFAULT_SCORER = "visionloop"
#: Individual that holds a multi-animal project's unique body parts.
SINGLE = "single"
#: Video folder for images whose names are not ``labeled-data/<video>/<img>``.
FALLBACK_VIDEO = "visionloop"
#: Archive member limit for zipped projects (the module reads it at call time).
ARCHIVE_ENTRIES = MAX_ARCHIVE_ENTRIES
#: Image files larger than this are not opened to learn their size.
MAX_IMAGE_BYTES = 256 * 1024**2
_MISSING = frozenset({"", "nan", "NaN", "NAN"})


class _Reject(Exception):
    """Internal: a row, header or file is invalid for the reason given."""


def load(path: Path, options: LoadOptions) -> ImportResult:
    """Load a project folder, its ``config.yaml``, or a ``.zip`` of the project."""
    if path.is_dir():
        return _Project(path, f"{path}/", options).run()
    if path.is_file() and path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="visionloop-dlc-") as scratch:
            try:
                extract_zip(path, Path(scratch), max_entries=ARCHIVE_ENTRIES)
            except FormatFileError as exc:
                return _failed(path, str(exc), options)
            return _Project(_project_root(Path(scratch)), f"{path}!", options).run()
    if path.is_file() and path.name == "config.yaml":
        return _Project(path.parent, f"{path.parent}/", options).run()
    return _failed(path, "expected a DeepLabCut project folder, its config.yaml or a .zip of it", options)


def _failed(path: Path, reason: str, options: LoadOptions) -> ImportResult:
    return ImportResult(LabelSet(options.schema), 1, [Rejection(str(path), "/", reason)])


def _project_root(folder: Path) -> Path:
    """A zip usually holds the project folder itself; descend into it when it is the only one."""
    if (folder / "config.yaml").is_file():
        return folder
    nested = [child for child in folder.iterdir() if (child / "config.yaml").is_file()]
    return nested[0] if len(nested) == 1 else folder


@dataclass
class _Config:
    scorer: str
    bodyparts: list[str]
    unique: list[str] = field(default_factory=list)
    individuals: list[str] = field(default_factory=list)
    multi: bool = False
    skeleton: list[tuple[str, str]] = field(default_factory=list)


def _names(value: Any, key: str, required: bool) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _Reject(f"config '{key}' must be a list of names")
    if required and not value:
        raise _Reject(f"config '{key}' lists no names")
    return [v.strip() for v in value]


def _parse_config(data: Any) -> _Config:
    if not isinstance(data, dict):
        raise _Reject("config.yaml must be a mapping")
    scorer = data.get("scorer", DEFAULT_SCORER)
    if not isinstance(scorer, str) or not scorer.strip():
        raise _Reject("config 'scorer' must be a non-empty string")
    multi = data.get("multianimalproject", False)
    if not isinstance(multi, bool):
        raise _Reject("config 'multianimalproject' must be true or false")
    config = _Config(scorer.strip(), [], multi=multi)
    if multi:
        config.bodyparts = _names(data.get("multianimalbodyparts"), "multianimalbodyparts", True)
        config.unique = _names(data.get("uniquebodyparts"), "uniquebodyparts", False)
        config.individuals = _names(data.get("individuals"), "individuals", True)
    else:
        config.bodyparts = _names(data.get("bodyparts"), "bodyparts", True)
    skeleton = data.get("skeleton") or []
    if not isinstance(skeleton, list) or not all(
        isinstance(edge, list) and len(edge) == 2 and all(isinstance(n, str) for n in edge)
        for edge in skeleton
    ):
        raise _Reject("config 'skeleton' must be a list of [bodypart, bodypart] pairs")
    config.skeleton = [(a, b) for a, b in skeleton]
    return config


@dataclass(frozen=True)
class _Column:
    """One ``x``/``y`` column pair of a CSV: whose body part it is and where it starts."""

    individual: str | None
    keypoint: int
    start: int


class _Project:
    def __init__(self, root: Path, display: str, options: LoadOptions) -> None:
        self.root = root
        self.display = display  # prefix of Rejection.file: the folder, or "archive.zip!"
        self.options = options
        self.records = 0
        self.rejections: list[Rejection] = []
        self.seen: set[str] = set()

    def reject(self, relative: str, locator: str, reason: str) -> None:
        self.rejections.append(Rejection(self.display + relative, locator, reason))

    def fail(self, relative: str, locator: str, reason: str) -> None:
        """A whole file is unusable: it counts as one record, rejected."""
        self.records += 1
        self.reject(relative, locator, reason)

    def result(self, labels: LabelSet) -> ImportResult:
        return ImportResult(labels, self.records, self.rejections)

    def run(self) -> ImportResult:
        config_path = self.root / "config.yaml"
        if not config_path.is_file() or config_path.is_symlink():
            self.fail("config.yaml", "/", "no config.yaml (a regular file) in the project folder")
            return self.result(LabelSet(self.options.schema))
        try:
            config = _parse_config(read_yaml(config_path))
            schema = self._schema(config)
        except (FormatFileError, _Reject) as exc:
            self.fail("config.yaml", "/", str(exc))
            return self.result(LabelSet(self.options.schema))
        except ValueError as exc:  # pydantic's ValidationError: names or skeleton do not fit
            self.fail("config.yaml", "/", f"config does not describe a keypoints schema: {exc}")
            return self.result(LabelSet(self.options.schema))
        labels = LabelSet(schema)
        files = self._csv_files()
        if not files:
            self.fail("labeled-data", "/", "no labeled-data/<video>/CollectedData_*.csv files")
        for relative in files:
            self._read_csv(relative, config, schema, labels)
        return self.result(labels)

    def _schema(self, config: _Config) -> LabelSchema:
        schema = self.options.schema
        if schema is not None:
            if schema.task is not TaskType.KEYPOINTS:
                raise _Reject(f"DeepLabCut labels keypoints; the project task is {schema.task}")
            return schema
        keypoints = config.bodyparts + [u for u in config.unique if u not in config.bodyparts]
        return LabelSchema(
            task=TaskType.KEYPOINTS, classes=[DEFAULT_CLASS], keypoints=keypoints, skeleton=config.skeleton
        )

    def _csv_files(self) -> list[str]:
        """CollectedData CSVs as POSIX paths relative to the root, refusing links that leave it."""
        folder = self.root / "labeled-data"
        if not folder.is_dir() or folder.is_symlink():
            return []
        out = []
        root = self.root.resolve()
        for path in sorted(folder.glob("*/CollectedData_*.csv")):
            relative = path.relative_to(self.root).as_posix()
            if path.is_symlink() or path.parent.is_symlink() or not path.resolve().is_relative_to(root):
                self.fail(relative, "/", "refusing a symbolic link")
            elif path.is_file():
                out.append(relative)
        return out

    def _read_csv(self, relative: str, config: _Config, schema: LabelSchema, labels: LabelSet) -> None:
        try:
            rows = list(csv.reader(io.StringIO(read_text(self.root / relative), newline="")))
            header = _header(rows, schema)
        except (FormatFileError, _Reject, csv.Error) as exc:
            self.fail(relative, "header", str(exc))
            return
        scorer = next((cell for cell in rows[0][header.index_width :] if cell.strip()), config.scorer)
        provenance = self.options.provenance or Provenance.human(f"deeplabcut:{scorer.strip()}")
        for number, row in enumerate(rows[header.size :], start=header.size + 1):
            if not any(cell.strip() for cell in row):
                continue
            self.records += 1
            try:
                image, label = self._image(row, header, schema)
            except (_Reject, UnsafePathError, ValidationError) as exc:
                self.reject(relative, f"row {number}", str(exc))
                continue
            image.annotations.append(Annotation(label, provenance))
            labels.images.append(image)

    def _image(
        self, row: list[str], header: _Header, schema: LabelSchema
    ) -> tuple[LabeledImage, ObjectLabels]:
        """One CSV row as an image and its objects (one per individual with a labeled point)."""
        if len(row) != header.width:
            raise _Reject(f"expected {header.width} columns like the header, got {len(row)}")
        name = _row_name(row[: header.index_width])
        if name in self.seen:
            raise _Reject(f"duplicate image {name!r}")
        width, height = self._size(name)
        points: dict[str | None, FloatArray] = {}
        for column in header.columns:
            xy = _cell_pair(row, column.start)
            if xy is None:
                continue
            array = points.setdefault(column.individual, np.zeros((len(schema.keypoints), 3)))
            array[column.keypoint] = (xy[0], xy[1], 2.0)
        rows = []
        for individual, array in points.items():
            problem = keypoints_problem(array, width, height)
            if problem:
                raise _Reject(f"individual {individual}: {problem}" if individual else problem)
            labeled = array[array[:, 2] > 0, :2]
            box = [*labeled.min(axis=0).tolist(), *labeled.max(axis=0).tolist()]
            attributes = {"individual": individual} if individual is not None else {}
            rows.append(
                ObjectRow(box=box, class_name=schema.classes[0], keypoints=array, attributes=attributes)
            )
        self.seen.add(name)
        return LabeledImage(name, width, height), objects_label(rows, len(schema.keypoints))

    def _size(self, name: str) -> tuple[int | None, int | None]:
        """The oriented size of the image file next to the CSV, when present and readable."""
        path = self.root / name
        try:
            if (
                path.is_symlink()
                or not path.is_file()
                or not path.resolve().is_relative_to(self.root.resolve())
                or path.stat().st_size > MAX_IMAGE_BYTES
            ):
                return None, None
            info = probe_image(path.read_bytes())
        except (OSError, ImageRejected):
            return None, None
        return info.width, info.height


@dataclass(frozen=True)
class _Header:
    size: int  # header rows
    index_width: int  # 1 or 3 index columns
    width: int  # columns of every row
    columns: list[_Column]


def _header(rows: list[list[str]], schema: LabelSchema) -> _Header:
    """Parse the 3 (single-animal) or 4 (multi-animal) header rows into column pairs."""
    if len(rows) < 3 or not rows[0] or rows[0][0].strip() != "scorer":
        raise _Reject("expected header rows starting with 'scorer'")
    multi = len(rows[1]) > 0 and rows[1][0].strip() == "individuals"
    size = 4 if multi else 3
    labels = ["scorer", "individuals", "bodyparts", "coords"] if multi else ["scorer", "bodyparts", "coords"]
    if len(rows) < size or any(not rows[i] or rows[i][0].strip() != labels[i] for i in range(size)):
        raise _Reject(f"expected header rows {' / '.join(labels)}")
    width = len(rows[0])
    if any(len(rows[i]) != width for i in range(size)):
        raise _Reject("header rows have different numbers of columns")
    index_width = 1
    while index_width < width and not rows[0][index_width].strip():
        index_width += 1
    if index_width not in (1, 3) or (width - index_width) % 2 or width == index_width:
        raise _Reject(f"expected 1 or 3 index columns then x, y pairs; got {width} columns")
    individuals = rows[1] if multi else None
    bodyparts, coords = rows[size - 2], rows[size - 1]
    columns: list[_Column] = []
    seen: set[tuple[str | None, str]] = set()
    for start in range(index_width, width, 2):
        part = bodyparts[start].strip()
        individual = individuals[start].strip() if individuals is not None else None
        same = bodyparts[start + 1].strip() == part and (
            individuals is None or individuals[start + 1].strip() == individual
        )
        if not same or (coords[start].strip(), coords[start + 1].strip()) != ("x", "y"):
            raise _Reject(f"columns {start + 1}-{start + 2} must be the x, y pair of one body part")
        if individual == "":
            raise _Reject(f"column {start + 1} names no individual")
        if part not in schema.keypoints:
            raise _Reject(f"unknown bodypart {part!r}; known: {', '.join(schema.keypoints)}")
        if (individual, part) in seen:
            owner = f"individual {individual!r}, " if individual is not None else ""
            raise _Reject(f"duplicate columns for {owner}bodypart {part!r}")
        seen.add((individual, part))
        columns.append(_Column(individual, schema.keypoints.index(part), start))
    return _Header(size, index_width, width, columns)


def _row_name(index: list[str]) -> str:
    if len(index) == 1:
        name = index[0].strip().replace("\\", "/")
    else:
        if not all(cell.strip() for cell in index):
            raise _Reject("the three index cells must all name the image")
        if any("/" in cell or "\\" in cell for cell in index):
            raise _Reject("each of the three index cells must be a single path segment")
        name = "/".join(cell.strip() for cell in index)
    return safe_relative_path(name)


def _cell_pair(row: list[str], start: int) -> tuple[float, float] | None:
    """(x, y) of a labeled body part, None when unlabeled; rejects half-labeled or bad cells."""
    x, y = _cell(row[start], start), _cell(row[start + 1], start + 1)
    if x is None and y is None:
        return None
    if x is None or y is None:
        raise _Reject(f"columns {start + 1}-{start + 2} have only one of x and y")
    return x, y


def _cell(text: str, column: int) -> float | None:
    cell = text.strip()
    if cell in _MISSING:
        return None
    try:
        value = float(cell)
    except ValueError:
        raise _Reject(f"non-numeric cell {cell[:40]!r} in column {column + 1}") from None
    if not math.isfinite(value):
        raise _Reject(f"non-finite coordinate {cell!r} in column {column + 1}")
    if value < 0:
        raise _Reject(f"negative coordinate {value:g} in column {column + 1}")
    return value


# -- saving -----------------------------------------------------------------------------------
@dataclass
class _Frame:
    name: str  # labeled-data/<video>/<img>
    source: LabeledImage
    objects: list[tuple[str | None, FloatArray]]  # (individual, (K, 3) keypoints)


def save(labels: LabelSet, out: Path, options: SaveOptions, *, scorer: str = DEFAULT_SCORER) -> list[Path]:
    """Write ``config.yaml`` and ``labeled-data/<video>/CollectedData_<scorer>.csv`` per video.

    DeepLabCut trains from the ``.h5`` twin: run ``deeplabcut.convertcsv2h5(config_path,
    userfeedback=False)`` once after export. Images are copied from ``options.image_source``
    when given. Names not shaped ``labeled-data/<video>/<img>`` go to
    ``labeled-data/visionloop/`` with their folders flattened into the file name.
    """
    schema = labels.schema
    assert schema is not None  # noqa: S101 - FormatSpec.save checked it
    frames = _frames(labels, options.predictions)
    multi = any(len(f.objects) > 1 or any(ind is not None for ind, _ in f.objects) for f in frames)
    if multi:
        _name_individuals(frames)
    unique = _unique_bodyparts(frames, schema)
    individuals = list(
        dict.fromkeys(ind for f in frames for ind, _ in f.objects if ind not in (None, SINGLE))
    )
    columns = _save_columns(schema, multi, individuals, unique)
    written = []
    videos: dict[str, list[_Frame]] = {}
    for frame in frames:
        videos.setdefault(frame.name.split("/")[1], []).append(frame)
    for video, members in videos.items():
        target = out / "labeled-data" / video / f"CollectedData_{scorer}.csv"
        atomic_write_local(
            str(target), _csv_text(members, columns, schema.keypoints, scorer, multi).encode("utf-8")
        )
        written.append(target)
        written.extend(_copy_images(members, out, options.image_source))
    config = _config(schema, out, scorer, multi, individuals, unique, videos)
    config_path = out / "config.yaml"
    atomic_write_local(str(config_path), yaml.safe_dump(config, sort_keys=False).encode("utf-8"))
    return [config_path, *written]


def _frames(labels: LabelSet, predictions: bool) -> list[_Frame]:
    frames: list[_Frame] = []
    used: set[str] = set()
    for image in sorted(labels.images, key=lambda i: i.name):
        objects: list[tuple[str | None, FloatArray]] = []
        for annotation in labels_to_save(image, predictions):
            if isinstance(annotation.label, ObjectLabels):
                objects.extend(_objects(annotation.label))
        name = _dlc_name(image.name, used)
        used.add(name)
        frames.append(_Frame(name, image, objects))
    return frames


def _objects(label: ObjectLabels) -> Iterable[tuple[str | None, FloatArray]]:
    if label.keypoints is None:
        return []
    out = []
    for i in range(len(label)):
        attributes = label.attributes[i] if label.attributes is not None else {}
        individual = attributes.get("individual")
        out.append((individual if isinstance(individual, str) and individual else None, label.keypoints[i]))
    return out


def _dlc_name(name: str, used: set[str]) -> str:
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "labeled-data" and name not in used:
        return name
    flat = "__".join(parts)
    stem, dot, suffix = flat.rpartition(".")
    if not dot:
        stem, suffix = flat, ""
    candidate, n = f"labeled-data/{FALLBACK_VIDEO}/{flat}", 2
    while candidate in used:
        candidate = f"labeled-data/{FALLBACK_VIDEO}/{stem}-{n}{dot}{suffix}"
        n += 1
    return candidate


def _name_individuals(frames: list[_Frame]) -> None:
    """Objects without an individual become individual1, individual2, ... (DeepLabCut's default)."""
    for frame in frames:
        taken = {ind for ind, _ in frame.objects if ind is not None}
        if len(taken) != sum(ind is not None for ind, _ in frame.objects):
            raise FormatFileError(f"cannot write DeepLabCut: {frame.source.name!r} repeats an individual")
        counter = 1
        named: list[tuple[str | None, FloatArray]] = []
        for given, points in frame.objects:
            individual = given
            if individual is None:
                while f"individual{counter}" in taken:
                    counter += 1
                individual = f"individual{counter}"
                taken.add(individual)
            named.append((individual, points))
        frame.objects = named


def _unique_bodyparts(frames: list[_Frame], schema: LabelSchema) -> list[str]:
    """Body parts labeled on the ``single`` individual; animals must not label them too."""
    unique: set[str] = set()
    animal: set[str] = set()
    for frame in frames:
        for ind, points in frame.objects:
            labeled = {schema.keypoints[k] for k in np.flatnonzero(points[:, 2] > 0)}
            (unique if ind == SINGLE else animal).update(labeled)
    clash = unique & animal
    if clash:
        raise FormatFileError(
            f"cannot write DeepLabCut: {', '.join(sorted(clash))} labeled on individual "
            f"{SINGLE!r} and on animals"
        )
    return [k for k in schema.keypoints if k in unique]


def _save_columns(
    schema: LabelSchema, multi: bool, individuals: list[str], unique: list[str]
) -> list[tuple[str | None, int]]:
    """(individual, keypoint index) per x, y pair, in DeepLabCut's column order."""
    index = {name: k for k, name in enumerate(schema.keypoints)}
    if not multi:
        return [(None, k) for k in range(len(schema.keypoints))]
    animal_parts = [k for k in schema.keypoints if k not in unique]
    columns: list[tuple[str | None, int]] = [(ind, index[k]) for ind in individuals for k in animal_parts]
    columns.extend((SINGLE, index[k]) for k in unique)
    return columns


def _csv_text(
    frames: list[_Frame],
    columns: list[tuple[str | None, int]],
    keypoint_names: list[str],
    scorer: str,
    multi: bool,
) -> str:
    """Three index columns and repr floats (exact round trips); unlabeled cells stay empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    pad = ["", ""]
    writer.writerow(["scorer", *pad, *[scorer] * (2 * len(columns))])
    if multi:
        writer.writerow(["individuals", *pad, *[str(ind) for ind, _ in columns for _ in "xy"]])
    writer.writerow(["bodyparts", *pad, *[keypoint_names[k] for _, k in columns for _ in "xy"]])
    writer.writerow(["coords", *pad, *["x", "y"] * len(columns)])
    for frame in frames:
        by_individual = dict(frame.objects)
        cells = []
        for ind, k in columns:
            points = by_individual.get(ind)
            if points is not None and points[k, 2] > 0:
                cells.extend([repr(float(points[k, 0])), repr(float(points[k, 1]))])
            else:
                cells.extend(["", ""])
        writer.writerow([*frame.name.split("/"), *cells])
    return buffer.getvalue()


def _copy_images(frames: list[_Frame], out: Path, source: Path | None) -> list[Path]:
    if source is None:
        return []
    written = []
    for frame in frames:
        path = source / safe_relative_path(frame.source.name)
        if path.is_file():
            target = out / frame.name
            atomic_write_local(str(target), path.read_bytes())
            written.append(target)
    return written


def _config(
    schema: LabelSchema,
    out: Path,
    scorer: str,
    multi: bool,
    individuals: list[str],
    unique: list[str],
    videos: dict[str, list[_Frame]],
) -> dict[str, Any]:
    """A config DeepLabCut can train from: ``video_sets`` names the labeled-data folders."""
    video_sets = {}
    for video, frames in videos.items():
        width = max((f.source.width or 0 for f in frames), default=0) or 640
        height = max((f.source.height or 0 for f in frames), default=0) or 480
        video_sets[str(out.resolve() / "videos" / f"{video}.mp4")] = {"crop": f"0, {width}, 0, {height}"}
    config: dict[str, Any] = {
        "Task": "visionloop",
        "scorer": scorer,
        "date": datetime.now(UTC).strftime("%b%d"),
        "multianimalproject": multi,
        "project_path": str(out.resolve()),
        "video_sets": video_sets,
    }
    if multi:
        config["identity"] = False
        config["individuals"] = individuals
        config["uniquebodyparts"] = unique
        config["multianimalbodyparts"] = [k for k in schema.keypoints if k not in unique]
        config["bodyparts"] = "MULTI!"
    else:
        config["bodyparts"] = list(schema.keypoints)
    config.update(
        {
            "start": 0,
            "stop": 1,
            "numframes2pick": 20,
            "skeleton": [[a, b] for a, b in schema.skeleton],
            "skeleton_color": "black",
            "pcutoff": 0.6,
            "dotsize": 12,
            "alphavalue": 0.7,
            "colormap": "rainbow",
            "TrainingFraction": [0.95],
            "iteration": 0,
            "default_net_type": "resnet_50",
            "default_augmenter": "default",
            "snapshotindex": -1,
            "batch_size": 8,
            "cropping": False,
        }
    )
    return config
