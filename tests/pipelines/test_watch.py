"""``visionloop watch``: events stored once, schedules by slot, settling files, safe parameters, and
the DeepLabCut upload flow end to end on a real S3 server (issue 7, acceptance 3)."""

from __future__ import annotations

import io
import json
import os
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from servers import make_bucket
from visionloop.cli.app import app
from visionloop.core.errors import ConfigError
from visionloop.core.labels import ObjectLabels
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.model import Annotation, LabeledImage, LabelSet
from visionloop.formats.registry import SaveOptions, get_format
from visionloop.pipelines.events import pending_events, record_event
from visionloop.pipelines.sources import _records, object_occurrences, schedule_occurrence
from visionloop.pipelines.watch import fill_params
from visionloop.project import Project
from visionloop.project.config import ProjectConfig, S3Options, TriggerConfig, dump_config
from visionloop.storage import Filesystem

KEYPOINTS = ["nose", "tail"]
TRAIN = {
    "threads": 1,
    "model": {"family": "heatmap", "image_size": 32},
    "optim": {"batch_size": 4, "epochs": 2},
    "early_stopping": {"patience": None},
}


def _project(root: Path, **config: Any) -> Project:
    schema = LabelSchema(task=TaskType.KEYPOINTS, classes=["animal"], keypoints=KEYPOINTS)
    return Project.create(root / "project", ProjectConfig(name="watch", labels=schema, **config))


def test_an_event_is_stored_once_however_often_it_is_delivered(tmp_path: Path) -> None:
    project = _project(tmp_path)
    with project.open_catalog() as catalog:
        assert record_event(catalog, "dlc", "s3://b/a.zip@1", "new a.zip", {"uri": "s3://b/a.zip"})
        assert not record_event(catalog, "dlc", "s3://b/a.zip@1", "new a.zip", {})
        assert record_event(catalog, "dlc", "s3://b/a.zip@2", "a.zip overwritten", {})  # new content
        assert record_event(catalog, "other", "s3://b/a.zip@1", "another trigger", {})
        assert [event.description for event in pending_events(catalog, "dlc")] == [
            "new a.zip",
            "a.zip overwritten",
        ]


def test_schedule_slots_and_settling_local_files(tmp_path: Path) -> None:
    trigger = TriggerConfig(name="nightly", event="schedule", every_s=3600, pipeline="build")
    assert (
        schedule_occurrence(trigger, now=7200.0).identity
        == schedule_occurrence(trigger, now=10799.0).identity
    )
    assert (
        schedule_occurrence(trigger, now=10800.0).identity
        != schedule_occurrence(trigger, now=7200.0).identity
    )

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "old.zip").write_bytes(b"x")
    (uploads / "notes.txt").write_bytes(b"x")
    os.utime(uploads / "old.zip", (time.time() - 60, time.time() - 60))
    (uploads / "fresh.zip").write_bytes(b"still being written")
    project = _project(tmp_path)
    watching = TriggerConfig(
        name="dlc", event="objects", source=str(uploads), pattern="*.zip", settle_s=10, pipeline="dlc-train"
    )
    found = list(object_occurrences(project, watching))
    assert [o.payload["name"] for o in found] == ["old.zip"]
    assert found[0].payload["stem"] == "old" and found[0].payload["uri"] == str(uploads / "old.zip")


def test_parameters_take_only_plain_event_fields() -> None:
    payload = {"uri": "s3://b/u/m.zip", "stem": "m"}
    assert fill_params({"zip": "{uri}", "n": 3, "train": {"tag": "x-{stem}"}}, payload) == {
        "zip": "s3://b/u/m.zip",
        "n": 3,
        "train": {"tag": "x-m"},
    }
    for bad in ("{uri.__class__}", "{uri[0]}", "{secret}", "{uri!r}"):
        with pytest.raises(ConfigError):
            fill_params({"zip": bad}, payload)


def test_triggers_are_validated() -> None:
    with pytest.raises(ValueError, match="source"):
        TriggerConfig(name="x", event="objects", pipeline="dlc-train")
    with pytest.raises(ValueError, match="every_s"):
        TriggerConfig(name="x", event="schedule", pipeline="build")
    with pytest.raises(ValueError, match="pipeline"):
        TriggerConfig(name="x", event="schedule", every_s=5)


