"""Keeping a long-running server's memory flat: glibc's allocator settings and returning freed pages.

Under many concurrent requests the server runs inference and catalog reads in a pool of threads,
and glibc gives each thread an arena of its own (up to eight per core) that keeps freed memory
for reuse. The resident size then climbs for many minutes before it settles, which looks like a
leak and costs real memory. Fewer arenas and a periodic trim keep it near what is in use:
bench/soak.py (50 clients, 10 minutes, 20 model swaps) went from 623 -> 777 MiB (+25%) to
493 -> 528 MiB (+7%, flat after the third minute). Elsewhere than glibc (musl, macOS) these are
no-ops.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sys
import threading
from typing import Any

__all__ = ["MemoryTrimmer", "limit_malloc_arenas", "release_freed_memory"]

_M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h


def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """At most ``arenas`` malloc arenas for threads created from now on; whether it took effect."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas) == 1)


def release_freed_memory() -> None:
    """Collect garbage, then hand every arena's free pages back to the system."""
    gc.collect()
    libc = _glibc()
    if libc is not None:
        with contextlib.suppress(OSError):
            libc.malloc_trim(0)


class MemoryTrimmer:
    """Calls :func:`release_freed_memory` every ``seconds`` in a daemon thread until stopped."""

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-trim", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            release_freed_memory()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
