"""Model registry: versions with lineage, aliases, approvals and rollback (store and client layers;
the REST layer lives in :mod:`visionloop.server`)."""

from visionloop.registry.client import ModelRegistry
from visionloop.registry.factory import project_registry
from visionloop.registry.records import (
    CANDIDATE,
    PRODUCTION,
    STAGING,
    GateStatus,
    ModelVersion,
    RegistryEvent,
    parse_version,
    validate_alias,
)

__all__ = [
    "CANDIDATE",
    "PRODUCTION",
    "STAGING",
    "GateStatus",
    "ModelRegistry",
    "ModelVersion",
    "RegistryEvent",
    "parse_version",
    "project_registry",
    "validate_alias",
]
