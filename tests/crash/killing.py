"""The crash-test harness: run a real ``visionloop`` command, SIGKILL it at random moments, resume.

Commands run in children forked from a warm :mod:`zygote` (heavy modules already imported), so a
kill lands in the command's work, not in Python start-up. Delays come from a seeded RNG; every
failure message carries the seed and the delays, so a failing sequence can be replayed.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ZYGOTE = Path(__file__).with_name("zygote.py")
TESTS = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120
RUN_TIMEOUT_S = 240


@dataclass(frozen=True)
class Outcome:
    """One run of a command: how it ended and how long it ran."""

    returncode: int
    seconds: float
    log: Path

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Zygote:
    """A warm process that forks one child per command; see ``zygote.py`` for the protocol."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        env = os.environ | {
            "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path]),
            "OMP_NUM_THREADS": "1",
            "COLUMNS": "120",
        }
        self.process = subprocess.Popen(
            [sys.executable, str(ZYGOTE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(logs / "zygote.log", "wb"),  # noqa: SIM115 - closed with the process
            env=env,
            text=True,
        )
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._count = 0
        started = self._next(START_TIMEOUT_S)
        assert started == {"ready": True}, started

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(json.loads(line))
        self._lines.put({"eof": True})

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            message = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the zygote said nothing for {timeout} s") from None
        if "eof" in message:
            raise AssertionError(f"the zygote died: {(self.logs / 'zygote.log').read_text()[-3000:]}")
        return message

    def run(self, argv: list[str], kill_after: float | None = None) -> Outcome:
        """Run ``visionloop *argv``; SIGKILL it (and its process group) after ``kill_after`` s."""
        self._count += 1
        log = self.logs / f"run-{self._count:03d}.log"
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"argv": argv, "log": str(log)}) + "\n")
        self.process.stdin.flush()
        pid = self._next(30)["pid"]
        started = time.monotonic()
        if kill_after is not None:
            try:
                done = self._lines.get(timeout=kill_after)
            except queue.Empty:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                done = self._next(30)
        else:
            done = self._next(RUN_TIMEOUT_S)
        assert done.get("pid") == pid, done
        return Outcome(done["returncode"], time.monotonic() - started, log)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def zygote(logs: Path) -> Iterator[Zygote]:
    warm = Zygote(logs)
    try:
        yield warm
    finally:
        warm.close()


@dataclass
class KillLog:
    """What a crash sequence did, for the failure message: the seed, each delay and its outcome."""

    seed: int
    events: list[str] = field(default_factory=list)
    kills: int = 0

    def __str__(self) -> str:
        return f"seed {self.seed}; " + "; ".join(self.events)


def kill_and_resume(
    warm: Zygote,
    first: list[str],
    resume: Callable[[Outcome, int], list[str]],
    *,
    window: tuple[float, float],
    kills: int,
    rng: random.Random,
    record: KillLog,
    after_kill: Callable[[], None] | None = None,
) -> Outcome:
    """Run ``first``, SIGKILL it after a delay drawn from ``window``, run ``resume(outcome, n)``
    and kill that too, up to ``kills`` kills, until a run ends by itself; return that run.

    A kill that comes after the command already ended does not count (the command is done then).
    ``after_kill`` runs after each kill that hit, e.g. to look at what the kill left behind.
    """
    argv = first
    hits = 0
    while True:
        delay = rng.uniform(*window) if hits < kills else None
        outcome = warm.run(argv, delay)
        shown = "none" if delay is None else f"{delay:.3f}s"
        command = " ".join(word for word in argv[2:4] if not word.startswith(("-", "/")))
        record.events.append(f"{command}: kill at {shown} -> {outcome.returncode}")
        if not outcome.killed:
            assert outcome.returncode == 0, f"{record}\n{outcome.output()[-4000:]}"
            return outcome
        hits += 1
        record.kills += 1
        if after_kill is not None:
            after_kill()
        argv = resume(outcome, hits)


def crash_seed(name: str) -> int:
    """The RNG seed of one test: ``$VISIONLOOP_CRASH_SEED`` replays a failure, else fixed per test."""
    chosen = os.environ.get("VISIONLOOP_CRASH_SEED")
    return int(chosen) if chosen else sum(name.encode()) * 7919


def timed(warm: Zygote, argv: list[str]) -> Outcome:
    """The uninterrupted reference run; it must succeed."""
    outcome = warm.run(argv)
    assert outcome.returncode == 0, outcome.output()[-4000:]
    return outcome
