"""The training loop: one function for every task, driven by the task's model family.

Reproducibility is designed in rather than hoped for: the batch order of epoch ``e`` is a
permutation seeded by (seed, e), each sample's augmentation has its own generator, and
checkpoints carry the torch RNG. A run resumed from its last checkpoint after ``kill -9`` replays
exactly the batches it had not done yet, so on CPU in deterministic mode it ends with the same
weights as a run that was never interrupted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.utils.data import DataLoader

from visionloop.core.errors import VisionloopError
from visionloop.core.labels import Label
from visionloop.core.schema import LabelSchema
from visionloop.datasets.records import LabeledRecord
from visionloop.models.artifact import ModelArtifact, write_artifact
from visionloop.models.backbones import WeightsInfo
from visionloop.models.weights import load_weights, save_weights
from visionloop.storage.filesystem import remove_temporaries
from visionloop.tasks.registry import get_task
from visionloop.tasks.spec import Batch, ModelFamily, TaskSpec
from visionloop.training.augment import build_augment
from visionloop.training.checkpoint import LoopState, load_checkpoint, save_checkpoint
from visionloop.training.config import OptimConfig, TrainConfig
from visionloop.training.data import ExampleDataset, collate_with
from visionloop.training.data_parallel import DataParallel

__all__ = [
    "TrainResult",
    "Trainer",
    "TrainingDivergedError",
    "TrainingObserver",
    "build_optimizer",
    "predict_records",
]

ImageReaderFn = Callable[[str], npt.NDArray[np.uint8]]


class TrainingDivergedError(VisionloopError):
    """The loss became NaN or infinite."""


class TrainingObserver:
    """Hooks for progress display, tracking and tuning; the defaults do nothing."""

    def on_start(self, total_steps: int, state: LoopState) -> None:
        """Called once with the planned number of optimiser steps."""

    def on_step(self, state: LoopState, losses: dict[str, float]) -> None:
        """Called after every optimiser step."""

    def on_epoch_end(self, state: LoopState, metrics: dict[str, float]) -> None:
        """Called after each epoch's validation; may raise to stop (e.g. an Optuna prune)."""

    def on_finish(self, state: LoopState, artifact: ModelArtifact) -> None:
        """Called once the model is saved."""


@dataclass(frozen=True)
class TrainResult:
    artifact: ModelArtifact
    state: LoopState
    weights: WeightsInfo
    headline_metric: str
    images_per_second: float


