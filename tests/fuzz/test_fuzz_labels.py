"""Label payloads as the catalog stores them (``label_from_dict``), COCO RLE masks and Label
Studio brush strokes, decoded from mutated valid values and from arbitrary ones."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from formats.strategies import object_labels, schemas
from fuzz.harness import fuzz_test, returns_or_refuses
from fuzz.mutations import mutate_tree, odd_numbers, odd_values
from visionloop.core.labels import ClassLabel, ObjectLabels, label_from_dict
from visionloop.core.schema import TaskType, parse_skeleton
from visionloop.formats import ls_brush
from visionloop.formats.masks import rle_compress, rle_decode, rle_encode

# These decoders take microseconds: many more examples than a format load, in the same time.
CHEAP = 5.0
_LABEL_KEYS = [
    "type",
    "class_name",
    "score",
    "probabilities",
    "boxes",
    "class_names",
    "scores",
    "masks",
    "keypoints",
    "polygons",
    "attributes",
    "keypoint_scores",
    "extra",
]


def _valid_label(data: st.DataObject) -> dict[str, Any]:
    task = data.draw(st.sampled_from(list(TaskType)), label="task")
    schema = data.draw(schemas(task), label="schema")
    if task is TaskType.CLASSIFICATION:
        score = data.draw(st.none() | st.floats(0, 1), label="score")
        return ClassLabel(schema.classes[0], score, (0.25, 0.75) if score else None).to_dict()
    segments = task is TaskType.SEGMENTATION
    label: ObjectLabels = data.draw(
        object_labels(schema, 32, 24, polygons=segments, masks=segments, scores=True), label="label"
    )
    return label.to_dict()


@fuzz_test(scale=CHEAP)
def test_label_from_dict_mutated(data: st.DataObject) -> None:
    """A label a tool wrote, with fields of the wrong type, missing or absurd."""
    payload = mutate_tree(data, _valid_label(data))
    if not isinstance(payload, dict):  # the catalog only stores objects
        payload = {"type": "objects", "boxes": payload}
    label = returns_or_refuses(label_from_dict, payload)
    if label is not None:  # what was accepted must store and load again
        assert type(label_from_dict(label.to_dict())) is type(label)


@fuzz_test(scale=CHEAP)
def test_label_from_dict_arbitrary(data: st.DataObject) -> None:
    """Every field drawn at random; the array fields as nested lists of edge numbers."""
    numbers = st.recursive(odd_numbers(), lambda inner: st.lists(inner, max_size=4), max_leaves=12)
    kind = data.draw(st.sampled_from(["class", "objects", None, 1]), label="type")
    arrays = ["probabilities", "score"] if kind == "class" else ["boxes", "scores", "keypoints", "polygons"]
    payload: dict[str, Any] = {"type": kind, "class_name": "cat", "class_names": ["cat"]}
    payload |= data.draw(st.dictionaries(st.sampled_from(arrays), numbers, max_size=3), label="arrays")
    payload |= data.draw(st.dictionaries(st.sampled_from(_LABEL_KEYS), odd_values(), max_size=3), "others")
    returns_or_refuses(label_from_dict, payload)


def _rle(data: st.DataObject) -> Any:
    height, width = data.draw(st.integers(0, 12), label="h"), data.draw(st.integers(0, 12), label="w")
    mask = data.draw(st.lists(st.booleans(), min_size=height * width, max_size=height * width), "mask")
    rle = rle_encode(np.array(mask, dtype=bool).reshape(height, width))
    if data.draw(st.booleans(), label="compressed") and height and width:
        rle = rle_compress(rle)
    return mutate_tree(data, rle) if data.draw(st.booleans(), label="mutate") else rle


@fuzz_test(scale=CHEAP)
def test_rle_decode(data: st.DataObject) -> None:
    """Valid masks decode exactly to their size; mutated ones (odd sizes, counts, strings) are
    refused with a reason."""
    rle = _rle(data)
    if not isinstance(rle, dict):
        rle = {"size": [2, 2], "counts": rle}
    if data.draw(st.booleans(), label="raw counts"):
        rle["counts"] = data.draw(st.text(max_size=20) | st.binary(max_size=20), label="counts")
    mask = returns_or_refuses(rle_decode, rle)
    if mask is not None:
        assert mask.dtype == bool and list(mask.shape) == list(rle["size"])


@fuzz_test(scale=CHEAP)
def test_label_studio_brush_decode(data: st.DataObject) -> None:
    """Brush strokes come from Label Studio JSON; ``decode`` promises ``ValueError`` for bad ones
    (its callers turn that into a rejection naming the region)."""
    height, width = data.draw(st.integers(1, 10), label="h"), data.draw(st.integers(1, 10), label="w")
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=height * width, max_size=height * width)))
    stream: Any = ls_brush.encode(mask.reshape(height, width))
    stream = data.draw(
        st.sampled_from(["keep", "mutate", "arbitrary"]).flatmap(
            lambda how: (
                st.just(stream)
                if how == "keep"
                else st.lists(st.integers(-2, 300), max_size=40)
                if how == "arbitrary"
                else st.builds(lambda d: mutate_tree(d, stream), st.data())
            )
        ),
        label="stream",
    )
    size = data.draw(st.sampled_from([(height, width), (width, height), (0, 5), (1 << 20, 1 << 20)]), "size")
    try:
        decoded = ls_brush.decode(stream, *size)
    except ValueError as exc:
        assert str(exc)
        return
    assert decoded.shape == size


@fuzz_test(scale=CHEAP)
def test_parse_skeleton(data: st.DataObject) -> None:
    """``--skeleton`` text; ``ValueError`` is its contract (the CLI reports it as a bad option)."""
    keypoints = ["nose", "left_eye", "tail"]
    text = data.draw(
        st.text(alphabet=st.sampled_from("0123456789-, ²١nosetail_"), max_size=20) | st.text(max_size=20),
        label="text",
    )
    try:
        edges = parse_skeleton(text, keypoints)
    except ValueError as exc:
        assert str(exc)
        return
    assert all(a in keypoints and b in keypoints for a, b in edges)
