"""Registry fixtures: tiny model folders with evaluation runs recorded the way ``evaluate`` does."""

from __future__ import annotations

from tiny_models import write_model
from visionloop.catalog import Catalog
from visionloop.models.artifact import ModelArtifact
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
