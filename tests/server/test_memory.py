"""The server's memory hygiene: glibc arenas limited, freed pages handed back, a trimmer that
runs on its own and stops when told."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from visionloop.server import memory


def _rss_kib() -> int:
    for line in open("/proc/self/status").read().splitlines():  # noqa: SIM115 - read at once
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_freed_memory_goes_back_to_the_system() -> None:
    assert memory.limit_malloc_arenas(2)
    before = _rss_kib()
    chunks = [np.ones(4096, dtype=np.uint8) * i for i in range(40_000)]  # ~160 MiB in small blocks
    grown = _rss_kib()
    del chunks[::2]  # free every other block: holes glibc keeps unless trimmed
    memory.release_freed_memory()
    trimmed = _rss_kib()
    assert grown - before > 100_000
    assert grown - trimmed > 40_000, (before, grown, trimmed)  # at least ~40 MiB handed back


def test_the_trimmer_runs_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    monkeypatch.setattr(memory, "release_freed_memory", lambda: calls.append(time.monotonic()))
    trimmer = memory.MemoryTrimmer(seconds=0.01)
    trimmer.start()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    trimmer.stop()
    time.sleep(0.05)
    seen = len(calls)
    time.sleep(0.1)
    assert seen >= 3 and len(calls) == seen
