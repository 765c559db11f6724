"""Time and memory bounds per input, and the worst case seen, for the hardening tests.

Memory is the growth of the process's peak resident set (``ru_maxrss``) while one input is
handled: Pillow allocates pixels with ``malloc``, which ``tracemalloc`` does not see. The peak
only grows, so an input is charged only for pushing it higher; a decompression bomb decoded by
mistake would push it by gigabytes. The bound allows one decode at the corpus's pixel limit
(16 M pixels as 8-bit RGBA, with a converted copy) and nothing near a bomb's claimed size.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

SECONDS = 5.0
RSS_BYTES = 256 * 1024**2


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


@dataclass
class Bounds:
    """Checks each input against ``seconds`` and ``rss_bytes`` and keeps the worst of each."""

    seconds: float = SECONDS
    rss_bytes: int = RSS_BYTES
    worst_seconds: tuple[float, str] = (0.0, "")
    worst_rss: tuple[int, str] = (0, "")
    over: list[str] = field(default_factory=list)

    @contextmanager
    def check(self, name: str) -> Iterator[None]:
        start, rss = time.perf_counter(), peak_rss()
        yield
        elapsed, grown = time.perf_counter() - start, peak_rss() - rss
        self.worst_seconds = max(self.worst_seconds, (elapsed, name))
        self.worst_rss = max(self.worst_rss, (grown, name))
        if elapsed > self.seconds or grown > self.rss_bytes:
            self.over.append(f"{name}: {elapsed:.2f} s, peak RSS +{grown / 2**20:.0f} MiB")

    def summary(self) -> str:
        return (
            f"worst time {self.worst_seconds[0]:.2f} s ({self.worst_seconds[1]}), "
            f"worst peak RSS growth {self.worst_rss[0] / 2**20:.1f} MiB ({self.worst_rss[1]})"
        )
