"""Which model answers a request, and swapping it when its alias moves without dropping a request.

Versions are loaded on first use and kept (the least recently used beyond ``loaded_versions``
is let go). Aliases are re-read every ``poll_seconds`` by a background thread; when one points
at a new version, that version is loaded *before* the alias's entry is switched, so requests
arriving meanwhile keep getting answers from the old one, and a request that already holds a
model finishes on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from visionloop.core.errors import NotFoundError
from visionloop.registry import ModelRegistry, ModelVersion, parse_version, validate_alias
from visionloop.server.memory import release_freed_memory
from visionloop.tasks.onnx_session import SessionSettings
from visionloop.tasks.predictor import Predictor, load_predictor

__all__ = ["ModelHost", "ServedModel"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    version: ModelVersion
    predictor: Predictor
    note: str  # why ONNX Runtime was not used, if it was not

    @property
    def runtime(self) -> str:
        return self.predictor.runtime


class ModelHost:
    """Loaded model versions and the aliases pointing at them."""

    def __init__(
        self,
        registry: ModelRegistry,
        runtime: str = "auto",
        poll_seconds: float = 1.0,
        loaded_versions: int = 3,
        spin: bool = False,
    ) -> None:
        self.registry = registry
        self.runtime = runtime
        self.session = SessionSettings(busy_wait=spin)
        self.poll_seconds = poll_seconds
        self.loaded_versions = max(1, loaded_versions)
        self._models: OrderedDict[int, ServedModel] = OrderedDict()
        self._aliases: dict[str, int] = {}
        self._lock = threading.Lock()  # guards the two maps; loading happens outside it
        self._loading = threading.Lock()  # one load at a time: models are big
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swaps = 0

    # -- requests ---------------------------------------------------------------------------
    def get(self, reference: str) -> tuple[ServedModel, str | None]:
        """The model for a version (``3``, ``v3``) or alias, and the alias when one was named."""
        number = parse_version(reference)
        alias = None
        if number is None:
            alias = validate_alias(reference)
            with self._lock:
                number = self._aliases.get(alias)
            if number is None:
                number = self._read_alias(alias)
        return self._load(number), alias

    def aliases(self) -> dict[str, int]:
        with self._lock:
            return dict(self._aliases)

    def loaded(self) -> list[ServedModel]:
        with self._lock:
            return list(self._models.values())

    # -- following aliases ------------------------------------------------------------------
    def start(self) -> None:
        """Read the aliases now and keep following them in a background thread."""
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name="visionloop-alias-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def refresh(self) -> None:
        """Re-read every alias; load the versions newly pointed at that were in use, then switch."""
        current = self.registry.aliases()
        with self._lock:
            before = dict(self._aliases)
        for alias, number in current.items():
            if before.get(alias) != number and alias in before:
                self._load(number)  # warm first: requests keep the old version meanwhile
        with self._lock:
            changed = {alias for alias in current if before.get(alias) != current[alias]}
            self._aliases = current
        if changed & set(before):
            self.swaps += 1
            logger.info("aliases moved: %s", ", ".join(f"{a} -> v{current[a]}" for a in sorted(changed)))

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # a database hiccup must not kill the follower
                logger.exception("could not re-read the model aliases")

    # -- loading ----------------------------------------------------------------------------
    def _read_alias(self, alias: str) -> int:
        number = self.registry.aliases().get(alias)
        if number is None:
            raise NotFoundError(f"no model alias {alias!r}: promote a version to it first")
        with self._lock:
            self._aliases[alias] = number
        return number

    def _load(self, number: int) -> ServedModel:
        with self._lock:
            served = self._models.get(number)
            if served is not None:
                self._models.move_to_end(number)
                return served
        with self._loading:
            with self._lock:
                served = self._models.get(number)
            if served is None:
                version = self.registry.get(number)
                started = time.perf_counter()
                predictor, note = load_predictor(self.registry.folder(version), self.runtime, self.session)
                served = ServedModel(version, predictor, note)
                logger.info(
                    "loaded v%d on %s in %.2f s", number, predictor.runtime, time.perf_counter() - started
                )
            with self._lock:
                self._models[number] = served
                self._models.move_to_end(number)
                in_use = set(self._aliases.values())
                dropped = 0
                for old in list(self._models):
                    if len(self._models) <= self.loaded_versions:
                        break
                    if old not in in_use and old != number:
                        del self._models[old]
                        dropped += 1
            if dropped:
                release_freed_memory()
            return served
