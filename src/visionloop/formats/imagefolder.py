"""ImageFolder (torchvision style) classification: ``root/<class>/<any/sub/path>/<image>``.

There are no coordinates. Each image file is one record; its name in the label set is its POSIX
path relative to the root *including* the class folder (``cat/001.jpg``), because real datasets
reuse basenames across classes (``cat/1.jpg``, ``dog/1.jpg``). Image sizes come from the file
header only (no decoding), in the orientation after EXIF transpose: orientations 5-8 swap
width and height.

Export copies the images into ``<out>/<class>/<name>``, leaving out the class folder when the
name already starts with it, so a loaded dataset saves back to the very same layout. Every
class gets a folder (empty when no image has it), since folders are the class list.

The helpers for header-only image sizes, safe folder walks and class folders live here and are
shared with the YOLO classification layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from visionloop.core.errors import ConfigError, UnsafePathError
from visionloop.core.labels import ClassLabel
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.common import human_provenance, labels_to_save
from visionloop.formats.images import copy_file, source_image, walk_files
from visionloop.formats.model import Annotation, ImportResult, LabeledImage, LabelSet, Rejection
from visionloop.formats.registry import LoadOptions, SaveOptions
from visionloop.formats.validate import name_problem
from visionloop.imaging import ImageRejected, read_image_size
from visionloop.storage import safe_relative_path


def class_target(name: str, class_name: str) -> str:
    """Where an image goes in a class-folder layout: ``<class>/<name>``, or ``name`` itself when
    it already starts with that class folder (a loaded ImageFolder name), so layouts round-trip."""
    if name.startswith(class_name + "/"):
        return name
    return f"{class_name}/{name}"


def class_name_problem(name: str) -> str | None:
    """Why a folder name cannot be a class name (the schema's rules), or None."""
    problem = name_problem(name)
    return f"folder {name!r} is not a valid class name: {problem}" if problem else None


@dataclass
class ClassScan:
    """What a walk of class folders found: images with their class, the classes seen, records."""

    images: list[LabeledImage] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    records: int = 0
    rejections: list[Rejection] = field(default_factory=list)


def scan_class_folders(
    root: Path, base: Path, allowed: list[str] | None, provenance: Provenance, scan: ClassScan
) -> None:
    """Add every file under ``base/<class>/`` to ``scan`` as an image of that class (a record).

    Names are relative to ``root``. ``allowed`` (a schema's or data.yaml's classes) rejects other
    folders' images; without it every validly named folder is a class.
    """
    entries = sorted(p for p in base.iterdir() if not p.name.startswith("."))
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            _scan_class(root, entry, allowed, provenance, scan)
        else:
            scan.records += 1
            reason = (
                "symbolic link to a folder is not followed"
                if entry.is_symlink() and entry.is_dir()
                else "file is not inside a class folder"
            )
            scan.rejections.append(Rejection(str(entry), "image", reason))


def _scan_class(
    root: Path, folder: Path, allowed: list[str] | None, provenance: Provenance, scan: ClassScan
) -> None:
    class_name = folder.name
    problem = class_name_problem(class_name)
    if problem is None and allowed is not None and class_name not in allowed:
        problem = f"unknown class {class_name!r}; known classes: {', '.join(allowed)}"
    if problem is None and class_name not in scan.classes:
        scan.classes.append(class_name)
    for file in walk_files(folder):
        scan.records += 1
        try:
            if problem is not None:
                raise ImageRejected(problem)
            name = safe_relative_path(file.relative_to(root).as_posix())
            width, height = read_image_size(file)
        except (ImageRejected, UnsafePathError) as exc:
            scan.rejections.append(Rejection(str(file), "image", str(exc)))
            continue
        image = LabeledImage(name, width, height, [Annotation(ClassLabel(class_name), provenance)])
        scan.images.append(image)


def load(path: Path, options: LoadOptions) -> ImportResult:
    """Read ``path/<class>/...``; every file is a record, non-images are rejected."""
    if not path.is_dir():
        reason = f"{path}: not a folder (ImageFolder datasets are a folder of class folders)"
        return ImportResult(LabelSet(options.schema), 1, [Rejection(str(path), "/", reason)])
    allowed = list(options.schema.classes) if options.schema is not None else None
    scan = ClassScan()
    scan_class_folders(path, path, allowed, human_provenance(path, options.provenance), scan)
    schema = options.schema
    if schema is None and scan.classes:
        schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=sorted(scan.classes))
    return ImportResult(LabelSet(schema, scan.images), scan.records, scan.rejections)


# -- saving ---------------------------------------------------------------------------------
def chosen_class(image: LabeledImage, predictions: bool) -> str | None:
    """The class an export files an image under: the ground truth, or the top-scoring model
    prediction for a predictions export (folders cannot hold the scores)."""
    labels = [a for a in labels_to_save(image, predictions) if isinstance(a.label, ClassLabel)]
    if not labels:
        return None
    if predictions:
        best = max(labels, key=_score)
        return best.label.class_name if isinstance(best.label, ClassLabel) else None
    label = labels[-1].label
    return label.class_name if isinstance(label, ClassLabel) else None


def _score(annotation: Annotation) -> float:
    if isinstance(annotation.label, ClassLabel) and annotation.label.score is not None:
        return annotation.label.score
    return annotation.provenance.score if annotation.provenance.score is not None else 0.0


def class_folder_plan(
    labels: LabelSet, image_source: Path, predictions: bool, target_for: Callable[[str, str], str]
) -> dict[str, Path]:
    """Target path (relative) -> source file for every image with a class.

    Checked completely before anything is written: unsafe names, missing sources and two
    images landing on one path are errors.
    """
    plan: dict[str, Path] = {}
    for image in sorted(labels.images, key=lambda item: item.name):
        class_name = chosen_class(image, predictions)
        if class_name is None:
            continue
        name = safe_relative_path(image.name)
        target = target_for(name, class_name)
        if target in plan:
            raise ConfigError(f"two images would be written to {target!r}; rename one of them")
        plan[target] = source_image(image_source, name)
    return plan


def save(labels: LabelSet, out: Path, options: SaveOptions) -> list[Path]:
    schema = labels.schema
    assert schema is not None  # noqa: S101 - FormatSpec.save checked it
    if options.image_source is None:
        raise ConfigError(
            "ImageFolder export needs the images: pass the folder holding them as image_source "
            "(the layout is the images themselves, sorted into one folder per class)"
        )
    plan = class_folder_plan(labels, options.image_source, options.predictions, class_target)
    for class_name in schema.classes:
        (out / class_name).mkdir(parents=True, exist_ok=True)
    written = []
    for target, source in plan.items():
        path = out / target
        copy_file(source, path)
        written.append(path)
    return written
