"""A pipeline run's log on disk: every line its steps say, timestamped and appended as it is said.

The file lives in the run's folder (``runs/<run id>/pipeline.log``), so another process (the
dashboard, ``tail -f``) can follow a run while it works, and the log outlives the process that
wrote it: a resumed run appends to the same file. Each line is written and flushed on its own, so
a crash loses at most the line being written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["LOG_NAME", "LogChunk", "RunLog", "read_log"]

LOG_NAME = "pipeline.log"
TAIL_BYTES = 64 * 1024


class RunLog:
    """A log function that appends each line to ``path`` (with a UTC time) and passes it on."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.echo = echo

    def __call__(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        text = "".join(f"{stamp} {line}\n" for line in (message.splitlines() or [""]))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(text)
        if self.echo is not None:
            self.echo(message)


@dataclass(frozen=True)
class LogChunk:
    """Whole lines of a log from byte ``start``; ask again from ``end`` for what follows."""

    text: str
    start: int
    end: int
    size: int


def read_log(path: Path, after: int | None = None, limit: int = TAIL_BYTES) -> LogChunk:
    """Up to ``limit`` bytes of whole lines from byte ``after`` (default: the end's last lines).

    A line still being written (no newline yet) is left for the next read."""
    if not path.is_file():
        return LogChunk("", 0, 0, 0)
    size = path.stat().st_size
    start = max(0, size - limit) if after is None else min(after, size)
    with path.open("rb") as log:
        log.seek(start)
        data = log.read(limit)
    if after is None and start > 0:  # began mid-line: drop the partial first line
        cut = data.find(b"\n")
        start += cut + 1
        data = data[cut + 1 :]
    end = data.rfind(b"\n") + 1
    if end == 0 and len(data) == limit:  # one line longer than a read: hand it over as it is
        end = len(data)
    return LogChunk(data[:end].decode("utf-8", errors="replace"), start, start + end, size)
