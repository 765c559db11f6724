"""Blob access through fsspec for local folders and ``s3://`` buckets.

Local paths take fast stdlib routes (``os.scandir``, ``open``) because ingest lists and stats
every file on every run; everything else goes through fsspec.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from stat import S_ISREG
from typing import Any, NamedTuple

import fsspec

from visionloop.core.errors import MissingDependencyError, StorageError
from visionloop.core.processes import process_alive
from visionloop.storage.paths import join_under


class FileTooLargeError(StorageError):
    """A file is larger than the caller is willing to read."""

    def __init__(self, uri: str, size: int, limit: int) -> None:
        super().__init__(f"{uri}: file too large: {size} bytes exceeds the limit of {limit}")
        self.size = size
        self.limit = limit


class FileEntry(NamedTuple):
    """One listed file. ``fingerprint`` changes whenever the file's content may have changed.

    A named tuple rather than a frozen dataclass: listings build one per file, and tuples are
    several times cheaper to create.
    """

    uri: str
    size: int
    fingerprint: str
    is_link: bool = False


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def normalise_url(url: str) -> str:
    """Canonical form used as the catalog key: absolute local paths, ``s3://bucket/key`` URLs."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    if is_remote(url):
        return url.rstrip("/") if url.count("/") > 2 else url
    return os.path.abspath(os.path.expanduser(url))


class Filesystem:
    """A storage backend chosen by URL scheme, with per-scheme options (endpoint, credentials)."""

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.url = normalise_url(url)
        self.protocol = self.url.split("://", 1)[0] if is_remote(self.url) else "file"
        self._options = dict(options or {})
        self._fs: Any = None

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs = _open_fsspec(self.protocol, self._options)
        return self._fs

    # -- listing -------------------------------------------------------------------------
    def list_files(self, follow_links: bool = False) -> Iterator[FileEntry]:
        """Every file under this URL (or the single file it names), recursively."""
        if self.protocol == "file":
            yield from _list_local(self.url, follow_links)
            return
        try:
            found = self.fs.find(self.url, detail=True, withdirs=False)
        except FileNotFoundError as exc:
            raise StorageError(f"{self.url}: no such bucket or prefix") from exc
        except Exception as exc:
            raise StorageError(f"cannot list {self.url}: {exc}") from exc
        for path, info in sorted(found.items()):
            if info.get("type") == "directory":
                continue
            size = int(info.get("size") or 0)
            tag = info.get("ETag") or info.get("etag") or info.get("LastModified") or ""
            yield FileEntry(uri=f"{self.protocol}://{path}", size=size, fingerprint=f"{size}:{tag}")

    # -- reading and writing --------------------------------------------------------------
    def read_bytes(self, uri: str, max_bytes: int | None = None) -> bytes:
        try:
            if not is_remote(uri):
                with open(uri, "rb") as handle:
                    # Check the size first: read(n) would allocate n bytes up front, and a
                    # 512 MiB buffer per small image costs more than decoding it.
                    size = os.fstat(handle.fileno()).st_size
                    if max_bytes is not None and size > max_bytes:
                        raise FileTooLargeError(uri, size, max_bytes)
                    return handle.read()
            if max_bytes is not None:
                size = int(self.fs.size(uri) or 0)
                if size > max_bytes:
                    raise FileTooLargeError(uri, size, max_bytes)
            return bytes(self.fs.cat_file(uri))
        except FileNotFoundError as exc:
            raise StorageError(f"{uri}: file not found") from exc
        except OSError as exc:
            raise StorageError(f"{uri}: cannot read: {exc.strerror or exc}") from exc

    def write_bytes(self, name: str, data: bytes) -> str:
        """Write ``data`` to ``name`` under this URL atomically and return the object's URI.

        Local writes go to a temporary file that is fsynced and renamed into place; S3 object
        writes are atomic by themselves.
        """
        target = join_under(self.url, name)
        if self.protocol == "file":
            atomic_write_local(target, data)
            return target
        try:
            self.fs.pipe_file(target, data)
        except Exception as exc:
            raise StorageError(f"{target}: cannot write: {exc}") from exc
        return target

    def exists(self, uri: str) -> bool:
        return os.path.exists(uri) if not is_remote(uri) else bool(self.fs.exists(uri))


TEMPORARY_PREFIX = ".tmp-"


def atomic_write_local(path: str, data: bytes) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f"{TEMPORARY_PREFIX}{os.getpid()}-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def remove_temporaries(folder: str) -> list[str]:
    """Delete the temporary files :func:`atomic_write_local` left under ``folder`` (recursively)
    when its writer was killed between writing and renaming; return their paths.

    A temporary file's name carries its writer's pid; only files of writers that are gone are
    removed, so a write in progress in another process is never touched.
    """
    removed = []
    for directory, _, names in os.walk(folder):
        for name in names:
            if name.startswith(TEMPORARY_PREFIX) and not _writer_alive(name):
                path = os.path.join(directory, name)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                    removed.append(path)
    return removed


def _writer_alive(name: str) -> bool:
    """Whether the process that named temporary file ``name`` still runs (unknown: yes)."""
    pid = name[len(TEMPORARY_PREFIX) :].split("-", 1)[0]
    return not pid.isdigit() or process_alive(int(pid))


def _list_local(root: str, follow_links: bool) -> Iterator[FileEntry]:
    """Walk with ``os.scandir``: one ``stat`` per file; d_type answers the link and folder checks."""
    if os.path.isfile(root):
        stat = os.stat(root)
        yield FileEntry(root, stat.st_size, f"{stat.st_size}:{stat.st_mtime_ns}", os.path.islink(root))
        return
    if not os.path.isdir(root):
        raise StorageError(f"{root}: no such file or directory")
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            raise StorageError(f"{directory}: cannot list: {exc.strerror or exc}") from exc
        for entry in entries:
            if entry.is_symlink():
                if not follow_links:
                    yield FileEntry(entry.path, 0, "link", is_link=True)
                    continue
                if entry.is_dir():
                    stack.append(entry.path)
                    continue
            elif entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
                continue
            try:
                stat = entry.stat(follow_symlinks=follow_links)
            except OSError:
                yield FileEntry(entry.path, 0, "unreadable", is_link=follow_links)
                continue
            if S_ISREG(stat.st_mode):  # not sockets, fifos or devices
                yield FileEntry(
                    entry.path, stat.st_size, f"{stat.st_size}:{stat.st_mtime_ns}", entry.is_symlink()
                )


def _open_fsspec(protocol: str, options: Mapping[str, Any]) -> Any:
    if protocol == "s3":
        try:
            import s3fs  # noqa: F401  (checked here to name the extra)
        except ImportError as exc:
            raise MissingDependencyError("s3fs", "s3", "S3 storage") from exc
        options = _s3_options(options)
    try:
        return fsspec.filesystem(protocol, **options)
    except (ImportError, ValueError) as exc:
        raise StorageError(f"unsupported storage scheme {protocol!r}: {exc}") from exc


def _s3_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """S3 settings from config, falling back to the usual AWS environment variables."""
    out: dict[str, Any] = {key: value for key, value in options.items() if value is not None}
    endpoint = (
        out.pop("endpoint_url", None)
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    client_kwargs = dict(out.pop("client_kwargs", {}) or {})
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
    region = out.pop("region", None)
    if region:
        client_kwargs["region_name"] = region
    if client_kwargs:
        out["client_kwargs"] = client_kwargs
    # fsspec caches filesystem instances per argument set; listings must never be stale.
    out.setdefault("skip_instance_cache", True)
    out.setdefault("use_listings_cache", False)
    return out
