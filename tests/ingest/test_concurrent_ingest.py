"""Four ingest processes writing one catalog at once lose nothing and fail nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from images import rgb_png
from servers import create_database
from visionloop.catalog import Catalog
from visionloop.project import Project

PROCESSES = 4
OWN_FILES = 60
SHARED_FILES = 60


def _make_trees(root: Path) -> list[Path]:
    """Each process gets its own folder plus the same shared folder, so writers also race on rows."""
    shared = root / "shared"
    for i in range(SHARED_FILES):
        (shared / f"s{i}.png").parent.mkdir(parents=True, exist_ok=True)
        (shared / f"s{i}.png").write_bytes(rgb_png(16, 16, seed=10_000 + i))
    folders = []
    for p in range(PROCESSES):
        folder = root / f"own{p}"
        folder.mkdir()
        for i in range(OWN_FILES):
            (folder / f"{i}.png").write_bytes(rgb_png(16, 16, seed=p * 1000 + i))
        folders.append(folder)
    return [shared, *folders]


def _run_parallel(project: Path, sources: list[Path]) -> list[dict[str, int]]:
    command = [
        sys.executable,
        "-m",
        "visionloop.cli",
        "-p",
        str(project),
        "ingest",
        "--json",
        "--workers",
        "2",
        "--batch-size",
        "4",
    ]
    procs = [
        subprocess.Popen([*command, str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for source in sources
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    return reports


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_four_processes_ingest_at_once(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    shared, *own = _make_trees(tmp_path / "data")
    catalog_arg = []
    if backend == "postgres":
        server = request.getfixturevalue("postgres_url")
        catalog_arg = ["--catalog", create_database(server, f"t_{uuid.uuid4().hex[:12]}")]
    init = [
        sys.executable,
        "-m",
        "visionloop.cli",
        "init",
        str(tmp_path / "proj"),
        "--classes",
        "a",
        *catalog_arg,
    ]
    subprocess.run(init, check=True, capture_output=True)
    project = tmp_path / "proj"

    # Round 1: four disjoint folders at once. Round 2: the shared folder four times at once.
    first = _run_parallel(project, own)
    second = _run_parallel(project, [shared] * PROCESSES)

    assert [r["added"] for r in first] == [OWN_FILES] * PROCESSES
    assert sum(r["added"] for r in second) == SHARED_FILES  # each shared file added exactly once
    for report in first + second:
        assert report["added"] + report["unchanged"] + report["rejected"] == report["seen"]
        assert report["rejected"] == 0
    with Catalog.open(Project.load(project).catalog_url) as catalog:
        assert catalog.count_items() == PROCESSES * OWN_FILES + SHARED_FILES
        assert catalog.summary()["files"] == {"item": PROCESSES * OWN_FILES + SHARED_FILES}
        runs = catalog.list_runs(kind="ingest", limit=100)
        assert len(runs) == 2 * PROCESSES and {run.status for run in runs} == {"succeeded"}
