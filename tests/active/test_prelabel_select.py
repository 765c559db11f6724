"""Pre-labeling stores predictions and embeddings per item, resumes without repeating work and
skips unreadable images; selection picks from the unlabelled pool and is stored as a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tiny_projects import make_project
from visionloop.active.prelabel import PrelabelOptions, prelabel
from visionloop.active.store import embeddings_dir, load_embeddings
from visionloop.catalog.tables import predictions
from visionloop.cli.app import app
from visionloop.core.labels import ClassLabel
from visionloop.core.schema import TaskType
from visionloop.project import Project

runner = CliRunner()
POOL = 12


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str]:
    """A tiny classification project with a 12-image unlabelled pool and a one-step model."""
    root = tmp_path_factory.mktemp("prelabel")
    project = make_project(root, TaskType.CLASSIFICATION, per_split=4, unlabeled=POOL)
    result = runner.invoke(
        app, ["-p", str(project.root), "train", "model.image_size=32", "optim.max_steps=1", "--json"]
    )
    assert result.exit_code == 0, result.output
    return project, json.loads(result.output)["run_id"]


def _pool_ids(project: Project) -> set[int]:
    with project.open_catalog() as catalog:
        labelled = set(catalog.current_annotations())
        return {item.id for item in catalog.iter_items() if item.id not in labelled}


def _stored_rows(project: Project, run_id: str) -> int:
    with project.open_catalog() as catalog, catalog.engine.connect() as connection:
        query = select(func.count()).select_from(predictions).where(predictions.c.run_id == run_id)
        return int(connection.execute(query).scalar_one())


def test_prelabel_stores_a_prediction_and_an_embedding_per_unlabelled_item(
    trained: tuple[Project, str],
) -> None:
    project, model = trained
    result = runner.invoke(app, ["-p", str(project.root), "prelabel", model, "--json", "--batch-size", "5"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["predicted"] == POOL and report["failed"] == []
    assert report["model_version"] == f"run:{model}"
    with project.open_catalog() as catalog:
        stored = catalog.run_predictions(report["run_id"])
    assert set(stored) == _pool_ids(project)
    for label, score in stored.values():
        assert isinstance(label, ClassLabel) and label.probabilities is not None
        assert score == pytest.approx(max(label.probabilities))
    ids, rows = load_embeddings(Path(report["embeddings"]))
    assert set(ids.tolist()) == set(stored)
    assert rows.shape == (POOL, 1280) == (POOL, report["embedding_dim"])  # MobileNetV2's pooled features
    assert np.all(np.isfinite(rows)) and np.abs(rows).sum() > 0


def test_an_interrupted_prelabel_resumes_without_repeating_items(trained: tuple[Project, str]) -> None:
    project, model = trained
    options = PrelabelOptions(batch_size=4, chunk=4, workers=0)

    def interrupt_after_eight(done: int, total: int) -> None:
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prelabel(project, model, options, progress=interrupt_after_eight)
    with project.open_catalog() as catalog:
        run = catalog.list_runs(kind="prelabel", limit=1)[0]
    assert run.status == "running"
    assert _stored_rows(project, run.id) == 8

    report = prelabel(project, model, options, resume_run=run.id)
    assert (report.already_done, report.predicted) == (8, 4)
    assert _stored_rows(project, run.id) == POOL
    ids, _ = load_embeddings(embeddings_dir(project, run.id))
    assert sorted(ids.tolist()) == sorted(_pool_ids(project))


def test_selection_takes_the_budget_from_the_unlabelled_pool(trained: tuple[Project, str]) -> None:
    project, model = trained
    prelabelled = prelabel(project, model, PrelabelOptions(workers=0))
    pool = _pool_ids(project)
    for strategy in ("margin", "k-center", "hybrid", "typical-cluster", "random"):
        result = runner.invoke(
            app,
            [
                "-p",
                str(project.root),
                "select",
                "--strategy",
                strategy,
                "--budget",
                "5",
                "--json",
                "--prelabel",
                prelabelled.run_id,
            ],
        )
        assert result.exit_code == 0, result.output
        chosen = json.loads(result.output)
        assert len(chosen["items"]) == 5 == len(set(chosen["items"]))
        assert set(chosen["items"]) <= pool
    with project.open_catalog() as catalog:
        runs = catalog.list_runs(kind="select", limit=10)
        margin = next(run for run in runs if run.config["strategy"] == "margin")
        stored = catalog.run_predictions(prelabelled.run_id)
    assert margin.parent_id == prelabelled.run_id
    # margin picks the five items whose top two probabilities are closest
    gaps = {item: np.diff(sorted(label.probabilities)[-2:])[0] for item, (label, _) in stored.items()}  # type: ignore[union-attr, arg-type]
    assert set(margin.outputs["items"]) == set(sorted(gaps, key=gaps.__getitem__)[:5])  # type: ignore[index]


def test_an_unreadable_image_is_reported_and_the_rest_predicted(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=2, unlabeled=3)
    result = runner.invoke(
        app, ["-p", str(project.root), "train", "model.image_size=32", "optim.max_steps=1", "--json"]
    )
    assert result.exit_code == 0, result.output
    broken = tmp_path / "images" / "pool" / "pool_001.png"
    broken.write_bytes(broken.read_bytes()[:40])  # truncated after ingest
    report = prelabel(project, json.loads(result.output)["run_id"], PrelabelOptions(workers=0))
    assert report.predicted == 2
    assert len(report.failed) == 1 and "pool_001.png" in report.failed[0]["reason"]


def test_select_without_predictions_needs_the_random_strategy(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=2, unlabeled=4)
    result = runner.invoke(app, ["-p", str(project.root), "select", "--strategy", "margin", "--budget", "2"])
    assert result.exit_code != 0 and "visionloop prelabel" in result.output
    result = runner.invoke(
        app, ["-p", str(project.root), "select", "--strategy", "random", "--budget", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["items"]) == 2
