"""Where a project's MLflow experiments keep their artifacts.

An MLflow tracking *server* decides that itself. With a database URI (``sqlite:///...``,
``postgresql://...``) MLflow would default to ``./mlruns`` in whatever folder the command ran
from; visionloop puts them in the project instead (``mlflow-artifacts/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ARTIFACTS_FOLDER", "experiment_id"]

ARTIFACTS_FOLDER = "mlflow-artifacts"
_SERVERS = ("http://", "https://", "databricks")


def experiment_id(client: Any, name: str, uri: str, project_root: Path) -> str:
    """The id of experiment ``name`` through an ``MlflowClient``, created when missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = None if uri.startswith(_SERVERS) else (project_root / ARTIFACTS_FOLDER).as_uri()
    return str(client.create_experiment(name, artifact_location=location))
