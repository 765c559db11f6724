"""One exception hierarchy for the whole project.

Every error a user can trigger derives from :class:`VisionloopError`, carries a message that
names the file, item or setting involved and the reason, and maps to one HTTP status in
:data:`HTTP_STATUS_BY_ERROR` so servers never invent their own mapping.
"""

from __future__ import annotations


class VisionloopError(Exception):
    """Root of every error visionloop raises on purpose."""


class ConfigError(VisionloopError):
    """A project configuration or command option is invalid."""


class ProjectNotFoundError(ConfigError):
    """No visionloop project was found where one was expected."""


class ValidationError(VisionloopError):
    """A value (label, box, schema) does not satisfy its contract."""


class StorageError(VisionloopError):
    """Reading or writing a blob failed, or a location is not allowed."""


class UnsafePathError(StorageError):
    """A path built from user input would escape its root or uses a forbidden form."""


class CatalogError(VisionloopError):
    """The catalog database could not be opened, migrated or queried."""


class NotFoundError(CatalogError):
    """A requested item, run, snapshot or annotation does not exist."""


class ConflictError(CatalogError):
    """The request conflicts with stored state (e.g. an immutable record)."""


class MissingDependencyError(VisionloopError):
    """An optional dependency is needed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str, install: str | None = None) -> None:
        self.package = package
        self.extra = extra
        command = install or f"pip install 'visionloop[{extra}]'"
        super().__init__(f"{purpose} needs the '{package}' package. Install it with: {command}")


HTTP_STATUS_BY_ERROR: dict[type[VisionloopError], int] = {
    UnsafePathError: 400,
    ValidationError: 422,
    ConfigError: 400,
    ProjectNotFoundError: 404,
    NotFoundError: 404,
    ConflictError: 409,
    StorageError: 502,
    CatalogError: 500,
    MissingDependencyError: 501,
    VisionloopError: 500,
}


def http_status_for(error: VisionloopError) -> int:
    """The HTTP status of ``error``: the entry of its nearest class in the table."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS_BY_ERROR:
            return HTTP_STATUS_BY_ERROR[cls]
    return 500
