"""Capturing production images for labeling, offline first.

A captured image goes with a JSON sidecar (the prediction, its score, the model version, why it
was captured, when) into a local *spool* folder first, and from there to the destination (a
folder or ``s3://bucket/prefix``) whenever the destination can be reached. A file leaves the
spool only after its upload succeeded, so a device that is offline for days loses nothing and
an interrupted upload is simply repeated. Layout, identical in the spool and the destination::

    images/YYYY-MM-DD/<time>-<name>-<id>.jpg|png
    predictions/YYYY-MM-DD/<time>-<name>-<id>.prediction.json

``visionloop ingest PREFIX --capture`` takes the images in as items of source ``capture`` and
leaves the sidecars alone (:data:`~visionloop.core.media.CAPTURE_SKIPPED_GLOBS`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from visionloop.core.errors import ConfigError, StorageError, VisionloopError
from visionloop.core.labels import Label
from visionloop.core.media import CAPTURE_SIDECAR_SUFFIX
from visionloop.storage import Filesystem, atomic_write_local, is_remote, join_under, normalise_url

__all__ = [
    "IMAGES_DIR",
    "PREDICTIONS_DIR",
    "CapturePolicy",
    "Capturer",
    "PushResult",
    "Spool",
    "default_spool",
    "open_destination",
]

IMAGES_DIR = "images"
PREDICTIONS_DIR = "predictions"
SIDECAR_VERSION = 1
_DESTINATION_FILE = "destination.json"
_TEMP_PREFIX = ".tmp-"  # atomic_write_local's partial files: never pushed
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
# Fail fast when the destination is unreachable: the spool keeps everything for the next try.
_S3_OPTIONS: dict[str, Any] = {
    "config_kwargs": {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}}
}


@dataclass
class CapturePolicy:
    """Capture an item whose score is below ``below`` (``uncertain``), else a seeded random
    ``sample`` share of the rest (``sampled``). One draw per item, whatever its score, so the
    sample depends only on the seed and the order of the items."""

    below: float = 0.5
    sample: float = 0.0
    seed: int = 0
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.below <= 1.0:
            raise ConfigError(f"--capture-below must lie within [0, 1], got {self.below}")
        if not 0.0 <= self.sample <= 1.0:
            raise ConfigError(f"--sample must lie within [0, 1], got {self.sample}")
        self._random = random.Random(self.seed)  # noqa: S311 - a sample, not a secret

    def reason(self, score: float) -> str | None:
        draw = self._random.random()
        if score < self.below:
            return "uncertain"
        if draw < self.sample:
            return "sampled"
        return None


def default_spool(destination: str) -> Path:
    """The spool of ``destination`` in the user's cache folder, one per destination."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(normalise_url(destination).encode()).hexdigest()[:16]
    return cache / "visionloop" / "edge-spool" / digest


def open_destination(destination: str) -> Filesystem:
    """The storage captures are pushed to; S3 options (endpoint, keys) come from the usual AWS
    environment variables. Needs the ``s3`` extra for ``s3://``."""
    options = _S3_OPTIONS if destination.startswith("s3://") else {}
    target = Filesystem(destination, options)
    if is_remote(target.url):
        target.fs  # noqa: B018 - fails now, naming the missing extra, rather than at the first push
    return target


@dataclass(frozen=True)
class PushResult:
    uploaded: int
    pending: int
    error: str = ""


