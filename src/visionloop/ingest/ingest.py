"""Ingest: list a folder or bucket prefix, read and check each new or changed file, record it.

A re-run over an unchanged tree only lists and stats files and compares fingerprints with the
catalog's file index. Source files are only ever read. Every file seen ends up as exactly one
of added, unchanged (including content duplicates) or rejected.
"""

from __future__ import annotations

import fnmatch
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from visionloop.catalog import Catalog, FileIndex, FileOutcome, ProbedFile
from visionloop.core.errors import StorageError
from visionloop.core.media import CAPTURE_SKIPPED_GLOBS, ItemSource, Split, split_for_hash
from visionloop.imaging import DEFAULT_FORMATS, DEFAULT_MAX_PIXELS, ImageRejected, probe_image
from visionloop.storage import FileEntry, Filesystem, FileTooLargeError, join_under, remove_temporaries

AUTO_SPLIT = "auto"
_CHUNK = 32  # files per thread-pool task
_EXTENSIONS = {
    "JPEG": "jpg",
    "MPO": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tif",
    "GIF": "gif",
}


@dataclass(frozen=True)
class IngestOptions:
    split: str = AUTO_SPLIT
    source: ItemSource = ItemSource.INGEST
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_file_bytes: int = 512 * 1024 * 1024
    formats: tuple[str, ...] = DEFAULT_FORMATS
    split_ratios: dict[Split, float] = field(
        default_factory=lambda: {Split.TRAIN: 0.8, Split.VAL: 0.1, Split.TEST: 0.1}
    )
    workers: int = 2
    batch_size: int = 256
    follow_links: bool = False
    exclude: tuple[str, ...] = ()
    copy_to: Filesystem | None = None

    def __post_init__(self) -> None:
        if self.split != AUTO_SPLIT and self.split not in {s.value for s in Split}:
            raise ValueError(f"split must be one of train, val, test, auto; got {self.split!r}")


@dataclass(frozen=True)
class Rejection:
    path: str
    reason: str


@dataclass
class IngestReport:
    source: str
    seen: int = 0
    added: int = 0
    unchanged: int = 0
    rejected: int = 0
    duplicates: int = 0
    missing: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    run_id: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while files are processed."""


def ingest(
    catalog: Catalog,
    source: Filesystem,
    options: IngestOptions | None = None,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest every file under ``source`` into ``catalog`` and return what happened to each.

    Captures (``source=ItemSource.CAPTURE``) leave out the edge runtime's prediction sidecars."""
    options = options or IngestOptions()
    if options.source is ItemSource.CAPTURE:
        options = replace(options, exclude=(*options.exclude, *CAPTURE_SKIPPED_GLOBS))
    started = time.perf_counter()
    report = IngestReport(source=source.url)
    run_id = catalog.start_run(
        "ingest",
        config={
            "split": options.split,
            "source": options.source.value,
            "max_pixels": options.max_pixels,
            "max_file_bytes": options.max_file_bytes,
            "formats": list(options.formats),
            "copy": options.copy_to is not None,
        },
        inputs={"source": source.url},
    )
    report.run_id = run_id
    try:
        if options.copy_to is not None and options.copy_to.protocol == "file":
            # An ingest killed while copying left a temporary file; the files it was copying are
            # still to do, so this run copies them again.
            remove_temporaries(join_under(options.copy_to.url, "media"))
        listed = list(source.list_files(options.follow_links))
        entries = (
            [e for e in listed if not _excluded(e.uri, source.url, options)] if options.exclude else listed
        )
        known = catalog.file_index(source.url)
        report.seen = len(entries)
        todo = _triage(entries, known, report, catalog)
        done = report.seen - len(todo)
        if progress:
            progress(done, report.seen)

        def split_for(sha256: str) -> str | None:
            if options.split == AUTO_SPLIT:
                return split_for_hash(sha256, options.split_ratios).value
            return options.split

        batch: list[ProbedFile] = []
        for probed in _probe_all(todo, source, options):
            batch.append(probed)
            if len(batch) >= options.batch_size:
                _record(catalog, batch, report, split_for, options, run_id)
                done += len(batch)
                batch = []
                if progress:
                    progress(done, report.seen)
        if batch:
            _record(catalog, batch, report, split_for, options, run_id)
            if progress:
                progress(report.seen, report.seen)
        gone = _vanished(listed, known)  # excluded files are still there: not missing
        if gone:
            catalog.mark_missing(gone)
        report.missing = len(gone)
    except BaseException as exc:
        catalog.finish_run(run_id, outputs=_summary(report), error=f"{type(exc).__name__}: {exc}")
        raise
    report.seconds = time.perf_counter() - started
    catalog.finish_run(run_id, outputs=_summary(report))
    return report


