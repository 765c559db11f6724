"""Checked path handling: user-supplied names never escape their root."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote

from visionloop.core.errors import UnsafePathError


def safe_relative_path(name: str) -> str:
    """Validate a relative, POSIX-style path taken from user input and return it normalised.

    Refuses empty names, NUL bytes, absolute paths, drive letters, backslashes, ``..`` segments
    and their percent-encoded forms.
    """
    if not name or "\x00" in name:
        raise UnsafePathError(f"invalid path {name!r}: empty or contains a NUL byte")
    decoded = name
    for _ in range(3):  # catch double encoding such as %252e%252e
        decoded = unquote(decoded)
    for candidate in {name, decoded}:
        if "\\" in candidate:
            raise UnsafePathError(f"invalid path {name!r}: backslashes are not allowed")
        if candidate.startswith("/") or (len(candidate) > 1 and candidate[1] == ":"):
            raise UnsafePathError(f"invalid path {name!r}: absolute paths are not allowed")
        if ".." in candidate.split("/"):
            raise UnsafePathError(f"invalid path {name!r}: '..' segments are not allowed")
    normalised = posixpath.normpath(name)
    if normalised in (".", ""):
        raise UnsafePathError(f"invalid path {name!r}: names no file")
    return normalised


def join_under(root: str, name: str) -> str:
    """``root/name`` after :func:`safe_relative_path`; the result always lies under ``root``."""
    relative = safe_relative_path(name)
    joined = posixpath.join(root.rstrip("/"), relative)
    if not joined.startswith(root.rstrip("/") + "/"):
        raise UnsafePathError(f"invalid path {name!r}: escapes {root}")
    return joined
