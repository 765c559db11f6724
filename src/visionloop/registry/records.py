"""What the registry hands out: model versions with their lineage, and the events of its audit trail."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from visionloop.core.errors import ValidationError

__all__ = [
    "CANDIDATE",
    "PRODUCTION",
    "STAGING",
    "EventAction",
    "GateStatus",
    "ModelVersion",
    "RegistryEvent",
    "latest_decisions",
    "parse_version",
    "validate_alias",
]

CANDIDATE, STAGING, PRODUCTION = "candidate", "staging", "production"
EventAction = Literal["register", "promote", "rollback", "approve", "reject", "artifact"]

_ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_VERSION = re.compile(r"v?([1-9][0-9]{0,9})")


def validate_alias(alias: str) -> str:
    """Alias names are short lower-case words (``production``, ``edge-eu``): they appear in URLs
    and file names, and must never be mistaken for a version number."""
    if not _ALIAS.fullmatch(alias) or _VERSION.fullmatch(alias):
        raise ValidationError(
            f"alias {alias!r}: use a lower-case letter, then up to 63 letters, digits, '-' or '_' "
            "(and not v<number>, which names a version)"
        )
    return alias


def parse_version(reference: str) -> int | None:
    """``"3"`` or ``"v3"`` as 3; ``None`` when ``reference`` is not a version number (an alias)."""
    match = _VERSION.fullmatch(reference.strip())
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class GateStatus:
    """The quality gate's verdict on a version, from its newest evaluation run."""

    passed: bool
    reasons: list[str]
    evaluation_run: str

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons), "evaluation_run": self.evaluation_run}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateStatus:
        return cls(
            bool(data["passed"]), [str(reason) for reason in data["reasons"]], str(data["evaluation_run"])
        )


@dataclass(frozen=True)
class ModelVersion:
    """One registered model: the weights (by sha256) and where they came from.

    ``parent_version``: the registered version whose weights training started from, if any.
    ``gate``: ``None`` until the version has been evaluated.
    """

    version: int
    weights_sha256: str
    model_path: str
    task: str
    family: str
    run_id: str | None
    snapshot_id: str | None
    config: dict[str, Any]
    metrics: dict[str, Any]
    gate: GateStatus | None
    artifacts: dict[str, Any]
    parent_version: int | None
    description: str | None
    created_by: str
    created_at: datetime
    aliases: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "name": self.name,
            "aliases": list(self.aliases),
            "weights_sha256": self.weights_sha256,
            "model_path": self.model_path,
            "task": self.task,
            "family": self.family,
            "run_id": self.run_id,
            "snapshot_id": self.snapshot_id,
            "config": self.config,
            "metrics": self.metrics,
            "gate": None if self.gate is None else self.gate.to_dict(),
            "artifacts": self.artifacts,
            "parent_version": self.parent_version,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class RegistryEvent:
    """One change in the registry, never edited afterwards: who did what to which version, when
    and why. For ``promote`` and ``rollback``, ``previous_version`` is what the alias held."""

    id: int
    action: EventAction
    version: int
    alias: str | None
    previous_version: int | None
    actor: str
    reason: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "version": self.version,
            "alias": self.alias,
            "previous_version": self.previous_version,
            "actor": self.actor,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
        }


def latest_decisions(events: Iterable[RegistryEvent]) -> dict[int, dict[str, RegistryEvent]]:
    """The newest approve/reject decision per version and alias, from events oldest first:
    the one that counts when the alias asks for an approval."""
    decisions: dict[int, dict[str, RegistryEvent]] = {}
    for event in events:
        if event.action in ("approve", "reject") and event.alias:
            decisions.setdefault(event.version, {})[event.alias] = event
    return decisions
