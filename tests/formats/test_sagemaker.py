"""SageMaker Ground Truth manifests: round trips with human and machine labels, line rejections."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from checks import load_malformed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import assert_label_sets_equal, label_sets

from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats import sagemaker
from visionloop.formats.model import LabelSet
from visionloop.formats.registry import LoadOptions, SaveOptions, get_format

SAGEMAKER = get_format("sagemaker")
ROUND_TRIP = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DETECTION = LabelSchema(task=TaskType.DETECTION, classes=["bird", "cat"])


def _round_trip(labels: LabelSet) -> LabelSet:
    """Ground truth and machine labels go to two manifests; both load back into one set."""
    options = LoadOptions(schema=labels.schema)
    with tempfile.TemporaryDirectory() as tmp:
        [truth] = SAGEMAKER.save(labels, Path(tmp) / "truth.manifest", SaveOptions())
        [machine] = SAGEMAKER.save(labels, Path(tmp) / "machine.manifest", SaveOptions(predictions=True))
        result = SAGEMAKER.load(truth, options)
        predicted = SAGEMAKER.load(machine, options)
        for part in (result, predicted):
            assert part.rejections == [], part.rejections
            assert part.imported == part.records
        for image in predicted.labels.images:
            result.labels.image(image.name).annotations.extend(image.annotations)
        return result.labels


@ROUND_TRIP
@given(labels=label_sets(TaskType.CLASSIFICATION, predictions=True))
def test_classification_round_trip_human_and_model(labels: LabelSet) -> None:
    back = _round_trip(labels)
    assert_label_sets_equal(labels, back)
    for image in back.images:
        kinds = {a.provenance.kind for a in image.annotations}
        assert kinds == {ProvenanceKind.HUMAN, ProvenanceKind.MODEL}
        for annotation in image.annotations:
            if annotation.provenance.kind is ProvenanceKind.MODEL:
                assert annotation.provenance.model_version == "m-1"
                assert isinstance(annotation.label, ClassLabel) and annotation.label.score is not None
            else:
                assert annotation.provenance.annotator == "sagemaker:tester"


@ROUND_TRIP
@given(labels=label_sets(TaskType.DETECTION, predictions=True))
def test_detection_round_trip_human_and_model(labels: LabelSet) -> None:
    back = _round_trip(labels)
    assert_label_sets_equal(labels, back)
    for image in labels.images:
        got = back.image(image.name)
        assert (got.width, got.height) == (image.width, image.height)


def _record(value: Any, metadata: dict[str, Any], source: str = "s3://bucket/imgs/a.jpg") -> dict[str, Any]:
    return {"source-ref": source, "boxes": value, "boxes-metadata": metadata}


def _detection(annotations: list[Any], **metadata: Any) -> dict[str, Any]:
    meta = {
        "class-map": {"0": "bird", "1": "cat"},
        "human-annotated": "yes",
        "type": "groundtruth/object-detection",
        "job-name": "labeling-job/birds",
        "creation-date": "2024-01-01T00:00:00.000000",
        **metadata,
    }
    return _record(
        {"annotations": annotations, "image_size": [{"width": 100, "height": 50, "depth": 3}]}, meta
    )


BOX = {"class_id": 0, "left": 10, "top": 5, "width": 20, "height": 10}


def test_reads_a_ground_truth_line_exactly(tmp_path: Path) -> None:
    machine = _detection([BOX, {**BOX, "class_id": 1}], **{"human-annotated": "no"})
    machine["boxes-metadata"]["objects"] = [{"confidence": 0.9}, {"confidence": 0.5}]
    path = tmp_path / "output.manifest"
    path.write_text("\n".join(json.dumps(r) for r in (_detection([BOX]), machine)))
    result = SAGEMAKER.load(path, LoadOptions())
    assert result.rejections == [] and result.records == 2
    image = result.labels.image("imgs/a.jpg")
    assert (image.width, image.height) == (100, 50)
    human, model = image.annotations
    assert human.provenance == Provenance.human("sagemaker:labeling-job/birds")
    assert model.provenance.kind is ProvenanceKind.MODEL
    assert model.provenance.model_version == "labeling-job/birds"
    assert model.provenance.score == pytest.approx(0.7)
    assert isinstance(model.label, ObjectLabels) and model.label.class_names == ("bird", "cat")
    assert model.label.boxes.tolist() == [[10, 5, 30, 15], [10, 5, 30, 15]]
    assert model.label.scores is not None and model.label.scores.tolist() == [0.9, 0.5]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (_detection([{**BOX, "width": -1}]), "zero or negative size"),
        (_detection([{**BOX, "left": 95}]), "outside the 100x50 image"),
        (_detection([{**BOX, "class_id": 7}]), "class_id 7 is not in the class-map"),
        (_detection([{**BOX, "top": "5"}]), "finite numbers"),
        (_detection([BOX], objects=[{"confidence": 0.5}, {"confidence": 0.5}]), "one confidence per"),
        (_detection([BOX], objects=[{"confidence": 1.5}]), "within [0, 1]"),
        (_detection([BOX], **{"human-annotated": "maybe"}), "'human-annotated'"),
        (_detection([BOX], type="groundtruth/semantic-segmentation"), "needs type"),
        (_detection([BOX], **{"class-map": {"0": "zebra"}}), "unknown class 'zebra'"),
        (_detection([BOX], **{"class-map": {"0": "a,b"}}), "invalid name 'a,b'"),
        ({**_detection([BOX]), "source-ref": "s3://bucket/../../etc/passwd"}, "'..'"),
        ({**_detection([BOX]), "source-ref": "https://example.com/a.jpg"}, "only s3://"),
        ({**_detection([BOX]), "source-ref": "s3://bucket-only"}, "s3://bucket/key"),
        ({"source-ref": "s3://b/a.jpg"}, "exactly one label attribute"),
        ({**_detection([BOX]), "other": 1, "other-metadata": {}}, "exactly one label attribute"),
        (
            _record(3, {"class-name": "cat", "type": "groundtruth/image-classification"}),
            "classification label",
        ),
        (_record("bird", {}), "must be a class id"),
        ({**_detection([BOX]), "boxes-metadata": "x"}, "must be an object"),
    ],
)
def test_bad_lines_are_rejected_with_line_and_reason(tmp_path: Path, record: Any, reason: str) -> None:
    path = tmp_path / "bad.manifest"
    path.write_text("\n".join([json.dumps(_detection([BOX])), "", json.dumps(record)]))
    result = SAGEMAKER.load(path, LoadOptions(schema=DETECTION))
    assert result.records == 2 and result.imported == 1
    [rejection] = result.rejections
    assert (rejection.file, rejection.locator) == (str(path), "line 3")
    assert reason in rejection.reason


def test_classification_lines_and_an_explicit_attribute(tmp_path: Path) -> None:
    meta = {"class-name": "cat", "confidence": 0.8, "human-annotated": "no", "job-name": "auto"}
    line = {
        "source-ref": "plain/x.png",
        "a": 1,
        "a-metadata": meta,
        "b": 0,
        "b-metadata": {"class-name": "dog"},
    }
    path = tmp_path / "cls.manifest"
    path.write_text(json.dumps(line))
    ambiguous = SAGEMAKER.load(path, LoadOptions())
    assert "found a, b" in ambiguous.rejections[0].reason
    result = sagemaker.load(path, LoadOptions(), attribute="a")
    [annotation] = result.labels.image("plain/x.png").annotations
    assert annotation.label == ClassLabel("cat", 0.8)
    assert annotation.provenance == Provenance.model("auto", 0.8)
    assert result.labels.schema == LabelSchema(task=TaskType.CLASSIFICATION, classes=["cat"])


def malformed_inputs(folder: Path) -> list[Path]:
    """Distinct broken or hostile manifests; each must end as rejections, never a crash."""
    good = json.dumps(_detection([BOX]))
    texts: dict[str, bytes] = {
        "empty.manifest": b"",
        "binary.manifest": b"\xff\xfe\x00garbage",
        "array.manifest": b"[1, 2]\n",
        "string.manifest": b'"s3://b/a.jpg"\n',
        "truncated.manifest": good[:40].encode(),
        "nested.manifest": ("{" + '"a":{' * 50_000 + "}" * 50_001).encode(),
        "nan_box.manifest": json.dumps(_detection([{**BOX, "left": float("inf")}])).encode(),
        "annotations_not_list.manifest": json.dumps(_detection({"a": 1})).encode(),  # type: ignore[arg-type]
        "bool_class.manifest": json.dumps(_record(True, {"class-name": "cat"})).encode(),
        "absolute.manifest": json.dumps({**_detection([BOX]), "source-ref": "/etc/passwd"}).encode(),
        "encoded_traversal.manifest": json.dumps(
            {**_detection([BOX]), "source-ref": "s3://b/%2e%2e/x"}
        ).encode(),
        "image_size_bad.manifest": json.dumps(
            _record({"annotations": [], "image_size": [{"width": 0, "height": -1}]}, {})
        ).encode(),
        "class_map_list.manifest": json.dumps(_detection([BOX], **{"class-map": ["bird"]})).encode(),
        "objects_not_dicts.manifest": json.dumps(_detection([BOX], objects=["x"])).encode(),
        "comma_class.manifest": json.dumps(_record(0, {"class-name": "a,b"})).encode(),
        "no_source.manifest": json.dumps({"boxes": 0, "boxes-metadata": {"class-name": "x"}}).encode(),
    }
    paths = []
    for name, data in texts.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    (folder / "dir.manifest").mkdir()
    return [*paths, folder / "dir.manifest", folder / "missing.manifest"]


@pytest.mark.parametrize("index", range(18))
@pytest.mark.parametrize("schema", [None, DETECTION], ids=["inferred", "detection"])
def test_malformed_inputs_never_crash(tmp_path: Path, index: int, schema: LabelSchema | None) -> None:
    inputs = malformed_inputs(tmp_path)
    assert len(inputs) >= 12 and len({p.name for p in inputs}) == len(inputs)
    path = inputs[index]
    result = load_malformed(SAGEMAKER, path, LoadOptions(schema=schema), watch=tmp_path)
    if result is None:
        return
    assert all(r.file == str(path) and r.locator and r.reason for r in result.rejections)
    assert result.imported + len(result.rejections) == result.records
    if path.name != "empty.manifest":
        assert result.rejections, path.name


@given(st.text(max_size=200))
@settings(max_examples=50, deadline=None)
def test_arbitrary_text_never_crashes(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.manifest"
        path.write_text(text, encoding="utf-8")
        result = SAGEMAKER.load(path, LoadOptions())
        assert result.imported + len(result.rejections) == result.records
