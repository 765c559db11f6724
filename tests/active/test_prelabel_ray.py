"""Pre-labeling on a local Ray instance gives exactly the local executor's predictions and embeddings
(issue 8), given the same number of compute threads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from tiny_models import write_model
from tiny_projects import make_project
from visionloop.active.prelabel import PrelabelOptions, prelabel
from visionloop.active.store import embeddings_dir, load_embeddings
from visionloop.core.schema import TaskType

pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Each Ray actor computes with one thread (one CPU each); so does the local run compared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_ray_prelabel_is_identical_to_local(tmp_path: Path, local_ray: None, one_torch_thread: None) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=2, unlabeled=12)
    model = write_model(tmp_path / "model", "classifier", image_size=32)
    here = prelabel(project, str(model.folder), PrelabelOptions(workers=0, batch_size=4, runtime="torch"))
    there = prelabel(
        project, str(model.folder), PrelabelOptions(workers=2, batch_size=4, runtime="torch", executor="ray")
    )
    assert there.predicted == here.predicted == 12 and not there.failed
    with project.open_catalog() as catalog:
        local, remote = catalog.run_predictions(here.run_id), catalog.run_predictions(there.run_id)
    assert local.keys() == remote.keys()
    for item, (label, score) in local.items():
        assert remote[item][0].to_dict() == label.to_dict() and remote[item][1] == score
    ids_here, rows_here = load_embeddings(embeddings_dir(project, here.run_id))
    ids_there, rows_there = load_embeddings(embeddings_dir(project, there.run_id))
    assert np.array_equal(np.sort(ids_here), np.sort(ids_there))
    assert np.array_equal(rows_here[np.argsort(ids_here)], rows_there[np.argsort(ids_there)])
