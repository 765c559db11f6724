"""Models for the edge runtime tests: a classifier trained one step through the CLI and exported
(as users make one), and an untrained heatmap pose model exported straight from its network."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tiny_models import photos, write_model
from tiny_projects import make_project
from visionloop.cli.app import app
from visionloop.core.schema import TaskType
from visionloop.ingest import IngestOptions, ingest
from visionloop.project import Project
from visionloop.storage import Filesystem
from visionloop.tasks.onnx_export import export_onnx, export_project_model
from visionloop.tasks.registry import resolve_model_folder

pytest.importorskip("onnxruntime")


@dataclass(frozen=True)
class EdgeProject:
    """A project whose ``images`` folder holds every item (PNGs plus larger JPEGs, so reduced
    JPEG decoding is exercised), a one-step model ``run_id`` and its exported ``model`` folder."""

    project: Project
    images: Path
    run_id: str
    model: Path


def _jpegs(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for index in range(count):
        height, width = 150 + 10 * index, 220 - 6 * index
        image = (rng.random((height, width, 3)) * 60).astype(np.uint8)
        image[:, : width // 2 if index % 2 else width] += 140  # left or whole bright, like the classes
        Image.fromarray(image).save(folder / f"photo_{index:02d}.jpg", quality=90)


@pytest.fixture(scope="session")
def edge_project(tmp_path_factory: pytest.TempPathFactory) -> EdgeProject:
    root = tmp_path_factory.mktemp("edge-project")
    project = make_project(root, TaskType.CLASSIFICATION, per_split=3, unlabeled=6)
    _jpegs(root / "images" / "photos", 6)
    with project.open_catalog() as catalog:
        ingest(catalog, Filesystem(str(root / "images" / "photos")), IngestOptions(split="train", workers=1))
    result = CliRunner().invoke(
        app, ["-p", str(project.root), "train", "model.image_size=32", "optim.max_steps=1", "--json"]
    )
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.output)["run_id"]
    export_project_model(project, run_id, parity_images=8)
    return EdgeProject(project, root / "images", run_id, resolve_model_folder(project, run_id))


@pytest.fixture(scope="session")
def pose_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("edge-pose") / "model"
    write_model(folder, "heatmap", image_size=32)
    export_onnx(folder, photos(2))
    return folder


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Assorted-size photos as PNG and JPEG files, plus a broken one and a text file."""
    folder = tmp_path_factory.mktemp("edge-photos")
    for index, image in enumerate(photos(8, seed=3)):
        kind = "png" if index % 2 else "jpg"
        Image.fromarray(image).save(folder / f"{index:02d}.{kind}")
    (folder / "nested").mkdir()
    Image.fromarray(photos(1, seed=4)[0]).save(folder / "nested" / "deep.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "notes.txt").write_text("not an image")
    return folder


EDGE_VENV = Path(__file__).resolve().parents[2] / ".venv-edge"
EDGE_INSTALL = "scripts/install-edge-venv.sh"


@pytest.fixture(scope="session")
def edge_python() -> Path:
    """The interpreter of the minimal edge environment (no PyTorch). Locally a missing one skips;
    in CI it fails, since CI must build it (as it must start every test server)."""
    python = EDGE_VENV / "bin" / "python"
    if not (EDGE_VENV / ".installed").is_file() or not python.is_file():
        reason = f"the minimal edge environment {EDGE_VENV} is not installed; `{EDGE_INSTALL}` installs it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return python
