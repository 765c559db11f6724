"""How an epoch is cut into batches: never a last batch too small for batch norm, no image
dropped, and batch ``k`` still starting at ``k * size`` so a resume finds its place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tiny_projects import make_project
from visionloop.cli.app import app
from visionloop.core.schema import TaskType
from visionloop.training.trainer import epoch_batches


@pytest.mark.parametrize(
    ("count", "size", "smallest", "sizes"),
    [
        (9, 4, 2, [4, 5]),  # a tail of one joins the batch before it
        (10, 4, 2, [4, 4, 2]),
        (8, 4, 2, [4, 4]),
        (1, 4, 2, [1]),  # nothing to join: the one batch there is
        (13, 4, 4, [4, 4, 5]),  # two workers: at least two images each
        (14, 4, 4, [4, 4, 6]),
        (0, 4, 2, []),
    ],
)
def test_the_last_batch_is_never_too_small(count: int, size: int, smallest: int, sizes: list[int]) -> None:
    batches = epoch_batches(list(range(count)), size, smallest)
    assert [len(batch) for batch in batches] == sizes
    assert [index for batch in batches for index in batch] == list(range(count))  # none lost
    assert all(batch[0] == k * size for k, batch in enumerate(batches))


def test_training_whose_last_batch_would_hold_one_image_succeeds(tmp_path: Path) -> None:
    """Found by bench/soak.py: 385 training images in batches of 32 ended each epoch with a batch
    of one, and batch norm refused it ('Expected more than 1 value per channel')."""
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=4)
    runner = CliRunner()
    probe = runner.invoke(
        app, ["-p", str(project.root), "train", "model.image_size=32", "optim.epochs=1", "--json"]
    )
    assert probe.exit_code == 0, probe.output
    train_items = json.loads(probe.output)["train_items"]
    args = ["model.image_size=32", "optim.epochs=1", f"optim.batch_size={train_items - 1}"]
    answer = runner.invoke(app, ["-p", str(project.root), "train", *args, "--json"])
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.output)["steps"] == 1
