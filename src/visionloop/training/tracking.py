"""Optional MLflow tracking: parameters once, metrics per epoch, the model folder at the end."""

from __future__ import annotations

from pathlib import Path

from visionloop.core.mappings import flatten
from visionloop.models.artifact import ModelArtifact
from visionloop.project.mlflow_store import experiment_id
from visionloop.training.checkpoint import LoopState
from visionloop.training.config import TrainConfig
from visionloop.training.trainer import TrainingObserver

__all__ = ["MlflowObserver"]


class MlflowObserver(TrainingObserver):
    """Mirrors a visionloop training run into an MLflow run (tagged with the visionloop run id)."""

    def __init__(self, config: TrainConfig, run_id: str, project_root: Path) -> None:
        import mlflow

        uri = config.tracking.mlflow_uri
        if uri is None:
            raise ValueError("MLflow tracking needs tracking.mlflow_uri")
        self._mlflow = mlflow
        mlflow.set_tracking_uri(uri)
        client = mlflow.MlflowClient(tracking_uri=uri)
        mlflow.set_experiment(
            experiment_id=experiment_id(client, config.tracking.experiment, uri, project_root)
        )
        self._run = mlflow.start_run(run_name=f"visionloop-{run_id[:8]}", tags={"visionloop.run_id": run_id})
        mlflow.log_params(
            {key: str(value)[:500] for key, value in flatten(config.model_dump(mode="json")).items()}
        )

    def on_epoch_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        self._mlflow.log_metrics(metrics, step=state.step)

    def on_finish(self, state: LoopState, artifact: ModelArtifact) -> None:
        self._mlflow.log_artifacts(str(artifact.folder), artifact_path="model")
        self._mlflow.end_run()
