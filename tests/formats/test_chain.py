"""COCO -> Label Studio -> CVAT -> COCO loses nothing that all three formats can express:
image names and sizes, boxes, classes, single-ring polygons, human provenance."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from strategies import assert_label_sets_equal, label_sets

from visionloop.core.schema import TaskType
from visionloop.formats.model import LabelSet
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format

CHAIN = ("coco", "labelstudio", "cvat", "coco")


def _through_chain(labels: LabelSet) -> LabelSet:
    current = labels
    with tempfile.TemporaryDirectory() as tmp:
        for step, name in enumerate(CHAIN):
            spec = get_format(name)
            [path, *_] = spec.save(current, Path(tmp) / f"step{step}-{name}", SaveOptions())
            result = spec.load(path, LoadOptions(schema=labels.schema))
            assert result.rejections == [], (name, result.rejections[:3])
            current = result.labels
    return current


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labels=label_sets(TaskType.DETECTION, min_objects=1))
def test_detection_survives_the_chain(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _through_chain(labels))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labels=label_sets(TaskType.SEGMENTATION, polygons=True, min_objects=1))
def test_polygon_segmentation_survives_the_chain(labels: LabelSet) -> None:
    assert_label_sets_equal(labels, _through_chain(labels))
