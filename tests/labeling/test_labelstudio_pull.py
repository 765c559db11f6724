"""Pull against a real Label Studio: annotations come back once as human label versions with
their annotator (classification and detection), edits become new versions, deletions and
skips are recorded, a crash mid-pull loses or duplicates nothing, and the pull is incremental."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from ls_helpers import http, ls_project, pool, predict, tasks_by_item
from servers import LabelStudio
from visionloop.catalog.tables import labeling_annotations
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import ProvenanceKind
from visionloop.core.schema import TaskType
from visionloop.labeling.labelstudio import pull as pull_module
from visionloop.labeling.labelstudio import pull_annotations, push_items
from visionloop.project import Project

pytestmark = pytest.mark.labelstudio


def _box(x: float, label: str = "bar") -> list[dict[str, Any]]:
    value = {"x": x, "y": 10.0, "width": 25.0, "height": 50.0, "rotation": 0, "rectanglelabels": [label]}
    region = {"from_name": "label", "to_name": "image", "type": "rectanglelabels", "value": value}
    return [region | {"original_width": 64, "original_height": 64}]


def _choice(name: str) -> list[dict[str, Any]]:
    return [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": [name]}}]


def _annotate(server: LabelStudio, task_id: int, body: dict[str, Any]) -> dict[str, Any]:
    with http(server) as client:
        made = client.post(f"/api/tasks/{task_id}/annotations/", json=body)
    assert made.status_code == 201, made.text
    answer: dict[str, Any] = made.json()
    return answer


def _pushed(project: Project, server: LabelStudio) -> tuple[list[int], dict[int, dict[str, Any]]]:
    items = pool(project)
    predict(project, items, "v1")
    report = push_items(project, items)
    return items, tasks_by_item(server, report.labelstudio_project)


def _states(project: Project) -> dict[int, str]:
    with project.open_catalog() as catalog, catalog.engine.connect() as connection:
        rows = connection.execute(select(labeling_annotations.c.item_id, labeling_annotations.c.state))
        return {int(item): str(state) for item, state in rows}


def test_detection_annotations_come_back_once_edits_as_versions_deletions_recorded(
    label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = ls_project(label_studio, TaskType.DETECTION, monkeypatch)
    items, tasks = _pushed(project, label_studio)
    made = _annotate(label_studio, tasks[items[0]]["id"], {"result": _box(10.0)})
    _annotate(label_studio, tasks[items[1]]["id"], {"result": [], "was_cancelled": True})
    _annotate(label_studio, tasks[items[2]]["id"], {"result": _box(10.0, "unicorn")})

    report = pull_annotations(project)
    assert (report.imported, report.skipped, report.invalid) == (1, 1, 1)
    assert "unicorn" in " ".join(report.problems or [])
    assert _states(project) == {items[0]: "imported", items[1]: "skipped", items[2]: "invalid"}
    with project.open_catalog() as catalog:
        [version] = catalog.annotation_history(items[0])
        assert catalog.annotation_history(items[1]) == catalog.annotation_history(items[2]) == []
    assert (
        version.provenance.kind is ProvenanceKind.HUMAN
        and version.provenance.annotator == label_studio_user(label_studio)
    )
    assert isinstance(version.label, ObjectLabels)
    assert version.label.boxes.tolist() == [[6.4, 6.4, 22.4, 38.4]] and version.label.class_names == ("bar",)

    again = pull_annotations(project)  # nothing new: a no-op
    assert (again.imported, again.updated, again.skipped, again.invalid, again.unchanged) == (0, 0, 0, 0, 3)

    with http(label_studio) as client:
        edited = client.patch(f"/api/annotations/{made['id']}/", json={"result": _box(20.0, "box")})
        assert edited.status_code == 200, edited.text
    changed = pull_annotations(project)
    assert (changed.imported, changed.updated) == (0, 1)
    with project.open_catalog() as catalog:
        history = catalog.annotation_history(items[0])
    assert [v.label.class_names for v in history] == [("bar",), ("box",)]  # type: ignore[union-attr]

    with http(label_studio) as client:
        assert client.delete(f"/api/annotations/{made['id']}/").status_code == 204
    gone = pull_annotations(project)
    assert (gone.deleted, gone.imported, gone.updated) == (1, 0, 0)
    assert _states(project)[items[0]] == "deleted"
    assert pull_annotations(project).deleted == 0


def label_studio_user(server: LabelStudio) -> str:
    with http(server) as client:
        email: str = client.get("/api/current-user/whoami").json()["email"]
        return email


def test_classification_annotations_become_human_labels_with_their_annotator(
    label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = ls_project(label_studio, TaskType.CLASSIFICATION, monkeypatch)
    items, tasks = _pushed(project, label_studio)
    for item, name in zip(items[:4], ["left", "right", "right", "left"], strict=True):
        _annotate(label_studio, tasks[item]["id"], {"result": _choice(name)})
    report = pull_annotations(project)
    assert (report.imported, report.invalid) == (4, 0)
    with project.open_catalog() as catalog:
        current = catalog.current_annotations(items)
    assert sorted(current) == items[:4]
    assert [current[i].label for i in items[:4]] == [
        ClassLabel(n) for n in ("left", "right", "right", "left")
    ]
    annotator = label_studio_user(label_studio)
    assert {v.provenance.annotator for v in current.values()} == {annotator}
    assert all(v.provenance.kind is ProvenanceKind.HUMAN for v in current.values())


def test_a_crash_inside_the_recording_transaction_loses_and_duplicates_nothing(
    label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = ls_project(label_studio, TaskType.CLASSIFICATION, monkeypatch)
    items, tasks = _pushed(project, label_studio)
    for item in items[:2]:
        _annotate(label_studio, tasks[item]["id"], {"result": _choice("right")})

    real_record = pull_module.record_pulled
    calls = 0

    def dies_on_the_second(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        real_record(*args, **kwargs)
        if calls == 2:  # after the second version and its record were written, before commit
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(pull_module, "record_pulled", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        pull_annotations(project)
    monkeypatch.setattr(pull_module, "record_pulled", real_record)
    with project.open_catalog() as catalog:
        assert len(catalog.current_annotations(items)) == 1  # the first committed, the second not
    assert len(_states(project)) == 1

    resumed = pull_annotations(project)
    assert (resumed.imported, resumed.unchanged) == (1, 1)
    with project.open_catalog() as catalog:
        assert [len(catalog.annotation_history(item)) for item in items[:2]] == [1, 1]
    assert pull_annotations(project).imported == 0


def test_the_pull_is_incremental(label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch) -> None:
    project = ls_project(label_studio, TaskType.CLASSIFICATION, monkeypatch)
    items, tasks = _pushed(project, label_studio)
    for item in items[:2]:
        _annotate(label_studio, tasks[item]["id"], {"result": _choice("left")})
    assert pull_annotations(project).imported == 2

    monkeypatch.setattr(pull_module, "OVERLAP_S", 0.0)  # no window: only tasks changed since the cursor
    _annotate(label_studio, tasks[items[2]]["id"], {"result": _choice("right")})
    later = pull_annotations(project)
    assert (later.tasks, later.imported, later.unchanged) == (1, 1, 0)
    assert pull_annotations(project).tasks == 0
