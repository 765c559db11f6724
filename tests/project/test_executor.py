"""The ``executor:`` section and the commands' --executor choices on top of it."""

from __future__ import annotations

import pytest
import yaml

from visionloop.core.errors import ConfigError
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.project.config import ExecutorSettings, ProjectConfig, dump_config
from visionloop.project.executor import choose_executor, shared_catalog_problem

SCHEMA = LabelSchema(task=TaskType.CLASSIFICATION, classes=["a", "b"])


def test_a_command_choice_overrides_the_project_and_unset_choices_keep_it() -> None:
    project = ExecutorSettings(kind="ray", address="ray://head:10001", workers=8, cpus_per_worker=4)
    assert choose_executor(project) == project
    chosen = choose_executor(project, "local", None, 2)
    assert (chosen.kind, chosen.address, chosen.workers, chosen.cpus_per_worker) == (
        "local",
        "ray://head:10001",
        2,
        4,
    )
    assert choose_executor(ExecutorSettings(), "ray", "auto").address == "auto"


def test_an_unknown_executor_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="unknown executor 'dask'"):
        choose_executor(ExecutorSettings(), "dask")


def test_the_section_is_validated_and_written_only_when_set() -> None:
    assert "executor" not in yaml.safe_load(dump_config(ProjectConfig(name="p", labels=SCHEMA)))
    config = ProjectConfig(name="p", labels=SCHEMA, executor=ExecutorSettings(kind="ray", workers=4))
    assert yaml.safe_load(dump_config(config))["executor"]["workers"] == 4
    with pytest.raises(ValueError, match="workers"):
        ExecutorSettings(workers=0)
    with pytest.raises(ValueError, match="kind"):
        ExecutorSettings.model_validate({"kind": "spark"})


def test_a_multi_node_cluster_is_refused_a_sqlite_catalog_but_postgresql_is_fine() -> None:
    assert shared_catalog_problem("sqlite:////data/p/catalog.db", nodes=1) is None
    assert "3 nodes" in str(shared_catalog_problem("sqlite:////data/p/catalog.db", nodes=3))
    assert shared_catalog_problem("postgresql://vl@db/vl", nodes=3) is None
