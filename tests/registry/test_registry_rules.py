"""The registry's rules on tiny model folders, with evaluation runs recorded as ``evaluate`` would:
gate failures block promotion, production needs an approval, rollback walks back, all audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tiny_models import write_model
from tiny_registry import gated_model, record_evaluation
from visionloop.catalog import Catalog
from visionloop.core.errors import ConflictError, NotFoundError, ValidationError
from visionloop.models.artifact import load_artifact_weights, write_artifact
from visionloop.models.config import ModelConfig
from visionloop.registry import ModelRegistry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ModelRegistry]:
    with Catalog.open(f"sqlite:///{tmp_path / 'catalog.db'}") as catalog:
        yield ModelRegistry(catalog, tmp_path)


def test_a_version_records_its_weights_lineage_and_gate(registry: ModelRegistry) -> None:
    artifact = gated_model(registry, "a", seed=0)
    version = registry.register(artifact.folder, "ana", description="first")
    assert (version.version, version.name, version.weights_sha256) == (1, "v1", artifact.weights_sha256)
    assert version.model_path == "a" and registry.folder(version) == artifact.folder.resolve()
    assert version.gate is not None and version.gate.passed and version.created_by == "ana"
    assert version.task == "classification" and version.family == "classifier"
    assert [event.action for event in registry.history("v1")] == ["register"]
    with pytest.raises(ConflictError, match="already registered as v1"):
        registry.register(artifact.folder, "ana")


def test_weights_changed_after_training_are_refused(registry: ModelRegistry) -> None:
    artifact = gated_model(registry, "a", seed=0)
    artifact.weights_path.write_bytes(artifact.weights_path.read_bytes()[:-1] + b"\0")
    with pytest.raises(ValidationError, match="weights changed"):
        registry.register(artifact.folder, "ana")


def test_a_failed_gate_blocks_every_promotion_and_approval(registry: ModelRegistry) -> None:
    version = registry.register(gated_model(registry, "a", seed=0, passed=False).folder, "ana")
    assert version.gate is not None and not version.gate.passed
    for alias in ("candidate", "staging", "production"):
        with pytest.raises(ValidationError, match=r"failed its gate.*min_accuracy"):
            registry.promote("v1", alias, "ana")
    with pytest.raises(ValidationError, match="failed its gate"):
        registry.approve("v1", "rui", "looks fine")
    assert registry.aliases() == {}


def test_a_newer_passing_evaluation_lifts_the_block(registry: ModelRegistry) -> None:
    artifact = gated_model(registry, "a", seed=0, passed=False)
    registry.register(artifact.folder, "ana")
    record_evaluation(registry.catalog, artifact, passed=True)
    assert registry.promote("v1", "staging", "ana").aliases == ["staging"]


def test_an_unevaluated_version_can_only_be_a_candidate(registry: ModelRegistry) -> None:
    version = registry.register(gated_model(registry, "a", seed=0, passed=None).folder, "ana")
    assert version.gate is None
    with pytest.raises(ValidationError, match="not been evaluated"):
        registry.promote(1, "staging", "ana")
    assert registry.promote(1, "candidate", "ana").aliases == ["candidate"]


def test_production_takes_only_an_approved_version(registry: ModelRegistry) -> None:
    registry.register(gated_model(registry, "a", seed=0).folder, "ana")
    registry.promote("v1", "staging", "ana", reason="nightly")
    with pytest.raises(ValidationError, match="needs an approval"):
        registry.promote("v1", "production", "ana")
    approval = registry.approve("staging", "rui", "checked the robustness report")
    assert (approval.action, approval.actor, approval.alias) == ("approve", "rui", "production")
    promoted = registry.promote("staging", "production", "ana", reason="release 1")
    assert promoted.aliases == ["production", "staging"]
    assert registry.get("production").version == 1
    with pytest.raises(ConflictError, match="already points at v1"):
        registry.promote("v1", "production", "ana")


def test_a_later_rejection_withdraws_the_approval(registry: ModelRegistry) -> None:
    registry.register(gated_model(registry, "a", seed=0).folder, "ana")
    registry.approve("v1", "rui", "ok")
    registry.approve("v1", "eva", "drifts on night images", approved=False)
    with pytest.raises(ValidationError, match="needs an approval"):
        registry.promote("v1", "production", "ana")
    with pytest.raises(ValidationError, match="needs a reason"):
        registry.approve("v1", "rui", "  ")


def test_the_approver_is_not_who_registered_the_version(registry: ModelRegistry) -> None:
    registry.register(gated_model(registry, "a", seed=0).folder, "ana")
    with pytest.raises(ValidationError, match="someone else must approve"):
        registry.approve("v1", "ana", "my own model is fine")
    registry.approve("v1", "ana", "withdrawn: drifts", approved=False)  # anyone may reject
    registry.approve("v1", "rui", "checked")
    registry.separate_approver = False
    registry.approve("v1", "ana", "a one-person team")


def test_rollback_walks_back_through_the_alias_history(registry: ModelRegistry) -> None:
    for index in range(3):
        registry.register(gated_model(registry, f"m{index}", seed=index).folder, "ana")
        registry.approve(index + 1, "rui", "ok")
        registry.promote(index + 1, "production", "ana")
    assert registry.get("production").version == 3
    back = registry.rollback("production", "ops", reason="latency regression")
    assert back.version == 2 and registry.aliases() == {"production": 2}
    assert registry.rollback("production", "ops").version == 1
    with pytest.raises(ValidationError, match="no earlier version"):
        registry.rollback("production", "ops")
    with pytest.raises(NotFoundError, match="no alias"):
        registry.rollback("staging", "ops")
    moves = [(e.action, e.version, e.previous_version, e.actor) for e in registry.history("production")]
    assert moves[-2:] == [("rollback", 2, 3, "ops"), ("rollback", 1, 2, "ops")]
    assert registry.history("production")[-2].reason == "latency regression"


def test_training_from_a_registered_model_makes_it_the_parent(registry: ModelRegistry) -> None:
    first = gated_model(registry, "a", seed=0)
    registry.register(first.folder, "ana")
    other = write_model(registry.root / "tmp", seed=1)
    config = ModelConfig(family="classifier", image_size=32, weights=str(first.weights_path))
    child = write_artifact(
        registry.root / "b", load_artifact_weights(other), other.schema, config, "classifier", run_id=None
    )
    record_evaluation(registry.catalog, child, passed=True)
    assert registry.register(child.folder, "ana").parent_version == 1
    unrelated = gated_model(registry, "c", seed=2)
    assert registry.register(unrelated.folder, "ana", parent="v2").parent_version == 2


@pytest.mark.parametrize("alias", ["../prod", "Production", "3", "v3", "", "a" * 65, "prod/eu", "prod%2F.."])
def test_alias_names_are_plain_words(registry: ModelRegistry, alias: str) -> None:
    registry.register(gated_model(registry, "a", seed=0).folder, "ana")
    with pytest.raises((ValidationError, NotFoundError)):
        registry.promote("v1", alias, "ana")


def test_an_actor_is_required(registry: ModelRegistry) -> None:
    with pytest.raises(ValidationError, match="actor"):
        registry.register(gated_model(registry, "a", seed=0).folder, " ")
