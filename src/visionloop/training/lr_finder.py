"""Learning-rate range test: raise the rate exponentially over a few hundred steps and watch the loss.

The suggestion is the rate where the smoothed loss falls fastest (steepest negative slope on a
log scale), the usual reading of Smith's range test; the rate at the minimum loss is reported
too (training there is usually already too fast). The model is thrown away afterwards.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from visionloop.datasets.records import ImageReader, snapshot_records
from visionloop.project import Project
from visionloop.storage.filesystem import atomic_write_local
from visionloop.training.config import TrainConfig
from visionloop.training.data import collate_with, split_records
from visionloop.training.trainer import Trainer, build_optimizer

__all__ = ["LearningRateSweep", "find_learning_rate"]


@dataclass
class LearningRateSweep:
    rates: list[float]
    losses: list[float]
    suggestion: float
    lr_at_min_loss: float
    plot_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suggestion": self.suggestion,
            "lr_at_min_loss": self.lr_at_min_loss,
            "plot": None if self.plot_path is None else str(self.plot_path),
            "rates": self.rates,
            "losses": self.losses,
        }


def sweep(
    model: nn.Module,
    loss_of_batch: Any,
    batches: Any,
    config: TrainConfig,
    start: float = 1e-6,
    end: float = 1.0,
    steps: int = 100,
    smoothing: float = 0.9,
) -> LearningRateSweep:
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = build_optimizer(parameters, config.optim.model_copy(update={"lr": start}))
    factor = (end / start) ** (1 / max(1, steps - 1))
    rates: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    model.train()
    iterator = iter(batches)
    for step in range(steps):
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(batches)
            batch = next(iterator)
        lr = start * factor**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = torch.stack(list(loss_of_batch(model, batch).values())).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        value = float(loss.item())
        average = smoothing * average + (1 - smoothing) * value
        smoothed = average / (1 - smoothing ** (step + 1))
        if not math.isfinite(smoothed) or (step > 10 and smoothed > 4 * best):
            break
        best = min(best, smoothed)
        rates.append(lr)
        losses.append(smoothed)
    if len(rates) < 3:
        raise ValueError("the loss diverged immediately; start the sweep at a lower rate")
    log_rates = np.log10(rates)
    slopes = np.gradient(np.array(losses), log_rates)
    # Ignore the noisy first tenth of the sweep when looking for the steepest descent.
    skip = max(1, len(rates) // 10)
    steepest = skip + int(np.argmin(slopes[skip:])) if len(rates) > skip + 1 else int(np.argmin(slopes))
    return LearningRateSweep(
        rates=rates,
        losses=losses,
        suggestion=float(rates[steepest]),
        lr_at_min_loss=float(rates[int(np.argmin(losses))]),
    )


def plot_sweep(found: LearningRateSweep, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(found.rates, found.losses)
    axes.set_xscale("log")
    axes.axvline(found.suggestion, color="tab:red", linestyle="--", label=f"suggested {found.suggestion:.1e}")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("smoothed training loss")
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_local(str(path), buffer.getvalue())
    return path


def find_learning_rate(project: Project, config: TrainConfig, steps: int = 100) -> LearningRateSweep:
    """Run the range test on the project's training split and save ``lr_finder.png``."""
    torch.manual_seed(config.seed)
    with project.open_catalog() as catalog:
        schema = catalog.get_schema() or project.config.labels
        snapshot_id = config.data.snapshot or catalog.create_snapshot(name="lr-finder").id
        train, _ = split_records(snapshot_records(catalog, snapshot_id), config.data, config.seed)
    reader = ImageReader(project.config.s3.fsspec_options())
    trainer = Trainer(config, schema, train, [], reader, run_dir=project.root / "runs")
    family = trainer.family
    model, _ = family.build(schema, config.model)
    loader = torch.utils.data.DataLoader(
        trainer.train_dataset(),
        batch_size=config.optim.batch_size,
        shuffle=True,
        collate_fn=collate_with(family),
        num_workers=config.workers,
        generator=torch.Generator().manual_seed(config.seed),
    )
    found = sweep(model, family.loss, loader, config, steps=steps)
    found.plot_path = plot_sweep(found, project.root / "lr_finder.png")
    return found
