"""The retraining policy: N new human labels, a schedule, a request; debounced; read from the catalog."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tiny_projects import make_project
from visionloop.catalog import Catalog
from visionloop.catalog.records import utcnow
from visionloop.core.labels import ClassLabel
from visionloop.core.provenance import Provenance
from visionloop.core.schema import TaskType
from visionloop.pipelines.retrain import RetrainPolicy, decide_retrain


def _pool(catalog: Catalog) -> list[int]:
    labelled = catalog.annotated_item_ids()
    return [item.id for item in catalog.iter_items() if item.id not in labelled]


def _label(catalog: Catalog, items: list[int], who: str = "ann@example.com") -> None:
    catalog.add_annotations([(item, ClassLabel("left"), Provenance.human(who)) for item in items])


def _trained(catalog: Catalog) -> str:
    run_id = catalog.start_run("train", {}, {})
    catalog.finish_run(run_id, {})
    return run_id


def test_after_n_new_human_labels(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, unlabeled=12)
    policy = RetrainPolicy(after_labels=5)
    with project.open_catalog() as catalog:
        first = decide_retrain(catalog, policy)
        assert first.due and first.last_training is None and first.new_labels == 12  # never trained
        last = _trained(catalog)
        quiet = decide_retrain(catalog, policy)
        assert not quiet.due and quiet.new_labels == 0 and quiet.last_training == last
        pool = _pool(catalog)
        _label(catalog, pool[:4])
        assert not decide_retrain(catalog, policy).due
        catalog.add_predictions("v1", [(pool[5], ClassLabel("left"), 0.9)])  # model labels do not count
        catalog.add_annotations([(pool[6], ClassLabel("left"), Provenance.model("v1", 0.9))])
        assert decide_retrain(catalog, policy).new_labels == 4
        _label(catalog, pool[4:5])
        due = decide_retrain(catalog, policy)
        assert due.due and due.new_labels == 5 and "5 new human labels" in due.reason


def test_debounce_waits_for_quiet(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, unlabeled=6)
    policy = RetrainPolicy(after_labels=2, debounce_s=60)
    with project.open_catalog() as catalog:
        _trained(catalog)
        _label(catalog, _pool(catalog)[:3])
        busy = decide_retrain(catalog, policy)
        assert not busy.due and "still going on" in busy.reason
        later = decide_retrain(catalog, policy, now=utcnow() + timedelta(seconds=61))
        assert later.due


def test_schedule_needs_a_new_label_and_the_interval(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, unlabeled=4)
    policy = RetrainPolicy(after_labels=None, every_s=3600)
    with project.open_catalog() as catalog:
        _trained(catalog)
        assert not decide_retrain(catalog, policy, now=utcnow() + timedelta(hours=2)).due  # nothing new
        _label(catalog, _pool(catalog)[:1])
        assert not decide_retrain(catalog, policy).due
        assert decide_retrain(catalog, policy, now=utcnow() + timedelta(seconds=3601)).due


def test_a_recorded_request_trains_once(tmp_path: Path) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION)
    policy = RetrainPolicy(after_labels=1000)
    with project.open_catalog() as catalog:
        _trained(catalog)
        assert not decide_retrain(catalog, policy).due
        request = catalog.start_run("labelstudio_event", {"action": "START_TRAINING"}, {})
        catalog.finish_run(request, {"training_requested": True})
        asked = decide_retrain(catalog, policy)
        assert asked.due and asked.requested
        assert not decide_retrain(catalog, RetrainPolicy(after_labels=1000, on_request=False)).due
        _trained(catalog)  # the request was served
        assert not decide_retrain(catalog, policy).due
        assert decide_retrain(catalog, policy, requested=True).due  # --train on the command line