def _pick_device(config: TrainConfig) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def build_optimizer(parameters: list[nn.Parameter], config: OptimConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.momentum > 0,  # torch refuses Nesterov without momentum
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.RMSprop(
        parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def _schedule(config: OptimConfig, total_steps: int) -> Callable[[int], float]:
    warmup = config.warmup_steps

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if config.scheduler == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _to_device(batch: Batch, device: torch.device) -> Batch:
    if device.type == "cpu":
        return batch

    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device, non_blocking=True)
        if isinstance(value, dict):
            return {key: move(item) for key, item in value.items()}
        if isinstance(value, list):
            return [move(item) for item in value]
        return value

    return Batch(images=move(batch.images), targets=move(batch.targets), sizes=batch.sizes)


def _keep_frozen_norms_in_eval(model: nn.Module) -> None:
    """Batch-norm layers whose parameters are frozen keep their pretrained statistics."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
            parameter.requires_grad for parameter in module.parameters(recurse=False)
        ):
            module.eval()


def predict_records(
    model: nn.Module,
    family: ModelFamily,
    records: Sequence[LabeledRecord],
    read_image: ImageReaderFn,
    schema: LabelSchema,
    config: TrainConfig,
    batch_size: int = 16,
) -> tuple[list[Label], list[tuple[int, int]]]:
    model.eval()
    predictions: list[Label] = []
    sizes: list[tuple[int, int]] = []
    for start in range(0, len(records), batch_size):
        images = [read_image(record.uri) for record in records[start : start + batch_size]]
        predictions.extend(family.predict(model, images, schema, config.model))
        sizes.extend((int(image.shape[0]), int(image.shape[1])) for image in images)
    return predictions, sizes


def epoch_batches(order: list[int], size: int, smallest: int = 2) -> list[list[int]]:
    """``order`` cut into batches of ``size``; a last batch under ``smallest`` joins the one
    before it (a batch of one breaks batch norm, and dropping it would lose a labelled image).
    Only the last batch changes, so batch ``k`` still starts at ``k * size`` (resume relies on it)."""
    batches = [order[start : start + size] for start in range(0, len(order), size)]
    if len(batches) > 1 and len(batches[-1]) < smallest:
        tail = batches.pop()
        batches[-1] = batches[-1] + tail
    return batches


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        schema: LabelSchema,
        train_records: Sequence[LabeledRecord],
        val_records: Sequence[LabeledRecord],
        read_image: ImageReaderFn,
        run_dir: Path,
        run_id: str | None = None,
        observers: Sequence[TrainingObserver] = (),
        parallel: DataParallel | None = None,
    ) -> None:
        self.config = config
        self.schema = schema
        self.spec: TaskSpec = get_task(schema.task)
        self.family = self.spec.family(config.model.family)
        self.train_records = list(train_records)
        self.val_records = list(val_records)
        self.read_image = read_image
        self.run_dir = run_dir
        self.run_id = run_id
        self.observers = list(observers)
        self.parallel = parallel
        self.leader = parallel is None or parallel.leader

    # -- set-up ---------------------------------------------------------------------------
    def _configure_torch(self) -> None:
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        torch.manual_seed(self.config.seed)
        if self.config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)

    def _loader(self, dataset: ExampleDataset, batches: list[list[int]]) -> DataLoader[Any]:
        return DataLoader(
            dataset,
            batch_sampler=batches,
            collate_fn=collate_with(self.family),
            num_workers=self.config.workers,
            # Its own generator: creating a loader must not consume the global RNG, or a resumed
            # run would draw different dropout and sampler randomness than the original.
            generator=torch.Generator().manual_seed(self.config.seed),
        )

    def train_dataset(self) -> ExampleDataset:
        """The augmented training samples."""
        return ExampleDataset(
            self.train_records,
            self.read_image,
            self.schema,
            self.family,
            self.config.model,
            build_augment(self.config.augment, self.schema),
            seed=self.config.seed,
        )

    def steps_per_epoch(self) -> int:
        indices = list(range(len(self.train_records)))
        return len(epoch_batches(indices, self.config.optim.batch_size, self._smallest))

    @property
    def _smallest(self) -> int:
        """The smallest global batch a step may take: two images per worker, since batch norm
        in training mode cannot normalise a single value per channel."""
        return 2 * (self.parallel.world_size if self.parallel else 1)

    # -- the loop -------------------------------------------------------------------------
    def run(self, resume: bool = False) -> TrainResult | None:
        """Train (from the last checkpoint with ``resume``); the result, or ``None`` on the
        data-parallel workers other than rank 0."""
        self._configure_torch()
        device = self.parallel.device if self.parallel else _pick_device(self.config)
        model, weights_info = self.family.build(self.schema, self.config.model)
        model.to(device)
        parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
        optimizer = build_optimizer(parameters, self.config.optim)
        per_epoch = self.steps_per_epoch()
        total = per_epoch * self.config.optim.epochs
        if self.config.optim.max_steps is not None:
            total = min(total, self.config.optim.max_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(self.config.optim, total))
        checkpoints = self.run_dir / "checkpoints"
        if resume and self.leader:  # a kill between a write and its rename left a temporary file
            remove_temporaries(str(self.run_dir))
        state = (load_checkpoint(checkpoints, model, optimizer, scheduler) if resume else None) or LoopState()
        # The model the loss runs through: gradient-averaging across workers when data-parallel.
        trained = self.parallel.wrap(model) if self.parallel else model
        dataset = self.train_dataset()
        for observer in self.observers:
            observer.on_start(total, state)
        best_path = self.run_dir / "best.safetensors"
        # An epoch whose steps are done but whose end (validation, metrics, checkpoint) was not
        # reached (a kill after its last step's checkpoint) is closed before stopping at ``total``.
        while (
            not state.finished
            and state.epoch < self.config.optim.epochs
            and (state.step < total or state.step_in_epoch > 0)
        ):
            self._train_epoch(
                model, trained, optimizer, scheduler, dataset, device, state, total, checkpoints
            )
            metrics = self._validate(model, state) if self.leader else {}
            if self._track_best(metrics, state) if self.leader else False:
                save_weights(model.state_dict(), best_path)
            state.epoch += 1
            state.step_in_epoch = 0
            if self.leader and self._should_stop(state):
                state.finished = state.stopped_early = True
            if self.parallel:
                state = LoopState(**self.parallel.from_leader(state.to_dict()))
            # Observers before the checkpoint: a kill between the two repeats the epoch on resume
            # (observers record idempotently) instead of losing its metrics.
            for observer in self.observers:
                observer.on_epoch_end(state, metrics)
            self._checkpoint(checkpoints, model, optimizer, scheduler, state)
        state.finished = True
        self._checkpoint(checkpoints, model, optimizer, scheduler, state)
        if not self.leader:
            return None
        result = self._finish(model, state, weights_info, best_path)
        for observer in self.observers:
            observer.on_finish(state, result.artifact)
        return result

    def _checkpoint(
        self,
        folder: Path,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        state: LoopState,
    ) -> None:
        if self.leader:  # data-parallel workers hold the same weights; one writes them
            save_checkpoint(folder, model, optimizer, scheduler, state)

    def _batches(self, order: list[int]) -> tuple[list[list[int]], list[int]]:
        """The batches this process loads (its share of each when data-parallel) and each
        global batch's size."""
        batches = epoch_batches(order, self.config.optim.batch_size, self._smallest)
        shares = [self.parallel.share(batch) for batch in batches] if self.parallel else batches
        return shares, [len(batch) for batch in batches]

    def _train_epoch(
        self,
        model: nn.Module,
        trained: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        dataset: ExampleDataset,
        device: torch.device,
        state: LoopState,
        total: int,
        checkpoints: Path,
    ) -> None:
        dataset.set_epoch(state.epoch)
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + state.epoch)
        order = torch.randperm(len(dataset), generator=generator).tolist()
        batch_size = self.config.optim.batch_size
        batches, global_sizes = self._batches(order[state.step_in_epoch * batch_size :])
        if state.step_in_epoch == 0:
            state.loss_sum, state.loss_count = 0.0, 0
        model.train()
        _keep_frozen_norms_in_eval(model)
        started = time.perf_counter()
        for batch, global_size in zip(self._loader(dataset, batches), global_sizes, strict=False):
            if state.step >= total:  # max_steps reached inside this epoch (or before a resume)
                break
            losses = self.family.loss(trained, _to_device(batch, device))
            loss = torch.stack([value for value in losses.values()]).sum()
            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"the loss became {loss.item()} at step {state.step}; lower optim.lr "
                    f"(now {self.config.optim.lr}) or try --find-lr"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            if self.config.optim.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), self.config.optim.grad_clip)
            optimizer.step()
            scheduler.step()
            state.step += 1
            state.step_in_epoch += 1
            state.loss_sum += float(loss.item())
            state.loss_count += 1
            state.images_seen += global_size
            now = time.perf_counter()
            state.train_seconds += now - started
            started = now
            values = {name: float(value.item()) for name, value in losses.items()} | {
                "loss": float(loss.item())
            }
            for observer in self.observers:
                observer.on_step(state, values)
            if state.step % self.config.checkpoint.every_steps == 0:
                self._checkpoint(checkpoints, model, optimizer, scheduler, state)
            if state.step >= total:
                break

    def _validate(self, model: nn.Module, state: LoopState) -> dict[str, float]:
        metrics: dict[str, float] = {"train_loss": state.loss_sum / max(1, state.loss_count)}
        if self.val_records:
            predictions, sizes = predict_records(
                model, self.family, self.val_records, self.read_image, self.schema, self.config
            )
            computed = self.spec.metrics(
                [record.label for record in self.val_records], predictions, self.schema, sizes
            )
            metrics |= {
                f"val_{name}": float(value)
                for name, value in computed.items()
                if isinstance(value, int | float) and not isinstance(value, bool)
            }
        state.history.append({"epoch": state.epoch, "step": state.step, **metrics})
        return metrics

    def _track_best(self, metrics: dict[str, float], state: LoopState) -> bool:
        key = f"val_{self.spec.headline_metric}"
        value = metrics.get(key)
        if value is None or math.isnan(value):
            # No validation data: the latest weights are the result.
            state.best_epoch = state.epoch
            return True
        if state.best_value is None or value > state.best_value + self.config.early_stopping.min_delta:
            state.best_value, state.best_epoch, state.bad_evaluations = value, state.epoch, 0
            return True
        state.bad_evaluations += 1
        return False

    def _should_stop(self, state: LoopState) -> bool:
        patience = self.config.early_stopping.patience
        return patience is not None and state.bad_evaluations >= patience

    def _finish(
        self, model: nn.Module, state: LoopState, weights: WeightsInfo, best_path: Path
    ) -> TrainResult:
        state_dict = load_weights(best_path).state_dict if best_path.is_file() else model.state_dict()
        best = state.history[state.best_epoch] if state.best_epoch is not None and state.history else {}
        artifact = write_artifact(
            self.run_dir / "model",
            {name: tensor.cpu() for name, tensor in state_dict.items()},
            self.schema,
            self.config.model,
            self.family.name,
            self.run_id,
            metrics={key: value for key, value in best.items() if key.startswith("val_")},
            extra={"pretrained": weights.to_dict(), "best_epoch": state.best_epoch},
        )
        speed = state.images_seen / state.train_seconds if state.train_seconds > 0 else 0.0
        return TrainResult(
            artifact=artifact,
            state=state,
            weights=weights,
            headline_metric=self.spec.headline_metric,
            images_per_second=speed,
        )
