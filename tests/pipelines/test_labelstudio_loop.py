"""The whole loop against a real Label Studio and a real S3 server (issue 7, acceptance 1).

1,040 images in a bucket; 40 carry human labels to start from. ``model-assisted-labeling``
pre-labels the other 1,000 and pushes them all to Label Studio as tasks with predictions (S3
images as presigned URLs). People annotate 30 of them through Label Studio's API; ``labelstudio
sync`` pulls them back as human labels with their annotator, the policy (after 25 new labels)
retrains exactly once, and the retraining's push sends the new predictions without creating a
single duplicate task. A second sync finds nothing new and does not train.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from servers import LabelStudio, make_bucket
from visionloop.core.labels import ClassLabel
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.ingest import ingest
from visionloop.pipelines.named import get_pipeline
from visionloop.pipelines.runner import run_pipeline
from visionloop.pipelines.steps import project_ingest_options
from visionloop.pipelines.sync import sync_labelstudio
from visionloop.project import Project
from visionloop.project.config import ProjectConfig, RetrainPolicy, S3Options
from visionloop.storage import Filesystem

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio, pytest.mark.s3]

POOL, SEED_LABELS, ANNOTATED = 1000, 40, 30
TRAIN = {
    "threads": 1,
    "model": {"image_size": 32},
    "optim": {"batch_size": 16, "epochs": 1},
    "early_stopping": {"patience": None},
}
CLASSES = ["left", "right"]


def _image(index: int, rng: np.random.Generator) -> tuple[bytes, str]:
    name = CLASSES[index % 2]
    pixels = (rng.random((24, 24, 3)) * 80).astype(np.uint8)
    if name == "left":
        pixels[:, :12] = 220
    else:
        pixels[:, 12:] = 220
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue(), name


def _upload(endpoint: str, bucket: str) -> dict[str, str]:
    """Every image into the bucket in one concurrent upload; returns uri -> true class."""
    rng = np.random.default_rng(0)
    blobs: dict[str, bytes] = {}
    truth: dict[str, str] = {}
    for index in range(POOL + SEED_LABELS):
        data, name = _image(index, rng)
        key = f"{bucket}/images/img_{index:04d}.png"
        blobs[key], truth[f"s3://{key}"] = data, name
    Filesystem(f"s3://{bucket}", {"endpoint_url": endpoint}).fs.pipe(blobs)
    return truth


def _tasks(server: LabelStudio, title: str) -> list[dict[str, Any]]:
    with _client(server) as client:
        projects = client.get("/api/projects", params={"title": title, "page_size": 100}).json()["results"]
        [project] = [p for p in projects if p["title"] == title]
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = client.get(
                "/api/tasks",
                params={"project": project["id"], "fields": "all", "page": page, "page_size": 500},
            )
            if answer.status_code == 404:
                break
            batch = answer.json()["tasks"]
            found += batch
            if len(batch) < 500:
                break
            page += 1
        return found


def _client(server: LabelStudio) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Token {server.token}"}, timeout=60, trust_env=False
    )


def _annotate(server: LabelStudio, tasks: list[dict[str, Any]], truth: dict[int, str]) -> None:
    """What annotators do in the UI, through the same API: one choice per task."""
    with _client(server) as client:
        for task in tasks:
            item = int(task["data"]["visionloop_item"])
            result = [
                {
                    "from_name": "choice",
                    "to_name": "image",
                    "type": "choices",
                    "value": {"choices": [truth[item]]},
                }
            ]
            answer = client.post(f"/api/tasks/{task['id']}/annotations/", json={"result": result})
            assert answer.status_code == 201, answer.text


def test_push_annotate_pull_retrain_once_push_again(
    tmp_path: Path, label_studio: LabelStudio, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    bucket = f"vl-loop-{uuid.uuid4().hex[:8]}"
    make_bucket(s3_endpoint, bucket)
    truth_by_uri = _upload(s3_endpoint, bucket)
    title = f"loop {tmp_path.name}"
    config = ProjectConfig(
        name="loop",
        labels=LabelSchema(task=TaskType.CLASSIFICATION, classes=CLASSES),
        s3=S3Options(endpoint_url=s3_endpoint),
        retrain=RetrainPolicy(after_labels=25),
        pipelines={
            "model-assisted-labeling": {"train": TRAIN, "budget": POOL, "workers": 0, "batch_size": 64}
        },
    )
    config.labelstudio.url = label_studio.url
    config.labelstudio.project_title = title
    project = Project.create(tmp_path / "project", config)

    # Ingest the bucket, then give 40 items their human labels (the model's first training set).
    with project.open_catalog() as catalog:
        source = project.filesystem_for(f"s3://{bucket}/images")
        assert ingest(catalog, source, project_ingest_options(project, workers=2)).added == POOL + SEED_LABELS
        items = {item.uri: item.id for item in catalog.iter_items()}
        truth = {items[uri]: name for uri, name in truth_by_uri.items()}
        seed = sorted(truth)[:SEED_LABELS]
        for split, chunk in (("train", seed[:30]), ("val", seed[30:])):
            catalog.assign_split(chunk, split)
        catalog.assign_split(sorted(truth)[SEED_LABELS:], "train")
        catalog.add_annotations([(item, ClassLabel(truth[item]), Provenance.human("seed")) for item in seed])

    # Pre-label the pool and push all 1,000 tasks with predictions.
    pushed = run_pipeline(project, get_pipeline("model-assisted-labeling"), {})
    assert pushed.status == "succeeded", pushed.to_dict()
    tasks = _tasks(label_studio, title)
    assert len(tasks) == POOL
    assert {int(t["data"]["visionloop_item"]) for t in tasks} == set(sorted(truth)[SEED_LABELS:])
    first_version = pushed.outputs["prelabel"]["model_version"]
    assert all(
        len(t["predictions"]) == 1 and t["predictions"][0]["model_version"] == first_version for t in tasks
    )
    assert all(t["data"]["image"].startswith("http") and "Signature" in t["data"]["image"] for t in tasks)

    # Annotators label 30 tasks; a sync pulls them, retrains once and pushes again.
    _annotate(label_studio, tasks[:ANNOTATED], truth)
    synced = sync_labelstudio(project)
    assert synced.decision["due"] and synced.pipeline_status == "succeeded", synced.to_dict()
    with project.open_catalog() as catalog:
        current = catalog.current_annotations()
        humans = [a for a in current.values() if a.provenance.kind is ProvenanceKind.HUMAN]
        assert len(humans) == SEED_LABELS + ANNOTATED
        pulled = {a.item_id for a in humans if a.provenance.annotator != "seed"}
        assert pulled == {int(t["data"]["visionloop_item"]) for t in tasks[:ANNOTATED]}
        assert all(current[item].label == ClassLabel(truth[item]) for item in pulled)
        assert len(catalog.child_runs(synced.pipeline_run or "", "train")) == 1

    after = _tasks(label_studio, title)
    assert len(after) == POOL, "the second push created duplicate tasks"
    assert len({t["data"]["visionloop_item"] for t in after}) == POOL
    second_version = synced.outputs["prelabel"]["model_version"]
    assert second_version != first_version
    waiting = [t for t in after if not t["annotations"]]
    assert len(waiting) == POOL - ANNOTATED
    assert all(second_version in {p["model_version"] for p in t["predictions"]} for t in waiting)

    again = sync_labelstudio(project)
    assert not again.decision["due"] and again.pipeline_run is None
    assert len(_tasks(label_studio, title)) == POOL
