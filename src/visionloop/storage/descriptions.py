"""Versioned JSON description files and file digests, readable without any model runtime.

Model folders describe themselves in small JSON files (``model.json``, ``onnx.json``) and pin
their payloads by sha256. Reading them needs only the standard library, so the edge runtime
(ONNX Runtime, no PyTorch) and the training code share one reader.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from visionloop.core.errors import ValidationError

__all__ = ["read_description", "sha256_file"]


def read_description(path: Path, version: int, what: str, missing: str) -> dict[str, Any]:
    """A JSON description file written at ``version`` (``what``: e.g. "model description"),
    refused with ``missing`` when absent and with the reason when unreadable or of another version."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ValidationError(missing) from exc
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path}: unreadable {what}: {exc}") from exc
    except RecursionError as exc:  # the standard library's JSON decoder recurses per level
        raise ValidationError(f"{path}: unreadable {what}: nested too deeply") from exc
    if not isinstance(meta, dict) or meta.get("version") != version:
        raise ValidationError(f"{path}: unsupported {what} version")
    return meta


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