def _dlc_zip(frames: int = 24) -> bytes:
    """A single-animal DeepLabCut project (config.yaml, CollectedData CSV, frames) as a zip."""
    rng = np.random.default_rng(5)
    schema = LabelSchema(task=TaskType.KEYPOINTS, classes=["animal"], keypoints=KEYPOINTS)
    labels = LabelSet(schema)
    with_images = Path(os.environ.get("TMPDIR", "/tmp")) / f"dlc-{uuid.uuid4().hex[:8]}"
    for index in range(frames):
        nose = rng.uniform(8, 24, 2)
        tail = nose + rng.uniform(8, 14, 2)
        name = f"labeled-data/reach/img{index:03d}.png"
        pixels = (rng.random((40, 40, 3)) * 40).astype(np.uint8)
        for (x, y), colour in ((nose, (250, 60, 60)), (tail, (60, 250, 60))):
            pixels[int(y) - 2 : int(y) + 3, int(x) - 2 : int(x) + 3] = colour
        (with_images / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(with_images / name)
        points = np.array([[[nose[0], nose[1], 2.0], [tail[0], tail[1], 2.0]]])
        box = np.array([[nose[0], nose[1], tail[0], tail[1]]])
        label = ObjectLabels(boxes=box, class_names=("animal",), keypoints=points)
        labels.images.append(LabeledImage(name, 40, 40, [Annotation(label, Provenance.human("dlc"))]))
    project = with_images / "project"
    get_format("deeplabcut").save(labels, project, SaveOptions(image_source=with_images))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as handle:
        for path in sorted(project.rglob("*")):
            if path.is_file():
                handle.write(path, f"reach-mouse/{path.relative_to(project).as_posix()}")
    return out.getvalue()


@pytest.mark.slow
@pytest.mark.s3
@pytest.mark.parametrize("delivery", ["polling", "queue"])
def test_a_deeplabcut_zip_uploaded_to_s3_trains_and_lands_next_to_it(
    tmp_path: Path, s3_endpoint: str, delivery: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    bucket = f"vl-dlc-{uuid.uuid4().hex[:8]}"
    make_bucket(s3_endpoint, bucket)
    trigger: dict[str, Any] = {
        "name": "dlc",
        "event": "objects",
        "source": f"s3://{bucket}/uploads",
        "pattern": "*.zip",
        "pipeline": "dlc-train",
        "params": {"zip": "{uri}", "train": TRAIN},
    }
    if delivery == "queue":
        trigger["queue"] = _queue_for(s3_endpoint, bucket)
    project = _project(tmp_path, s3=S3Options(endpoint_url=s3_endpoint), triggers=[TriggerConfig(**trigger)])
    (project.root / "visionloop.yaml").write_text(dump_config(project.config))
    storage = Filesystem(f"s3://{bucket}", {"endpoint_url": s3_endpoint})
    storage.fs.pipe_file(f"{bucket}/uploads/reach-mouse.zip", _dlc_zip())

    runner = CliRunner()
    first = runner.invoke(app, ["-p", str(project.root), "watch", "--once", "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["events"] == 1 and [run["status"] for run in report["runs"]] == ["succeeded"], report

    out = f"{bucket}/uploads/reach-mouse.visionloop"
    names = sorted(path.rsplit("/", 1)[-1] for path in storage.fs.find(out))
    assert {"evaluation.json", "model.onnx", "model.safetensors"} <= set(names), names
    evaluation = json.loads(storage.fs.cat_file(f"{out}/evaluation.json"))
    assert evaluation["zip"] == f"s3://{bucket}/uploads/reach-mouse.zip"
    assert evaluation["metrics"] and len(evaluation["onnx_sha256"]) == 64, evaluation
    with project.open_catalog() as catalog:
        [run] = catalog.list_runs(kind="pipeline")
        assert run.status == "succeeded" and run.config["pipeline"] == "dlc-train"

    again = runner.invoke(app, ["-p", str(project.root), "watch", "--once", "--json"])
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert second["events"] == 0 and second["runs"] == []  # the outputs and the same zip start nothing
    with project.open_catalog() as catalog:
        assert len(catalog.list_runs(kind="pipeline")) == 1


def _queue_for(endpoint: str, bucket: str) -> str:
    """An SQS queue on the moto server that receives the bucket's ObjectCreated notifications."""
    import botocore.session

    session = botocore.session.get_session()
    options = {"region_name": "us-east-1", "endpoint_url": endpoint}
    sqs = session.create_client("sqs", **options)
    url: str = sqs.create_queue(QueueName=f"{bucket}-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3 = session.create_client("s3", **options)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return url


def test_queue_messages_that_are_not_events_are_skipped() -> None:
    """Found by fuzzing: a deeply nested body (RecursionError) or a
    "Records" that is not a list (TypeError) escaped into the trigger loop."""
    event = {"Records": [{"s3": {"object": {"key": "a.jpg"}}}, "not a record"]}
    assert _records(json.dumps({"Message": json.dumps(event)})) == [event["Records"][0]]
    for body in ("[" * 100_000, "not json", "[1, 2]", '{"Records": 5}'):
        assert _records(body) == []