def _triage(
    entries: list[FileEntry], known: FileIndex, report: IngestReport, catalog: Catalog
) -> list[FileEntry]:
    """Count files the index already knows unchanged (or rejected); return the ones to read.

    This loop runs once per file on every re-scan, so it is kept flat.
    """
    todo: list[FileEntry] = []
    still_rejected: list[str] = []
    item_fingerprint, other = known.items.get, known.others.get
    unchanged = duplicates = 0
    for entry in entries:
        fingerprint = item_fingerprint(entry.uri)
        if fingerprint is not None:
            if fingerprint == entry.fingerprint:
                unchanged += 1
            else:
                todo.append(entry)
            continue
        previous = other(entry.uri)
        if previous is None or previous[0] != entry.fingerprint or previous[1] == "missing":
            todo.append(entry)
        elif previous[1] == "rejected":
            still_rejected.append(entry.uri)
        else:
            unchanged += 1
            duplicates += 1
    report.unchanged += unchanged
    report.duplicates += duplicates
    if still_rejected:
        reasons = catalog.rejection_reasons(still_rejected)
        report.rejected += len(still_rejected)
        report.rejections.extend(Rejection(uri, reasons.get(uri, "rejected")) for uri in still_rejected)
    return todo


def _vanished(listed: list[FileEntry], known: FileIndex) -> list[str]:
    """Indexed paths that were not listed this time."""
    present = known.present()
    if not present:
        return []
    seen = {entry.uri for entry in listed}
    return [uri for uri in present if uri not in seen]


def _excluded(uri: str, root: str, options: IngestOptions) -> bool:
    if not options.exclude:
        return False
    relative = uri[len(root) :].lstrip("/") if uri.startswith(root) else uri
    name = relative.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(name, pattern) for pattern in options.exclude
    )


def _record(
    catalog: Catalog,
    batch: list[ProbedFile],
    report: IngestReport,
    split_for: Callable[[str], str | None],
    options: IngestOptions,
    run_id: str,
) -> None:
    outcomes = catalog.record_files(batch, split_for=split_for, source=options.source.value, run_id=run_id)
    for probed, outcome in zip(batch, outcomes, strict=True):
        if outcome is FileOutcome.ADDED:
            report.added += 1
        elif outcome is FileOutcome.REJECTED:
            report.rejected += 1
            report.rejections.append(Rejection(probed.uri, probed.reason or "rejected"))
        else:
            report.unchanged += 1
            report.duplicates += outcome is FileOutcome.DUPLICATE


def _probe_all(entries: list[FileEntry], source: Filesystem, options: IngestOptions) -> Iterator[ProbedFile]:
    """Read and probe files on a thread pool (reading, hashing and decoding release the GIL).

    Files go to the threads in chunks: one task per small image would spend more time handing
    work over and contending for the GIL than probing.
    """
    if options.workers <= 1:
        for entry in entries:
            yield _probe_one(entry, source, options)
        return
    chunks = (entries[start : start + _CHUNK] for start in range(0, len(entries), _CHUNK))
    with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="ingest") as pool:
        pending: deque[Future[list[ProbedFile]]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(_probe_chunk, chunk, source, options))
            if len(pending) >= options.workers * 2:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def _probe_chunk(entries: list[FileEntry], source: Filesystem, options: IngestOptions) -> list[ProbedFile]:
    return [_probe_one(entry, source, options) for entry in entries]


def _probe_one(entry: FileEntry, source: Filesystem, options: IngestOptions) -> ProbedFile:
    """Probe one file; any failure becomes a rejection of that file, never of the whole ingest."""
    try:
        return _probe_checked(entry, source, options)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop thousands of good ones
        reason = f"unexpected error while reading: {type(exc).__name__}: {exc}"
        return ProbedFile(entry.uri, entry.size, entry.fingerprint, reason=reason)


def _probe_checked(entry: FileEntry, source: Filesystem, options: IngestOptions) -> ProbedFile:
    def rejected(reason: str) -> ProbedFile:
        return ProbedFile(entry.uri, entry.size, entry.fingerprint, reason=reason)

    if entry.is_link and not options.follow_links:
        return rejected("symbolic link not followed (use --follow-links to ingest link targets)")
    if entry.fingerprint == "unreadable":
        return rejected("cannot stat file (permission denied or vanished)")
    if entry.size > options.max_file_bytes:
        return rejected(f"file too large: {entry.size} bytes exceeds the limit of {options.max_file_bytes}")
    try:
        data = source.read_bytes(entry.uri, max_bytes=options.max_file_bytes)
    except FileTooLargeError as exc:
        return rejected(f"file too large: {exc.size} bytes exceeds the limit of {exc.limit}")
    except StorageError as exc:
        return rejected(f"cannot read file: {exc}")
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        info = probe_image(data, max_pixels=options.max_pixels, formats=options.formats)
    except ImageRejected as exc:
        return rejected(exc.reason)
    item_uri = None
    if options.copy_to is not None:
        name = f"media/{sha256[:2]}/{sha256}.{_EXTENSIONS.get(info.format, 'bin')}"
        try:
            item_uri = options.copy_to.write_bytes(name, data)
        except (StorageError, OSError) as exc:
            return rejected(f"cannot copy into project storage: {exc}")
    return ProbedFile(entry.uri, len(data), entry.fingerprint, sha256=sha256, info=info, item_uri=item_uri)


def _summary(report: IngestReport, keep_rejections: int = 1000) -> dict[str, Any]:
    """What the ingest run stores: counts, and the first rejections (the file index has all)."""
    summary = report.to_dict()
    summary["rejections"] = summary["rejections"][:keep_rejections]
    return summary
