"""Data-parallel training on Ray Train: N workers run visionloop's own training loop together.

Ray Train starts the workers and the PyTorch process group (gloo on CPU, NCCL on GPU); each
worker opens the project, takes its share of every batch (:mod:`data_parallel`) and trains
through DistributedDataParallel. Rank 0 writes checkpoints, metrics and the model to the run's
folder and the catalog, exactly where a local run writes them, so on a cluster every node must
see the project folder at the same path and the catalog must be a server (PostgreSQL). A run
interrupted on Ray resumes from its last checkpoint, on Ray or locally.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from visionloop.core.errors import VisionloopError
from visionloop.project import ExecutorSettings, Project
from visionloop.project.executor import ray_for_project, ray_storage
from visionloop.training.data_parallel import DataParallel
from visionloop.training.run import fit_run

__all__ = ["fit_on_ray"]


def _train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: its share of the stored run ``config["run_id"]``."""
    import ray.train
    import torch
    from ray.train.torch import get_device, prepare_model

    torch.set_num_threads(int(config["threads"]))
    context = ray.train.get_context()
    parallel = DataParallel(
        rank=context.get_world_rank(),
        world_size=context.get_world_size(),
        device=get_device(),
        wrap=lambda model: prepare_model(model, move_to_device=False),
    )
    project = Project.load(Path(config["root"]))
    fit_run(project, str(config["run_id"]), resume=bool(config["resume"]), parallel=parallel)


def fit_on_ray(project: Project, run_id: str, *, resume: bool, settings: ExecutorSettings) -> None:
    """Train the stored run ``run_id`` on ``settings.workers`` Ray Train workers and wait."""
    ray_for_project(settings, project, "Training with --executor ray")
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    use_gpu = settings.gpus_per_worker > 0
    resources = {"CPU": settings.cpus_per_worker} | ({"GPU": settings.gpus_per_worker} if use_gpu else {})
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config={
            "root": str(project.root.resolve()),
            "run_id": run_id,
            "resume": resume,
            "threads": max(1, math.floor(settings.cpus_per_worker)),
        },
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=settings.workers, use_gpu=use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=f"train-{run_id}",
            storage_path=ray_storage(settings, str(project.run_folder(run_id).resolve().parent / "ray")),
            failure_config=FailureConfig(max_failures=0),
        ),
    )
    try:
        trainer.fit()
    except Exception as exc:
        with project.open_catalog() as catalog:
            record = catalog.get_run(run_id)
            error = record.error
            if record.status == "running":  # a worker died before rank 0 could record why
                error = f"Ray Train failed: {type(exc).__name__}: {exc}"
                catalog.finish_run(run_id, {}, error=error)
        raise VisionloopError(f"training run {run_id} failed on Ray: {error}") from exc
