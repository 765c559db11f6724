"""Connecting to Ray for the ``ray`` executor: one place that imports it and starts or joins it.

Ray is an optional extra; the local executor never imports it. With no address and no
``$RAY_ADDRESS``, a Ray instance is started for this process and stops with it. Its servers
listen on every interface (Ray 2.60 has no bind address, and takes the machine's address as the
node's even when asked for 127.0.0.1), so what protects it is Ray's token authentication, which
Ray turns on for such an instance unless ``RAY_AUTH_MODE=disabled`` (token in
``~/.ray/auth_token``). A cluster is joined by
address: ``auto`` on a cluster node, ``ray://head:10001`` through Ray Client.
"""

from __future__ import annotations

import os
from typing import Any

from visionloop.core.errors import ConfigError, MissingDependencyError
from visionloop.project.config import ExecutorSettings
from visionloop.project.project import Project

__all__ = ["choose_executor", "ray_for_project", "ray_module", "ray_storage", "shared_catalog_problem"]


def choose_executor(
    settings: ExecutorSettings,
    kind: str | None = None,
    address: str | None = None,
    workers: int | None = None,
) -> ExecutorSettings:
    """The project's ``executor:`` settings with a command's choices on top."""
    if kind is not None and kind not in ("local", "ray"):
        raise ConfigError(f"unknown executor {kind!r}: use local or ray")
    changes: dict[str, object] = {"kind": kind, "address": address, "workers": workers}
    return settings.model_copy(update={key: value for key, value in changes.items() if value is not None})


def ray_module(settings: ExecutorSettings, purpose: str) -> Any:
    """The ``ray`` module, connected (an existing connection in this process is kept)."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("ray", "ray", purpose) from exc
    if not ray.is_initialized():
        address = settings.address or os.environ.get("RAY_ADDRESS") or None
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    return ray


def ray_for_project(settings: ExecutorSettings, project: Project, purpose: str) -> Any:
    """:func:`ray_module` for work whose Ray workers write to the project's catalog themselves."""
    ray = ray_module(settings, purpose)
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    problem = shared_catalog_problem(project.catalog_url, nodes)
    if problem:
        raise ConfigError(f"{project.root}: {problem}")
    return ray


def shared_catalog_problem(catalog_url: str, nodes: int) -> str | None:
    """Why workers on ``nodes`` machines cannot share this catalog, if they cannot: a SQLite file
    is one machine's (its locks do not hold over network file systems)."""
    if nodes > 1 and catalog_url.startswith("sqlite"):
        return (
            f"the Ray cluster has {nodes} nodes, and their workers cannot share a SQLite catalog; "
            "use PostgreSQL (catalog: postgresql://...) or a Ray instance on this machine"
        )
    return None


def ray_storage(settings: ExecutorSettings, default: str) -> str:
    """Where Ray Tune and Ray Train keep their state: the configured shared folder or S3 prefix,
    else ``default`` (a local folder, enough for a Ray instance on this machine)."""
    return settings.storage or default