class Spool:
    """Captures waiting for their destination, in a local folder that records which one."""

    def __init__(self, root: Path, destination: str) -> None:
        self.root = root
        self.destination = normalise_url(destination)

    @classmethod
    def open(cls, destination: str, root: Path | None = None) -> Spool:
        """The spool at ``root`` (default: :func:`default_spool`), refused when it holds captures
        for another destination."""
        spool = cls(root or default_spool(destination), destination)
        marker = spool.root / _DESTINATION_FILE
        try:
            recorded = json.loads(marker.read_text(encoding="utf-8")).get("destination")
        except FileNotFoundError:
            atomic_write_local(str(marker), json.dumps({"destination": spool.destination}).encode())
            return spool
        except (OSError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{marker}: unreadable spool description: {exc}") from exc
        if recorded != spool.destination:
            raise ConfigError(
                f"spool {spool.root} holds captures for {recorded}, not {spool.destination}; "
                "push it with 'edge sync' to its own destination or choose another --spool"
            )
        return spool

    def put(self, name: str, data: bytes) -> None:
        path = join_under(str(self.root), name)
        failure = f"{path}: cannot write to the capture spool"
        for attempt in range(2):
            try:
                atomic_write_local(path, data)
                return
            except FileNotFoundError:  # a concurrent 'edge sync' pruned the folder just made
                if attempt:
                    raise StorageError(f"{failure}: its folder vanished") from None
            except OSError as exc:
                raise StorageError(f"{failure}: {exc.strerror or exc}") from exc

    def pending(self) -> list[str]:
        """Relative names of the files waiting, images before their sidecars."""
        names: list[str] = []
        for top in (IMAGES_DIR, PREDICTIONS_DIR):
            base = self.root / top
            for directory, subdirectories, files in os.walk(base):
                subdirectories.sort()
                for name in sorted(files):
                    if not name.startswith(_TEMP_PREFIX):
                        names.append(Path(directory, name).relative_to(self.root).as_posix())
        return names

    def push(self, target: Filesystem) -> PushResult:
        """Upload every waiting file, oldest folder first; each leaves the spool once uploaded.
        Stops at the first failure (the destination is probably unreachable) and says why."""
        names = self.pending()
        uploaded = 0
        for name in names:
            path = Path(join_under(str(self.root), name))
            try:
                target.write_bytes(name, path.read_bytes())
            except (VisionloopError, OSError) as exc:
                return PushResult(uploaded, len(names) - uploaded, f"{target.url}: {exc}")
            path.unlink(missing_ok=True)
            uploaded += 1
        self._prune()
        return PushResult(uploaded, 0)

    def _prune(self) -> None:
        """Remove the day folders an upload emptied (a folder still being written to is kept)."""
        for top in (IMAGES_DIR, PREDICTIONS_DIR):
            for directory, _, _ in sorted(os.walk(self.root / top), reverse=True):
                if Path(directory) != self.root / top:
                    with contextlib.suppress(OSError):  # not empty (any more): keep it
                        os.rmdir(directory)


def _stem(source: str) -> str:
    """A file-name-safe short form of the source's name (never a path)."""
    stem = _UNSAFE.sub("_", Path(source).stem).strip("_")
    return stem[:48] or "image"


@dataclass
class Capturer:
    """Writes captures into the spool and pushes it: at the start and end of a run, after a
    batch that captured something, and after every batch while an earlier push failed, but no
    more often than every ``retry_every`` seconds after a failure."""

    spool: Spool
    target: Filesystem
    model_version: str
    retry_every: float = 10.0
    uploaded: int = 0
    last_error: str = ""
    _failed_at: float | None = field(default=None, repr=False)

    def capture(
        self,
        image: bytes,
        extension: str,
        source: str,
        frame: int | None,
        label: Label,
        score: float,
        reason: str,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Spool one capture; returns the image's name relative to the destination."""
        now = datetime.now(UTC)
        frame_part = f"-f{frame:07d}" if frame is not None else ""
        base = f"{now:%H%M%S}-{_stem(source)}{frame_part}-{secrets.token_hex(4)}"
        day = f"{now:%Y-%m-%d}"
        image_name = f"{IMAGES_DIR}/{day}/{base}.{extension}"
        sidecar = {
            "version": SIDECAR_VERSION,
            "image": image_name,
            "source": source,
            "frame": frame,
            "prediction": label.to_dict(),
            "score": score,
            "model_version": self.model_version,
            "reason": reason,
            "captured_at": now.isoformat(timespec="milliseconds"),
            **(extra or {}),
        }
        self.spool.put(image_name, image)
        self.spool.put(
            f"{PREDICTIONS_DIR}/{day}/{base}{CAPTURE_SIDECAR_SUFFIX}", json.dumps(sidecar, indent=1).encode()
        )
        return image_name

    def push(self, *, force: bool = False) -> PushResult:
        """Push the spool unless a recent failure says to wait (``force`` ignores the wait)."""
        if (
            not force
            and self._failed_at is not None
            and time.monotonic() - self._failed_at < self.retry_every
        ):
            return PushResult(0, len(self.spool.pending()), self.last_error)
        result = self.spool.push(self.target)
        self.uploaded += result.uploaded
        self.last_error = result.error
        self._failed_at = time.monotonic() if result.error else None
        return result
