"""Projects: ``visionloop.yaml`` plus the catalog and storage it names."""

from visionloop.project.config import (
    CONFIG_NAME,
    ExecutorSettings,
    IngestSettings,
    ProjectConfig,
    S3Options,
    load_config,
)
from visionloop.project.project import Project

__all__ = [
    "CONFIG_NAME",
    "ExecutorSettings",
    "IngestSettings",
    "Project",
    "ProjectConfig",
    "S3Options",
    "load_config",
]
