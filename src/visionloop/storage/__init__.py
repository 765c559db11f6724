"""Blob storage through fsspec: local folders and S3-compatible buckets."""

from visionloop.storage.filesystem import (
    FileEntry,
    Filesystem,
    FileTooLargeError,
    atomic_write_local,
    is_remote,
    normalise_url,
    remove_temporaries,
)
from visionloop.storage.paths import join_under, safe_relative_path

__all__ = [
    "FileEntry",
    "FileTooLargeError",
    "Filesystem",
    "atomic_write_local",
    "is_remote",
    "join_under",
    "normalise_url",
    "remove_temporaries",
    "safe_relative_path",
]
