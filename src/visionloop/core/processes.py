"""Whether a process on this machine still runs: how leases and temporary files left by a
``kill -9`` are known to be abandoned."""

from __future__ import annotations

import os

__all__ = ["process_alive"]


def process_alive(pid: int) -> bool:
    """False only when we can tell the process is gone (or a zombie nobody reaped yet)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # someone else's process, or no such pid value
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    """A killed child that was not reaped yet still answers kill(pid, 0); its /proc state says Z."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
