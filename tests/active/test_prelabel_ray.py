"""Pre-labeling on a local Ray instance gives the local executor's predictions (issue 8, part)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tiny_models import write_model
from tiny_projects import make_project
from visionloop.active.prelabel import PrelabelOptions, prelabel
from visionloop.active.store import embeddings_dir, load_embeddings
from visionloop.core.schema import TaskType

pytest.importorskip("ray")
pytestmark = pytest.mark.slow


def test_ray_prelabel_equals_local(tmp_path: Path, local_ray: None) -> None:
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
        assert remote[item][0].to_dict()["class_name"] == label.to_dict()["class_name"]
        assert remote[item][1] == pytest.approx(score, abs=1e-6)
    ids_here, rows_here = load_embeddings(embeddings_dir(project, here.run_id))
    ids_there, rows_there = load_embeddings(embeddings_dir(project, there.run_id))
    order = np.argsort(ids_there)
    assert np.array_equal(np.sort(ids_here), ids_there[order])
    # embeddings are stored as float16: allow one float16 step from float32 rounding differences
    assert np.allclose(rows_here[np.argsort(ids_here)], rows_there[order], rtol=2**-10, atol=2**-14)
