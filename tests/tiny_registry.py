"""Registry fixtures: tiny model folders with evaluation runs recorded the way ``evaluate`` does."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from tiny_models import SCHEMAS, write_model
from visionloop.catalog import Catalog
from visionloop.models.artifact import ModelArtifact
from visionloop.project import Project
from visionloop.project.config import ProjectConfig
from visionloop.registry import ModelRegistry
from visionloop.registry.client import EVALUATE_KIND


def record_evaluation(catalog: Catalog, artifact: ModelArtifact, passed: bool) -> str:
    """An evaluation run of ``artifact`` whose gate verdict is ``passed``."""
    inputs = {"model": str(artifact.folder), "model_sha256": artifact.weights_sha256}
    run = catalog.start_run(EVALUATE_KIND, {}, inputs)
    reasons = [] if passed else ["accuracy 0.41 < 0.90 (min_accuracy)"]
    catalog.finish_run(run, {"gate": {"passed": passed, "reasons": reasons}})
    return run


def gated_model(registry: ModelRegistry, name: str, seed: int, passed: bool | None = True) -> ModelArtifact:
    """A classifier folder ``name`` under the registry's root, evaluated unless ``passed`` is None."""
    artifact = write_model(registry.root / name, seed=seed)
    if passed is not None:
        record_evaluation(registry.catalog, artifact, passed)
    return artifact


def classifier_project(root: Path, approved: Collection[int] = (1, 2)) -> Project:
    """A project with two evaluated classifier versions registered by ana; ``approved`` ones
    approved by rui; v1 is production."""
    project = Project.create(root / "p", ProjectConfig(name="served", labels=SCHEMAS["classifier"]))
    with project.open_catalog() as catalog:
        registry = ModelRegistry(catalog, project.root)
        for number in (1, 2):
            registry.register(gated_model(registry, f"m{number}", seed=number).folder, "ana")
        for number in approved:
            registry.approve(number, "rui", "ok")
        registry.promote(1, "production", "ana")
    return project


def evaluation_folder(project: Project, version: int) -> Path:
    """The folder of the evaluation run that gated ``version`` (created if missing), where an
    evaluation writes its plots."""
    with project.open_catalog() as catalog:
        gate = ModelRegistry(catalog, project.root).get(version).gate
    if gate is None:
        raise AssertionError(f"v{version} was never evaluated")
    folder = project.root / "runs" / gate.evaluation_run
    folder.mkdir(parents=True, exist_ok=True)
    return folder
