"""Captures: which items go (uncertain, a seeded sample), what is written (the image as it was
plus a sidecar), where (never outside the prefix), and that nothing leaves the spool before
its upload succeeded; a captured local prefix ingests back as items of source ``capture``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from visionloop.cli.app import app
from visionloop.core.errors import ConfigError, StorageError
from visionloop.core.labels import ClassLabel
from visionloop.edge.capture import CapturePolicy, Capturer, Spool, open_destination
from visionloop.edge.runner import EdgeOptions, run_edge
from visionloop.project import Project
from visionloop.project.config import ProjectConfig
from visionloop.storage import Filesystem

LABEL = ClassLabel("cat", score=0.3, probabilities=(0.3, 0.7))


class FlakyTarget(Filesystem):
    """A local destination whose first ``failures`` writes fail, as an unreachable server's do."""

    def __init__(self, url: str, failures: int) -> None:
        super().__init__(url)
        self.failures = failures

    def write_bytes(self, name: str, data: bytes) -> str:
        if self.failures > 0:
            self.failures -= 1
            raise StorageError(f"{self.url}: connection refused")
        return super().write_bytes(name, data)


def _files(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def test_the_policy_takes_the_uncertain_and_a_seeded_sample() -> None:
    scores = np.random.default_rng(0).random(400)
    policy = CapturePolicy(below=0.2, sample=0.25, seed=3)
    reasons = [policy.reason(float(score)) for score in scores]
    assert all(
        (reason == "uncertain") == (score < 0.2) for reason, score in zip(reasons, scores, strict=True)
    )
    sampled = reasons.count("sampled") / sum(score >= 0.2 for score in scores)
    assert 0.18 < sampled < 0.32
    again = CapturePolicy(below=0.2, sample=0.25, seed=3)
    assert [again.reason(float(score)) for score in scores] == reasons
    with pytest.raises(ConfigError, match="--sample"):
        CapturePolicy(sample=1.5)


def test_capture_names_never_leave_the_prefix(tmp_path: Path) -> None:
    spool = Spool.open(str(tmp_path / "dest"), tmp_path / "spool")
    capturer = Capturer(spool, open_destination(str(tmp_path / "dest")), "run:abc")
    for source in ("../../../etc/passwd", "/abs/a b?*.jpg", "..", "C:\\x\\..\\y.png", "\x00.jpg", ""):
        name = capturer.capture(b"\xff\xd8\xffdata", "jpg", source, 7, LABEL, 0.3, "uncertain")
        assert name.startswith("images/") and ".." not in name and "\\" not in name
        assert (tmp_path / "spool" / name).is_file()
    assert capturer.push().pending == 0
    files = _files(tmp_path / "dest")
    assert len(files) == 12 and all(f.startswith(("images/", "predictions/")) for f in files)
    assert sum(f.endswith(".prediction.json") for f in files) == 6
    assert not any(path.is_file() for path in (tmp_path / "spool" / "images").rglob("*"))


def test_nothing_leaves_the_spool_before_its_upload_succeeded(tmp_path: Path) -> None:
    spool = Spool.open(str(tmp_path / "dest"), tmp_path / "spool")
    target = FlakyTarget(str(tmp_path / "dest"), failures=2)
    capturer = Capturer(spool, target, "run:abc", retry_every=0.0)
    capturer.capture(b"img-one", "png", "/cam/one.png", None, LABEL, 0.3, "uncertain")
    first = capturer.push()
    assert (first.uploaded, first.pending) == (0, 2) and "connection refused" in first.error
    capturer.capture(b"img-two", "png", "/cam/two.png", None, LABEL, 0.9, "sampled")
    second = capturer.push()  # still unreachable: both captures wait
    assert second.uploaded == 0 and len(spool.pending()) == 4
    third = capturer.push()
    assert (third.uploaded, third.pending, third.error) == (4, 0, "")
    assert spool.pending() == [] and capturer.uploaded == 4
    images = sorted((tmp_path / "dest" / "images").rglob("*.png"))
    assert sorted(path.read_bytes() for path in images) == [b"img-one", b"img-two"]
    sidecars = [json.loads(p.read_text()) for p in (tmp_path / "dest" / "predictions").rglob("*.json")]
    assert {s["reason"] for s in sidecars} == {"uncertain", "sampled"}
    assert all(s["model_version"] == "run:abc" and s["prediction"] == LABEL.to_dict() for s in sidecars)
    assert all((tmp_path / "dest" / s["image"]).is_file() for s in sidecars)


def test_a_failed_push_waits_before_the_next_try(tmp_path: Path) -> None:
    spool = Spool.open(str(tmp_path / "dest"), tmp_path / "spool")
    target = FlakyTarget(str(tmp_path / "dest"), failures=1)
    capturer = Capturer(spool, target, "v", retry_every=3600.0)
    capturer.capture(b"img", "png", "a.png", None, LABEL, 0.3, "uncertain")
    assert capturer.push().error
    waited = capturer.push()
    assert waited.uploaded == 0 and waited.pending == 2 and target.failures == 0  # not even tried
    assert capturer.push(force=True).pending == 0


def test_a_spool_belongs_to_one_destination(tmp_path: Path) -> None:
    Spool.open(str(tmp_path / "first"), tmp_path / "spool")
    with pytest.raises(ConfigError, match="holds captures for"):
        Spool.open(str(tmp_path / "second"), tmp_path / "spool")


def test_local_captures_ingest_as_capture_items(edge_project, photo_folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    destination, spool = tmp_path / "captures", tmp_path / "spool"
    output = tmp_path / "run.jsonl"
    options = EdgeOptions(
        edge_project.model, photo_folder, str(output), capture_to=str(destination), spool=spool,
        capture_below=0.55, sample=0.5, seed=1, workers=1,
    )  # fmt: skip
    report = run_edge(options)
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    captured = [line for line in lines if line["captured"]]
    assert len(captured) == sum(report.captured.values()) > 0
    assert all((line["score"] < 0.55) == (line["captured"] == "uncertain") for line in lines)
    assert report.pending_upload == 0 and report.uploaded == 2 * len(captured)
    sidecars = {}
    for path in (destination / "predictions").rglob("*.prediction.json"):
        sidecar = json.loads(path.read_text())
        sidecars[sidecar["source"]] = sidecar
    for line in captured:
        sidecar = sidecars[line["source"]]
        assert sidecar["prediction"] == line["prediction"] and sidecar["reason"] == line["captured"]
        assert sidecar["model_version"] == f"run:{edge_project.run_id}"
        assert (destination / sidecar["image"]).read_bytes() == Path(line["source"]).read_bytes()

    project = Project.create(
        tmp_path / "fresh", ProjectConfig(name="fresh", labels=edge_project.project.config.labels)
    )
    result = CliRunner().invoke(
        app, ["-p", str(project.root), "ingest", str(destination), "--capture", "--json"]
    )
    assert result.exit_code == 0, result.output
    ingested = json.loads(result.output)
    assert (ingested["added"], ingested["rejected"], ingested["seen"]) == (len(captured), 0, len(captured))
    with project.open_catalog() as catalog:
        assert [item.source for item in catalog.iter_items()] == ["capture"] * len(captured)
