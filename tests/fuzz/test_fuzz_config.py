"""Settings files a user or another tool writes: the project's ``visionloop.yaml``, training
config files and ``key=value`` overrides, and a model folder's ``model.json``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from fuzz.harness import fuzz_test, returns_or_refuses
from fuzz.mutations import mutate_bytes, mutate_tree, odd_strings
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.project.config import ProjectConfig, dump_config, load_config
from visionloop.tasks.model_files import ARTIFACT_VERSION, META_NAME, read_model_description
from visionloop.training.config import TrainConfig, apply_overrides, load_train_config

CHEAP = 2.0
_SCHEMA = LabelSchema(task=TaskType.KEYPOINTS, classes=["cat"], keypoints=["a", "b"], skeleton=[("a", "b")])
_PROJECT = yaml.safe_load(dump_config(ProjectConfig(name="fuzz", labels=_SCHEMA)))
_TRAIN = TrainConfig().model_dump(mode="json")
_MODEL = {
    "version": ARTIFACT_VERSION,
    "schema": _SCHEMA.model_dump(mode="json"),
    "family": "keypoints",
    "model": {"image_size": 64, "backbone": "tiny"},
    "weights_sha256": "0" * 64,
    "run_id": "r-1",
    "metrics": {"ap": 0.5},
    "extra": {},
}


def _document(data: st.DataObject, valid: Any, dump: Any) -> bytes:
    """``valid`` with a few fields mutated, or its text with bytes corrupted, or hostile text."""
    text: bytes = dump(valid)
    how = data.draw(st.sampled_from(["mutate", "bytes", "nested", "binary"]), label="how")
    if how == "mutate":
        return bytes(dump(mutate_tree(data, valid)))
    if how == "bytes":
        return mutate_bytes(data, text)
    if how == "nested":
        depth = data.draw(st.sampled_from([100, 1_500]), label="depth")
        return data.draw(st.sampled_from([b"[" * depth, b"{a: " * depth, b'{"a":' * depth, b"- " * depth]))
    return data.draw(st.binary(max_size=200), label="binary")


def _yaml(value: Any) -> bytes:
    return yaml.safe_dump(value, allow_unicode=True).encode("utf-8", "surrogatepass")


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@fuzz_test(scale=CHEAP)
def test_project_config(data: st.DataObject) -> None:
    """``visionloop.yaml``: a ``ProjectConfig`` or a ``ConfigError`` naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "visionloop.yaml"
        path.write_bytes(_document(data, _PROJECT, _yaml))
        config = returns_or_refuses(load_config, path)
        if config is not None:
            assert load_config(path) == config


@fuzz_test()  # a deeply nested file costs PyYAML most of a second to refuse
def test_training_config_file_and_overrides(data: st.DataObject) -> None:
    """``visionloop train --config FILE --set key=value``: a ``TrainConfig`` or a ``ConfigError``."""
    keys = st.sampled_from(["optim.lr", "epochs", "a..b", ""]) | odd_strings()
    overrides = data.draw(st.lists(st.builds("{}={}".format, keys, odd_strings()), max_size=2), "overrides")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.yaml"
        path.write_bytes(_document(data, _TRAIN, _yaml))
        returns_or_refuses(load_train_config, None, path, overrides)
        returns_or_refuses(apply_overrides, {}, overrides)


@fuzz_test(scale=CHEAP)
def test_model_description(data: st.DataObject) -> None:
    """``model.json`` of a model folder (downloaded, copied, edited): a description whose
    properties work, or a ``ValidationError`` naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / META_NAME).write_bytes(_document(data, _MODEL, _json))
        description = returns_or_refuses(read_model_description, Path(tmp))
        if description is not None:
            returns_or_refuses(lambda: description.image_size)
            assert description.version
