"""The registry's rules: what may be registered, promoted, approved and rolled back, and by whom.

Rules (each checked in the same transaction as the change it allows, so two people promoting at
once cannot both slip past a check):

- A version is a trained model's weights, by sha256 (verified against the file), with its
  lineage: training run and config, dataset snapshot, metrics, parent version (the registered
  weights training started from) and gate verdict.
- The gate verdict is the newest finished ``evaluate`` run of exactly these weights. A version
  whose gate failed cannot be promoted anywhere; one not yet evaluated only to ``candidate``.
- An alias named in ``approval_required`` (``production`` by default) takes only a version that
  a person approved for it (the newest approve/reject decision counts; a failed gate cannot be
  approved). With ``separate_approver`` (the default), that person is not the one who
  registered the version: four eyes.
- Rollback moves an alias back to the version it held before its current one; promotions and
  rollbacks behave as a stack, so repeated rollbacks walk back through the history.
- Every change is an append-only event with the actor, the time and the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection

from visionloop.catalog import Catalog
from visionloop.catalog.engine import read_connection, write_transaction
from visionloop.core.errors import ConflictError, NotFoundError, ValidationError
from visionloop.registry import store
from visionloop.registry.records import (
    CANDIDATE,
    PRODUCTION,
    GateStatus,
    ModelVersion,
    RegistryEvent,
    latest_decisions,
    parse_version,
    validate_alias,
)
from visionloop.storage.descriptions import sha256_file
from visionloop.tasks.model_files import WEIGHTS_NAME, read_model_description

__all__ = ["EVALUATE_KIND", "TRAIN_KIND", "Mirror", "ModelRegistry"]

TRAIN_KIND, EVALUATE_KIND = "train", "evaluate"
ACTOR_MAX_LENGTH = 128

logger = logging.getLogger(__name__)


class Mirror(Protocol):
    """Another registry kept in step with this one (MLflow's)."""

    def sync(
        self, versions: Iterable[ModelVersion], aliases: dict[str, int], events: Iterable[RegistryEvent]
    ) -> dict[str, int]: ...


class ModelRegistry:
    """Model versions, aliases and approvals of one project, stored in its catalog."""

    def __init__(
        self,
        catalog: Catalog,
        root: Path,
        approval_required: Collection[str] = (PRODUCTION,),
        mirror: Mirror | None = None,
        separate_approver: bool = True,
    ) -> None:
        self.catalog = catalog
        self.root = root.resolve()
        self.approval_required = frozenset(validate_alias(alias) for alias in approval_required)
        self.mirror = mirror
        self.mirror_error: str | None = None
        self.separate_approver = separate_approver

    # -- reading ----------------------------------------------------------------------------
    def get(self, reference: str | int) -> ModelVersion:
        """A version by number (``3``, ``"v3"``) or by an alias pointing at it."""
        with read_connection(self.catalog.engine) as connection:
            return self._get(connection, reference)

    def versions(self) -> list[ModelVersion]:
        with read_connection(self.catalog.engine) as connection:
            return store.read_versions(connection)

    def aliases(self) -> dict[str, int]:
        with read_connection(self.catalog.engine) as connection:
            return store.alias_map(connection)

    def decisions(self) -> dict[int, dict[str, RegistryEvent]]:
        """Each version's standing approve/reject decision per alias."""
        with read_connection(self.catalog.engine) as connection:
            return latest_decisions(store.list_events(connection))

    def history(self, reference: str | None = None, limit: int | None = None) -> list[RegistryEvent]:
        """Events oldest first: all, those of one version (``3``, ``v3``) or of one alias."""
        with read_connection(self.catalog.engine) as connection:
            if reference is None:
                return store.list_events(connection, limit=limit)
            number = parse_version(reference)
            if number is not None:
                return store.list_events(connection, version=number, limit=limit)
            return store.list_events(connection, alias=validate_alias(reference), limit=limit)

    def find(self, reference: str) -> ModelVersion | None:
        """The version ``reference`` names (``v3``, ``3`` or an existing alias), or ``None`` when it
        names none, so callers can fall back to run ids and folders."""
        number = parse_version(reference)
        with read_connection(self.catalog.engine) as connection:
            if number is None:
                number = store.alias_map(connection).get(reference)
            return None if number is None else store.read_version(connection, number)

    def find_by_weights(self, weights_sha256: str) -> ModelVersion | None:
        with read_connection(self.catalog.engine) as connection:
            number = store.find_version_by_sha(connection, weights_sha256)
            return None if number is None else store.read_version(connection, number)

    def folder(self, version: ModelVersion) -> Path:
        """Where the version's model files are (paths inside the project are stored relative)."""
        path = Path(version.model_path)
        return path if path.is_absolute() else self.root / path

    # -- changing ---------------------------------------------------------------------------
    def register(
        self,
        folder: Path,
        actor: str,
        *,
        description: str | None = None,
        parent: str | int | None = None,
    ) -> ModelVersion:
        """Register the model in ``folder`` (a training run's ``model`` folder, usually)."""
        actor = _actor(actor)
        artifact = read_model_description(folder)
        weights = folder / WEIGHTS_NAME
        actual = sha256_file(weights)
        if actual != artifact.weights_sha256:
            raise ValidationError(
                f"{weights}: sha256 {actual[:12]} differs from the "
                f"{artifact.weights_sha256[:12]} model.json records; the weights changed after training"
            )
        run = self._training_run(artifact.run_id)
        config: dict[str, Any] = dict(run.config) if run is not None else {"model": dict(artifact.model)}
        snapshot = str(run.inputs["snapshot"]) if run is not None and "snapshot" in run.inputs else None
        gate = self._newest_gate(actual)
        with write_transaction(self.catalog.engine) as connection:
            existing = store.find_version_by_sha(connection, actual)
            if existing is not None:
                raise ConflictError(f"these weights are already registered as v{existing}")
            parent_version = (
                self._get(connection, parent).version
                if parent is not None
                else self._parent(connection, config)
            )
            version = store.insert_version(
                connection,
                {
                    "weights_sha256": actual,
                    "model_path": self._stored_path(artifact.folder),
                    "task": artifact.schema.task.value,
                    "family": artifact.family,
                    "run_id": run.id if run is not None else None,
                    "snapshot_id": snapshot,
                    "config": config,
                    "metrics": dict(artifact.metrics),
                    "gate": None if gate is None else gate.to_dict(),
                    "artifacts": {},
                    "parent_version": parent_version,
                    "description": description,
                    "created_by": actor,
                },
            )
            store.add_event(connection, "register", version, actor, reason=description)
            registered = self._get(connection, version)
        self._mirrored()
        return registered

    def refresh_gate(self, reference: str | int) -> ModelVersion:
        """Re-read the version's gate verdict from its newest evaluation run."""
        version = self.get(reference)
        gate = self._newest_gate(version.weights_sha256)
        if gate is None or gate == version.gate:
            return version
        with write_transaction(self.catalog.engine) as connection:
            store.update_version(connection, version.version, gate=gate.to_dict())
            return self._get(connection, version.version)

    def promote(
        self, reference: str | int, alias: str, actor: str, reason: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` at the version, if the rules allow it."""
        alias, actor = validate_alias(alias), _actor(actor)
        version = self.refresh_gate(reference)
        _require_gate(version, alias)
        with write_transaction(self.catalog.engine) as connection:
            current = store.alias_map(connection).get(alias)
            if current == version.version:
                raise ConflictError(f"{alias} already points at v{version.version}")
            if alias in self.approval_required and not _approved(connection, version.version, alias):
                raise ValidationError(
                    f"v{version.version} needs an approval before it can become {alias}: "
                    f"'visionloop models approve v{version.version} --reason ...' by a reviewer"
                )
            store.set_alias(connection, alias, version.version, actor)
            store.add_event(
                connection,
                "promote",
                version.version,
                actor,
                alias=alias,
                previous_version=current,
                reason=reason,
            )
            promoted = self._get(connection, version.version)
        self._mirrored()
        return promoted

    def approve(
        self,
        reference: str | int,
        actor: str,
        reason: str,
        *,
        alias: str = PRODUCTION,
        approved: bool = True,
    ) -> RegistryEvent:
        """Record a person's decision that the version may (or may not) become ``alias``."""
        alias, actor = validate_alias(alias), _actor(actor)
        if not reason.strip():
            raise ValidationError("an approval decision needs a reason")
        version = self.refresh_gate(reference)
        if approved:
            _require_gate(version, alias)
            if self.separate_approver and actor == version.created_by:
                raise ValidationError(
                    f"{actor} registered v{version.version}, so someone else must approve it "
                    "(registry.separate_approver)"
                )
        with write_transaction(self.catalog.engine) as connection:
            store.add_event(
                connection,
                "approve" if approved else "reject",
                version.version,
                actor,
                alias=alias,
                reason=reason.strip(),
            )
            decision = store.list_events(connection, version=version.version, limit=1)[0]
        self._mirrored()
        return decision

    def rollback(self, alias: str, actor: str, reason: str | None = None) -> ModelVersion:
        """Move ``alias`` back to the version it held before its current one."""
        alias, actor = validate_alias(alias), _actor(actor)
        with write_transaction(self.catalog.engine) as connection:
            held = _alias_stack(store.alias_events(connection, alias))
            current = store.alias_map(connection).get(alias)
            if current is None:
                raise NotFoundError(f"no alias {alias!r}")
            if len(held) < 2:
                raise ValidationError(f"{alias} has no earlier version to roll back to (it holds v{current})")
            target = held[-2]
            store.set_alias(connection, alias, target, actor)
            store.add_event(
                connection, "rollback", target, actor, alias=alias, previous_version=current, reason=reason
            )
            restored = self._get(connection, target)
        self._mirrored()
        return restored

    def add_artifact(self, reference: str | int, name: str, info: dict[str, Any], actor: str) -> ModelVersion:
        """Attach a derived file (an ONNX export, say) to the version, under ``name``."""
        actor = _actor(actor)
        with write_transaction(self.catalog.engine) as connection:
            version = self._get(connection, reference)
            store.update_version(connection, version.version, artifacts={**version.artifacts, name: info})
            store.add_event(connection, "artifact", version.version, actor, reason=name)
            updated = self._get(connection, version.version)
        self._mirrored()
        return updated

    def sync_mirror(self) -> dict[str, int]:
        """Make the mirror (MLflow) match the registry now; errors are raised, not logged."""
        if self.mirror is None:
            raise ValidationError("no mirror is configured (registry.mlflow_uri in visionloop.yaml)")
        report = self.mirror.sync(self.versions(), self.aliases(), self.history())
        self.mirror_error = None
        return dict(report)

    def _mirrored(self) -> None:
        """After a committed change: the registry stays the truth if the mirror is unreachable."""
        if self.mirror is None:
            return
        try:
            self.sync_mirror()
        except Exception as exc:  # noqa: BLE001  # any MLflow failure: the change itself is committed
            self.mirror_error = f"{type(exc).__name__}: {exc}"
            logger.warning("could not mirror the registry (%s); retry with 'visionloop models sync'", exc)

    # -- helpers ----------------------------------------------------------------------------
    def _get(self, connection: Connection, reference: str | int) -> ModelVersion:
        number = reference if isinstance(reference, int) else parse_version(reference)
        if number is None:
            alias = validate_alias(str(reference))
            number = store.alias_map(connection).get(alias)
            if number is None:
                raise NotFoundError(f"no model version or alias {reference!r}")
        version = store.read_version(connection, number)
        if version is None:
            raise NotFoundError(f"no model version v{number}")
        return version

    def _training_run(self, run_id: str | None) -> Any:
        if run_id is None:
            return None
        try:
            run = self.catalog.get_run(run_id)
        except NotFoundError:
            return None  # a model trained in another project: registered without run lineage
        if run.kind != TRAIN_KIND or run.status != "succeeded":
            raise ValidationError(f"run {run_id} is not a finished training run ({run.kind}, {run.status})")
        return run

    def _newest_gate(self, weights_sha256: str) -> GateStatus | None:
        for run in self.catalog.runs_with_input(
            EVALUATE_KIND, "model_sha256", weights_sha256
        ):  # newest first
            gate = (run.outputs or {}).get("gate")
            if isinstance(gate, dict) and "passed" in gate:
                return GateStatus(bool(gate["passed"]), [str(r) for r in gate.get("reasons", [])], run.id)
        return None

    def _parent(self, connection: Connection, config: dict[str, Any]) -> int | None:
        """The registered version whose weights the training run started from, found by content."""
        weights = str((config.get("model") or {}).get("weights") or "")
        path = Path(weights).expanduser()
        if path.is_dir():
            path = read_model_description(path).folder / WEIGHTS_NAME
        if not weights or not path.is_file():
            return None  # imagenet, hub, none: not a registered model
        return store.find_version_by_sha(connection, sha256_file(path))

    def _stored_path(self, folder: Path) -> str:
        resolved = folder.resolve()
        return str(resolved.relative_to(self.root)) if resolved.is_relative_to(self.root) else str(resolved)


def _actor(actor: str) -> str:
    actor = actor.strip()
    if not actor or len(actor) > ACTOR_MAX_LENGTH:
        raise ValidationError(f"an actor name of 1 to {ACTOR_MAX_LENGTH} characters is needed")
    return actor


def _require_gate(version: ModelVersion, alias: str) -> None:
    if version.gate is None:
        if alias != CANDIDATE:
            raise ValidationError(
                f"v{version.version} has not been evaluated, so it can only be a {CANDIDATE}: run "
                f"'visionloop evaluate {version.run_id or version.model_path}' first"
            )
        return
    if not version.gate.passed:
        raise ValidationError(
            f"v{version.version} failed its gate (evaluation {version.gate.evaluation_run[:8]}): "
            + "; ".join(version.gate.reasons)
        )


def _approved(connection: Connection, version: int, alias: str) -> bool:
    decision = latest_decisions(store.list_events(connection, version=version)).get(version, {}).get(alias)
    return decision is not None and decision.action == "approve"


def _alias_stack(events: list[RegistryEvent]) -> list[int]:
    """The versions an alias held, as a stack: a promotion pushes, a rollback pops back to its target."""
    held: list[int] = []
    for event in events:
        if event.action == "promote":
            held.append(event.version)
        else:
            while held and held[-1] != event.version:
                held.pop()
            if not held:
                held.append(event.version)
    return held
