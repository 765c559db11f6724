"""Offline first against a real S3-compatible server (moto on 127.0.0.1): captures made while
the endpoint is unreachable wait in the spool, reach the bucket once it answers (at the next
run's start, or through ``edge sync``), and ingest back as items of source ``capture``."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from servers import free_port, make_bucket
from visionloop.cli.app import app
from visionloop.edge.capture import Spool
from visionloop.edge.cli import main as edge_main
from visionloop.edge.runner import EdgeOptions, run_edge
from visionloop.project import Project
from visionloop.project.config import ProjectConfig
from visionloop.storage import Filesystem

pytestmark = pytest.mark.s3


def _objects(prefix: str) -> list[str]:
    return [entry.uri for entry in Filesystem(prefix).list_files()]


def test_offline_captures_reach_the_bucket_and_ingest_back(  # type: ignore[no-untyped-def]
    edge_project, photo_folder: Path, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"vl-edge-{uuid.uuid4().hex[:10]}"
    make_bucket(s3_endpoint, bucket)
    prefix, spool = f"s3://{bucket}/captures", tmp_path / "spool"

    def edge(output: str, **changes: object) -> EdgeOptions:
        base = {"capture_to": prefix, "spool": spool, "capture_below": 1.0, "batch_size": 3, "workers": 1}
        return EdgeOptions(edge_project.model, photo_folder, str(tmp_path / output), **{**base, **changes})  # type: ignore[arg-type]

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing answers there
    offline = run_edge(edge("offline.jsonl"))
    assert offline.predicted == 9 and offline.captured == {"uncertain": 9, "sampled": 0}
    assert (offline.uploaded, offline.pending_upload) == (
        0,
        18,
    ) and "Could not connect" in offline.upload_error
    assert len(Spool(spool, prefix).pending()) == 18

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)  # the server answers now
    online = run_edge(edge("online.jsonl", limit=2))
    assert (online.uploaded, online.pending_upload, online.upload_error) == (18 + 4, 0, "")
    assert Spool(spool, prefix).pending() == []
    stored = _objects(prefix)
    assert len(stored) == 22 and sum(uri.endswith(".prediction.json") for uri in stored) == 11

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    again = run_edge(edge("again.jsonl", limit=1))
    assert again.pending_upload == 2
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    assert edge_main(["sync", "--capture-to", prefix, "--spool", str(spool), "--json"]) == 0
    assert Spool(spool, prefix).pending() == [] and len(_objects(prefix)) == 24

    project = Project.create(
        tmp_path / "fresh", ProjectConfig(name="fresh", labels=edge_project.project.config.labels)
    )
    result = CliRunner().invoke(app, ["-p", str(project.root), "ingest", prefix, "--capture", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # 12 captured image files of 9 distinct photos (the later runs captured two and one again).
    assert (report["seen"], report["added"], report["duplicates"], report["rejected"]) == (12, 9, 3, 0)
    with project.open_catalog() as catalog:
        items = list(catalog.iter_items())
    assert len(items) == 9 and {item.source for item in items} == {"capture"}
    assert all(item.uri.startswith(f"{prefix}/images/") for item in items)
