"""Catalog behaviour on SQLite and PostgreSQL: append-only labels, precedence, snapshots, runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from images import rgb_png
from tiny_items import add_items
from visionloop.catalog import HEAD_REVISION, Catalog
from visionloop.core.errors import CatalogError, NotFoundError, ValidationError
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema, TaskType


def test_annotations_are_versions_and_history_is_kept(catalog: Catalog) -> None:
    [item] = add_items(catalog, 1)
    first = catalog.add_annotation(item, ClassLabel("cat"), Provenance.human("ann-1"))
    second = catalog.add_annotation(item, ClassLabel("dog"), Provenance.human("ann-2"))

    assert (first.version, second.version) == (1, 2)
    assert second.supersedes_id == first.id
    history = catalog.annotation_history(item)
    assert [(a.label, a.provenance.annotator) for a in history] == [
        (ClassLabel("cat"), "ann-1"),
        (ClassLabel("dog"), "ann-2"),
    ]
    assert catalog.current_annotations()[item].label == ClassLabel("dog")


def test_human_labels_win_over_auto_and_model_labels(catalog: Catalog) -> None:
    [item] = add_items(catalog, 1)
    catalog.add_annotation(item, ClassLabel("cat"), Provenance.model("m1", 0.7))
    assert catalog.current_annotations()[item].provenance.kind == "model"
    catalog.add_annotation(item, ClassLabel("dog"), Provenance.auto("m1", "cal-1", 0.99))
    assert catalog.current_annotations()[item].label == ClassLabel("dog")
    catalog.add_annotation(item, ClassLabel("bird"), Provenance.human("alice"))
    catalog.add_annotation(item, ClassLabel("cat"), Provenance.model("m2", 0.99))  # newer, but a model's

    current = catalog.current_annotations()[item]
    assert current.label == ClassLabel("bird") and current.provenance.annotator == "alice"


def test_revoked_calibration_runs_stop_their_auto_labels_counting(catalog: Catalog) -> None:
    first, second = add_items(catalog, 2)
    run = catalog.start_run("autolabel", {}, {})
    catalog.add_annotation(first, ClassLabel("cat"), Provenance.model("m1", 0.6))
    catalog.add_annotation(first, ClassLabel("dog"), Provenance.auto("m1", run, 0.99), run_id=run)
    catalog.add_annotation(second, ClassLabel("dog"), Provenance.auto("m1", run, 0.99), run_id=run)
    with pytest.raises(ValidationError, match="not a finished run"):
        catalog.revoke_run(run, "too early")  # still running
    catalog.finish_run(run, {})
    assert catalog.annotated_item_ids() == {first, second}

    catalog.revoke_run(run, "audit failed")
    assert catalog.get_run(run).status == "revoked" and catalog.get_run(run).error == "audit failed"
    current = catalog.current_annotations()
    assert current[first].provenance.kind == "model"  # falls back to the next label
    assert second not in current and catalog.annotated_item_ids() == {first}
    assert len(catalog.annotation_history(second)) == 1  # nothing is deleted
    frozen = dict(catalog.snapshot_annotations(catalog.create_snapshot().id))
    assert {item.id: a.provenance.kind if a else None for item, a in frozen.items()} == {
        first: "model",
        second: None,
    }


def test_items_move_between_splits_and_snapshots_keep_the_old_one(catalog: Catalog) -> None:
    items = add_items(catalog, 3)
    before = catalog.create_snapshot()
    assert catalog.assign_split(items[:2], "calib") == 2
    assert catalog.assign_split(items[:2], "calib") == 0  # already there
    assert [item.split for item in catalog.iter_items()] == ["calib", "calib", "train"]
    assert {item.split for item, _ in catalog.snapshot_annotations(before.id)} == {"train"}
    with pytest.raises(ValidationError, match="1 to 8 characters"):
        catalog.assign_split(items, "calibration")


def test_current_annotations_of_some_items_reads_only_those(catalog: Catalog) -> None:
    items = add_items(catalog, 5)
    for item in items:
        catalog.add_annotation(item, ClassLabel("cat"), Provenance.human("alice"))
    catalog.add_annotation(items[1], ClassLabel("dog"), Provenance.human("bob"))

    some = catalog.current_annotations([items[1], items[3]])
    assert set(some) == {items[1], items[3]}
    assert some[items[1]].label == ClassLabel("dog") and some[items[1]].version == 2
    assert catalog.current_annotations([]) == {}
    everything = add_items(catalog, 6)  # one more item, never annotated
    assert len(everything) == 6
    assert catalog.annotated_item_ids() == set(catalog.current_annotations()) == set(items)


def test_database_refuses_to_rewrite_history(catalog: Catalog) -> None:
    [item] = add_items(catalog, 1)
    catalog.add_annotation(item, ClassLabel("cat"), Provenance.human("alice"))
    for statement in ("UPDATE annotations SET provenance = 'auto'", "DELETE FROM annotations"):
        with pytest.raises(DBAPIError, match="append-only"), catalog.engine.begin() as connection:
            connection.execute(text(statement))
    assert len(catalog.annotation_history(item)) == 1


def test_object_labels_round_trip_with_masks_and_keypoints(catalog: Catalog) -> None:
    [item] = add_items(catalog, 1)
    label = ObjectLabels(
        boxes=np.array([[1.5, 2.0, 8.25, 9.0], [0.0, 0.0, 3.0, 4.0]]),
        class_names=("person", "person"),
        scores=np.array([0.9, 0.4]),
        masks=({"size": [20, 10], "counts": [5, 10, 185]}, {"size": [20, 10], "counts": [0, 200]}),
        keypoints=np.array([[[2.0, 3.0, 2.0]], [[0.0, 0.0, 0.0]]]),
    )
    catalog.add_annotation(item, label, Provenance.model("det-v1", 0.9))
    stored = catalog.current_annotations()[item].label
    assert isinstance(stored, ObjectLabels)
    np.testing.assert_allclose(stored.boxes, label.boxes)
    assert stored.keypoints is not None and stored.keypoints.shape == (2, 1, 3)
    assert stored.masks == label.masks
    assert catalog.summary()["class_balance"] == {"person": 2}


def test_annotating_a_missing_item_names_it(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError, match="item 999"):
        catalog.add_annotation(999, ClassLabel("cat"), Provenance.human("alice"))


def test_snapshots_are_immutable_and_content_addressed(catalog: Catalog) -> None:
    items = add_items(catalog, 3)
    catalog.add_annotation(items[0], ClassLabel("cat"), Provenance.human("alice"))
    first = catalog.create_snapshot("v1")
    assert catalog.create_snapshot("again").id == first.id  # same state, same id

    catalog.add_annotation(items[0], ClassLabel("dog"), Provenance.human("bob"))
    catalog.add_annotation(items[1], ClassLabel("cat"), Provenance.human("bob"))
    second = catalog.create_snapshot("v2")
    assert second.id != first.id
    assert (first.item_count, first.annotation_count) == (3, 1)
    assert (second.item_count, second.annotation_count) == (3, 2)

    frozen = {item.id: annotation for item, annotation in catalog.snapshot_annotations(first.id)}
    assert frozen[items[0]] is not None and frozen[items[0]].label == ClassLabel("cat")
    assert frozen[items[1]] is None
    with pytest.raises(NotFoundError):
        catalog.get_snapshot("nope")


def test_runs_record_config_inputs_and_outcome(catalog: Catalog) -> None:
    run_id = catalog.start_run("train", config={"lr": 0.1}, inputs={"snapshot": "abc"})
    assert catalog.get_run(run_id).status == "running"
    catalog.finish_run(run_id, outputs={"accuracy": 0.9})
    run = catalog.get_run(run_id)
    assert (run.status, run.config, run.inputs, run.outputs) == (
        "succeeded",
        {"lr": 0.1},
        {"snapshot": "abc"},
        {"accuracy": 0.9},
    )
    failed = catalog.start_run("train", config={}, inputs={})
    catalog.finish_run(failed, outputs={}, error="boom")
    assert catalog.get_run(failed).status == "failed"
    assert [r.id for r in catalog.list_runs(kind="train")] == [failed, run_id]
    with pytest.raises(NotFoundError):
        catalog.finish_run("missing", outputs={})


def test_metrics_logged_again_for_a_step_replace_the_first_ones(catalog: Catalog) -> None:
    """A training resumed after ``kill -9`` repeats the epoch whose metrics were logged but not
    checkpointed; logging them again must not record the step twice."""
    run_id = catalog.start_run("train", config={}, inputs={})
    catalog.log_metrics(run_id, 4, {"loss": 0.9, "acc": 0.5}, epoch=0)
    catalog.log_metrics(run_id, 4, {"loss": 0.8}, epoch=0)
    catalog.log_metrics(run_id, 8, {"loss": 0.7}, epoch=1)
    assert sorted(catalog.run_metrics(run_id)) == [
        (4, 0, "acc", 0.5),
        (4, 0, "loss", 0.8),
        (8, 1, "loss", 0.7),
    ]


def test_runs_are_found_by_one_recorded_input(catalog: Catalog) -> None:
    older = catalog.start_run("evaluate", config={}, inputs={"model_sha256": "aa", "snapshot": "s"})
    catalog.finish_run(older, outputs={})
    other = catalog.start_run("evaluate", config={}, inputs={"model_sha256": "bb"})
    catalog.finish_run(other, outputs={})
    failed = catalog.start_run("evaluate", config={}, inputs={"model_sha256": "aa"})
    catalog.finish_run(failed, outputs={}, error="boom")
    trained = catalog.start_run("train", config={}, inputs={"model_sha256": "aa"})
    catalog.finish_run(trained, outputs={})
    newer = catalog.start_run("evaluate", config={}, inputs={"model_sha256": "aa"})
    catalog.finish_run(newer, outputs={})
    assert [r.id for r in catalog.runs_with_input("evaluate", "model_sha256", "aa")] == [newer, older]
    assert [r.id for r in catalog.runs_with_input("evaluate", "model_sha256", "aa", status="failed")] == [
        failed
    ]
    assert catalog.runs_with_input("evaluate", "model_sha256", "cc") == []


def test_schema_is_versioned_only_when_it_changes(catalog: Catalog) -> None:
    schema = LabelSchema(task=TaskType.DETECTION, classes=["cat", "dog"])
    assert catalog.set_schema(schema) is True
    assert catalog.set_schema(schema) is False
    assert catalog.get_schema() == schema
    wider = LabelSchema(task=TaskType.DETECTION, classes=["cat", "dog", "bird"])
    assert catalog.set_schema(wider) is True
    assert catalog.get_schema() == wider


def test_summary_counts_splits_provenance_and_classes(catalog: Catalog) -> None:
    items = add_items(catalog, 4, split="val")
    catalog.add_annotation(items[0], ClassLabel("cat"), Provenance.human("alice"))
    catalog.add_annotation(items[1], ClassLabel("cat"), Provenance.auto("m1", "cal", 0.99))
    catalog.add_annotation(items[2], ClassLabel("dog"), Provenance.model("m1", 0.6))
    summary = catalog.summary()
    assert summary["items"] == 4 and summary["items_by_split"] == {"val": 4}
    assert summary["labelled"] == 3 and summary["unlabelled"] == 1
    assert summary["labelled_by_provenance"] == {"human": 1, "model": 1, "auto": 1}
    assert summary["class_balance"] == {"cat": 2, "dog": 1}


def test_migration_head_matches_the_code(catalog: Catalog) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from visionloop.catalog.engine import _MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION
    with catalog.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION


def test_bad_catalog_urls_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="unsupported catalog URL"):
        Catalog.open("mysql://nowhere/db")
    with pytest.raises(CatalogError, match="invalid catalog URL"):
        Catalog.open("::not a url::")
    (tmp_path / "file.db").write_bytes(rgb_png())  # an image is not a database
    with pytest.raises(CatalogError, match="cannot open catalog"):
        Catalog.open(f"sqlite:///{tmp_path / 'file.db'}")


def test_concurrent_annotators_never_lose_or_duplicate_a_version(catalog: Catalog) -> None:
    from concurrent.futures import ThreadPoolExecutor

    [item] = add_items(catalog, 1)

    def annotate(worker: int) -> None:
        for n in range(8):
            catalog.add_annotation(item, ClassLabel(f"c{n}"), Provenance.human(f"annotator-{worker}"))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(annotate, range(4)))
    history = catalog.annotation_history(item)
    assert [a.version for a in history] == list(range(1, 33))
    assert [a.supersedes_id for a in history[1:]] == [a.id for a in history[:-1]]


def test_migrations_build_exactly_the_declared_schema(catalog: Catalog) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from visionloop.catalog.tables import metadata

    with catalog.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
