"""Weights load only as tensors: pickled objects are refused before they run, checksums are
checked, and what is saved loads back bit for bit with the sha256 of its bytes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

from visionloop.core.errors import ValidationError
from visionloop.models.weights import load_weights, save_weights, sha256_file


class _RunsCodeWhenUnpickled:
    """A pickle payload: unpickling it calls os.mkdir(marker), standing in for any command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def test_a_pickle_payload_in_a_pth_file_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "model.pth"
    torch.save({"weight": torch.zeros(2), "evil": _RunsCodeWhenUnpickled(marker)}, path)

    with pytest.raises(ValidationError, match="refused or unreadable"):
        load_weights(path)
    assert not marker.exists()


def test_saved_weights_load_back_exactly_with_the_sha256_of_their_bytes(tmp_path: Path) -> None:
    state = {"conv.weight": torch.randn(4, 3, 3, 3), "fc.bias": torch.arange(5, dtype=torch.float32)}
    # A channels-last tensor (as the trainer's models hold) is saved contiguous and loads equal.
    state["conv.weight"] = state["conv.weight"].contiguous(memory_format=torch.channels_last)
    path = tmp_path / "w.safetensors"

    sha = save_weights(state, path)
    loaded = load_weights(path, expected_sha256=sha)

    assert sha == sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.sha256 == sha
    assert set(loaded.state_dict) == set(state)
    for name, tensor in state.items():
        assert torch.equal(loaded.state_dict[name], tensor)


def test_a_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_weights({"w": torch.ones(3)}, path)
    with pytest.raises(ValidationError, match="does not match the expected"):
        load_weights(path, expected_sha256="0" * 64)


def test_plain_pytorch_state_dicts_load_with_or_without_a_wrapper(tmp_path: Path) -> None:
    state = {"layer.weight": torch.randn(2, 2)}
    for wrapper in (state, {"state_dict": state}, {"model": state, "epoch": 3}):
        path = tmp_path / "w.pt"
        torch.save(wrapper, path)
        assert torch.equal(load_weights(path).state_dict["layer.weight"], state["layer.weight"])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("w.safetensors", b"not a safetensors file at all", "not a readable safetensors"),
        ("w.pth", b"\x00\x01truncated", "refused or unreadable"),
        ("w.npy", b"\x93NUMPY", "unsupported weights file"),
    ],
)
def test_unreadable_or_unknown_files_are_refused_clearly(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValidationError, match=message):
        load_weights(path)


def test_a_pth_holding_something_other_than_tensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save({"layer.weight": [1.0, 2.0]}, path)
    with pytest.raises(ValidationError, match="state dict mapping names to tensors"):
        load_weights(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not found"):
        load_weights(tmp_path / "absent.safetensors")
