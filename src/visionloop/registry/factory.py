"""The registry a project's settings describe: its approval rules and, if configured, its MLflow mirror."""

from __future__ import annotations

from visionloop.catalog import Catalog
from visionloop.project import Project
from visionloop.registry.client import Mirror, ModelRegistry

__all__ = ["project_registry"]


def project_registry(project: Project, catalog: Catalog) -> ModelRegistry:
    settings = project.config.registry
    mirror: Mirror | None = None
    if settings.mlflow_uri:
        from visionloop.registry.mlflow_mirror import MlflowMirror

        mirror = MlflowMirror(
            settings.mlflow_uri,
            settings.mlflow_model or project.config.name,
            project.root,
            settings.mlflow_experiment,
        )
    return ModelRegistry(
        catalog, project.root, settings.approval_required, mirror, settings.separate_approver
    )
