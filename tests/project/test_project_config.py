"""Project config: defaults, path resolution, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionloop.core.errors import ConfigError, ProjectNotFoundError, ValidationError
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.project import Project, ProjectConfig, load_config


def _config(**overrides: object) -> ProjectConfig:
    labels = LabelSchema(task=TaskType.CLASSIFICATION, classes=["a", "b"])
    return ProjectConfig.model_validate({"name": "p", "labels": labels, **overrides})


def test_create_then_find_from_a_subfolder(tmp_path: Path) -> None:
    created = Project.create(tmp_path / "proj", _config())
    (created.root / "deep" / "er").mkdir(parents=True)
    found = Project.find(created.root / "deep" / "er")
    assert found.root == created.root
    assert found.config == created.config
    assert found.catalog_url == f"sqlite:///{created.root / 'catalog.db'}"
    assert found.storage_url == str(created.root / "storage")
    with found.open_catalog() as catalog:
        assert catalog.get_schema() == created.config.labels


def test_absolute_and_remote_locations_are_kept(tmp_path: Path) -> None:
    project = Project(
        tmp_path, _config(catalog=f"sqlite:///{tmp_path}/elsewhere.db", storage="s3://bucket/pre/")
    )
    assert project.catalog_url == f"sqlite:///{tmp_path}/elsewhere.db"
    assert project.storage_url == "s3://bucket/pre"


def test_environment_variables_expand_in_the_catalog_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VL_DB_HOST", "db.internal")
    project = Project(tmp_path, _config(catalog="postgresql://user@${VL_DB_HOST}/labels"))
    assert project.catalog_url == "postgresql://user@db.internal/labels"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list\n", "expected a mapping"),
        ("name: [unclosed\n", "invalid YAML"),
        ("name: p\nlabels: {task: video, classes: [a]}\n", "labels.task"),
        ("version: 9\nname: p\nlabels: {task: detection, classes: [a]}\n", "unsupported config version 9"),
        (
            "name: p\nlabels: {task: detection, classes: [a]}\ningest: {split_ratios: {train: -1}}\n",
            "non-negative",
        ),
    ],
)
def test_invalid_config_files_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "visionloop.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_missing_project_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError):
        Project.find(tmp_path)
    with pytest.raises(ProjectNotFoundError):
        Project.load(tmp_path)


@pytest.mark.parametrize("run_id", ["..", "../etc", "a/b", "a\\b", "", "x" * 65, "run\x00", "%2e%2e"])
def test_a_run_folder_is_never_outside_runs(tmp_path: Path, run_id: str) -> None:
    project = Project(tmp_path, _config())
    assert project.run_folder("0123abcdef") == tmp_path / "runs" / "0123abcdef"
    with pytest.raises(ValidationError, match="is not a run id"):
        project.run_folder(run_id)


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"name: \x80p\n", "not UTF-8 text"), (b"[" * 5_000, "nested too deeply")],  # found by fuzzing
)
def test_undecodable_or_deeply_nested_config_files_are_config_errors(
    tmp_path: Path, raw: bytes, message: str
) -> None:
    path = tmp_path / "visionloop.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
