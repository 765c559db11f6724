"""``model.json`` read without PyTorch gives what the PyTorch reader gives, and the torch-free
modules the edge runtime builds on really import no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_models import write_model
from visionloop.core.errors import ValidationError
from visionloop.models.artifact import read_artifact
from visionloop.tasks.model_files import read_model_description


def test_the_description_agrees_with_the_artifact(tmp_path: Path) -> None:
    artifact = write_model(tmp_path / "model", "heatmap", image_size=48)
    described = read_model_description(artifact.folder)
    assert described.schema == artifact.schema
    assert (
        (described.family, described.image_size) == ("heatmap", 48) == (artifact.family, artifact.image_size)
    )
    assert described.version == artifact.version
    assert described.weights_sha256 == artifact.weights_sha256


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda meta: meta.pop("schema"), "malformed model description"),
        (lambda meta: meta.update(version=99), "unsupported model description version"),
        (lambda meta: meta["model"].update(image_size="big"), "no valid image_size"),
    ],
)
def test_a_damaged_description_is_refused(tmp_path: Path, edit, reason: str) -> None:  # type: ignore[no-untyped-def]
    folder = write_model(tmp_path / "model", "classifier").folder
    meta = json.loads((folder / "model.json").read_text())
    edit(meta)
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValidationError, match=reason):
        read_model_description(folder).image_size  # noqa: B018


def test_a_deeply_nested_description_is_refused(tmp_path: Path) -> None:
    """Found by fuzzing: the JSON decoder's RecursionError escaped."""
    (tmp_path / "model.json").write_text("[" * 100_000)
    with pytest.raises(ValidationError, match="nested too deeply"):
        read_model_description(tmp_path)


def test_a_folder_without_a_description_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a visionloop model"):
        read_model_description(tmp_path)
    with pytest.raises(ValidationError, match="not a visionloop model"):
        read_artifact(tmp_path)


def test_the_shared_inference_modules_import_no_torch() -> None:
    modules = [
        "visionloop.tasks.model_files",
        "visionloop.tasks.onnx_files",
        "visionloop.tasks.onnx_session",
        "visionloop.tasks.outputs",
        "visionloop.tasks.rescale",
        "visionloop.imaging.model_input",
        "visionloop.active.uncertainty",
    ]
    code = "import sys\n" + "".join(f"import {name}\n" for name in modules)
    code += "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
