"""The bad-input corpus across every format: at least 100 malformed files, none crashes a loader
or writes anything.

Each format's test module contributes ``malformed_inputs(folder) -> list[Path]``; this test
collects them all and loads each one through the registry.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import ModuleType

from checks import load_malformed

from hardening_tally import tally
from visionloop.formats.registry import LoadOptions, get_format

HERE = Path(__file__).parent
MODULES = {
    "coco": "test_coco.py",
    "yolo": "test_yolo.py",
    "voc": "test_voc.py",
    "imagefolder": "test_imagefolder.py",
    "labelstudio": "test_labelstudio.py",
    "cvat": "test_cvat.py",
    "labelbox": "test_labelbox.py",
    "sagemaker": "test_sagemaker.py",
    "deeplabcut": "test_deeplabcut.py",
}
MINIMUM = 100
SECONDS_PER_FILE = 5.0


def _module(file_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"corpus_{file_name[:-3]}", HERE / file_name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_malformed_file_is_rejected_with_file_locator_and_reason(tmp_path: Path) -> None:
    tried = 0
    for format_name, file_name in MODULES.items():
        folder = tmp_path / format_name
        folder.mkdir()
        inputs = _module(file_name).malformed_inputs(folder)
        assert len(inputs) >= 6, f"{format_name}: only {len(inputs)} malformed inputs"
        for path in inputs:
            tried += 1
            started = time.perf_counter()
            load_malformed(get_format(format_name), path, LoadOptions(), watch=tmp_path)
            assert time.perf_counter() - started < SECONDS_PER_FILE, (format_name, path)
    tally("bad inputs refused: annotation files", tried)
    assert tried >= MINIMUM, f"the corpus has {tried} malformed files, fewer than {MINIMUM}"
