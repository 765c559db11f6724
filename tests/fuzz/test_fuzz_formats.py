"""Every annotation format's loader against hostile files: documents the format wrote itself
with a few fields mutated (wrong types, missing keys, huge or negative numbers, NaN, unicode,
deep nesting), and the same files with their bytes corrupted.

The loader must return a result whose counts add up or raise a project error naming the path,
and write nothing (``load_malformed`` from the format tests checks all three).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson
import yaml
from hypothesis import strategies as st

from formats.checks import load_malformed
from formats.strategies import label_sets
from fuzz.harness import fuzz_test
from fuzz.mutations import mutate_bytes, mutate_text, mutate_tree, mutate_xml
from images import rgb_png
from visionloop.core.schema import TaskType
from visionloop.formats.model import LabelSet
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format


def _json(value: object) -> bytes:
    """The standard library's encoder: unlike orjson it writes integers of any size and NaN."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _mutated(data: st.DataObject, path: Path) -> bytes:
    """The file at ``path`` with a structure-aware mutation chosen by its kind."""
    raw = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _json(mutate_tree(data, orjson.loads(raw)))
    if suffix in (".ndjson", ".manifest", ".jsonl"):
        lines = mutate_tree(data, [orjson.loads(line) for line in raw.splitlines() if line.strip()])
        return b"\n".join(_json(record) for record in (lines if isinstance(lines, list) else [lines])) + b"\n"
    if suffix in (".yaml", ".yml"):
        return yaml.safe_dump(mutate_tree(data, yaml.safe_load(raw)), allow_unicode=True).encode()
    if suffix == ".xml":
        return mutate_xml(data, raw.decode("utf-8")).encode("utf-8", "surrogatepass")
    if suffix in (".txt", ".csv"):
        separator = "," if suffix == ".csv" else " "
        return mutate_text(data, raw.decode("utf-8"), separator).encode("utf-8", "surrogatepass")
    return mutate_bytes(data, raw)


def _load_damaged(
    data: st.DataObject, name: str, task: TaskType, damage: Callable[[st.DataObject, Path], bytes]
) -> None:
    """Save a drawn label set in format ``name``, damage one or more written files, load it back."""
    labels: LabelSet = data.draw(label_sets(task, polygons=task is TaskType.SEGMENTATION), label="labels")
    spec = get_format(name)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "images"
        for image in labels.images:
            (source / image.name).parent.mkdir(parents=True, exist_ok=True)
            (source / image.name).write_bytes(rgb_png(image.width or 16, image.height or 16))
        written = spec.save(labels, root / "out", SaveOptions(image_source=source))
        files = sorted(path for path in written if path.is_file())
        targets = data.draw(st.lists(st.sampled_from(files), min_size=1, max_size=2, unique=True), "files")
        for path in targets:
            path.write_bytes(damage(data, path))
        schema = data.draw(st.sampled_from([None, labels.schema]), label="schema")
        load_malformed(spec, written[0], LoadOptions(schema=schema), watch=root)


def _raw(data: st.DataObject, path: Path) -> bytes:
    raw = path.read_bytes()
    corrupted = st.builds(lambda d: mutate_bytes(d, raw), st.data())
    return data.draw(st.one_of(st.binary(max_size=300), corrupted), label="bytes")


def _harnesses(name: str, tasks: list[TaskType]) -> tuple[Callable[[], None], Callable[[], None]]:
    @fuzz_test()
    def mutated(data: st.DataObject) -> None:
        _load_damaged(data, name, data.draw(st.sampled_from(tasks), label="task"), _mutated)

    @fuzz_test()
    def raw_bytes(data: st.DataObject) -> None:
        _load_damaged(data, name, data.draw(st.sampled_from(tasks), label="task"), _raw)

    return mutated, raw_bytes


_OBJECTS = [TaskType.DETECTION, TaskType.SEGMENTATION, TaskType.KEYPOINTS]
_ALL = [TaskType.CLASSIFICATION, *_OBJECTS]

test_coco_mutated, test_coco_raw_bytes = _harnesses("coco", _OBJECTS)
test_yolo_mutated, test_yolo_raw_bytes = _harnesses("yolo", _ALL)
test_voc_mutated, test_voc_raw_bytes = _harnesses("voc", [TaskType.DETECTION])
test_imagefolder_mutated, test_imagefolder_raw_bytes = _harnesses("imagefolder", [TaskType.CLASSIFICATION])
test_labelstudio_mutated, test_labelstudio_raw_bytes = _harnesses("labelstudio", _ALL)
test_cvat_mutated, test_cvat_raw_bytes = _harnesses("cvat", _ALL)
test_labelbox_mutated, test_labelbox_raw_bytes = _harnesses("labelbox", _ALL)
test_sagemaker_mutated, test_sagemaker_raw_bytes = _harnesses(
    "sagemaker", [TaskType.CLASSIFICATION, TaskType.DETECTION]
)
test_deeplabcut_mutated, test_deeplabcut_raw_bytes = _harnesses("deeplabcut", [TaskType.KEYPOINTS])
