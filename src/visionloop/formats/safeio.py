"""Reading untrusted annotation files safely: size limits, no pickle, defused XML, safe YAML,
and archive extraction by our own loop that refuses escapes, links and bombs."""

from __future__ import annotations

import lzma
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
import yaml

from visionloop.core.errors import ValidationError

MAX_TEXT_BYTES = 2 * 1024**3
MAX_ARCHIVE_ENTRIES = 100_000
MAX_ARCHIVE_BYTES = 8 * 1024**3
MAX_COMPRESSION_RATIO = 200
#: What a damaged member raises while it is read: a bad header or CRC, a broken deflate, bzip2 or
#: LZMA stream, data that ends early, an unknown compression method (NotImplementedError) or an
#: encryption flag missed by the check before extraction (RuntimeError).
_CORRUPT_MEMBER: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    EOFError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,
    RuntimeError,
)


class FormatFileError(ValidationError):
    """A whole file could not be parsed (the message names it and says why)."""


def read_bytes(path: Path, max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FormatFileError(f"{path}: {size} bytes exceeds the limit of {max_bytes}")
        return path.read_bytes()
    except OSError as exc:
        raise FormatFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def read_text(path: Path, max_bytes: int = MAX_TEXT_BYTES) -> str:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FormatFileError(f"{path}: {size} bytes exceeds the limit of {max_bytes}")
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise FormatFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def read_json(path: Path) -> Any:
    """Parse with orjson: several times faster than the standard library on large exports, and
    it refuses nesting deeper than 1024 levels instead of recursing."""
    data = read_bytes(path)
    try:
        return orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise FormatFileError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc


def json_object_line(line: str) -> dict[str, Any]:
    """One line of a JSON-lines file as an object; ``ValueError`` says what is wrong with it."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON at column {exc.colno}: {exc.msg}") from exc
    if not isinstance(record, dict):
        raise ValueError("each line must be a JSON object")
    return record


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        raise FormatFileError(f"{path}: invalid YAML: {exc}") from exc
    except RecursionError as exc:  # PyYAML composes nested collections recursively
        raise FormatFileError(f"{path}: invalid YAML: nested too deeply") from exc


def parse_xml(path: Path) -> Any:
    """Parse XML with defusedxml: no entity expansion bombs, no external entities or DTD fetches."""
    import defusedxml.ElementTree as SafeElementTree
    from defusedxml import DefusedXmlException

    try:
        return SafeElementTree.fromstring(read_text(path).encode("utf-8"))
    except DefusedXmlException as exc:
        raise FormatFileError(f"{path}: refused unsafe XML: {exc}") from exc
    except SafeElementTree.ParseError as exc:
        raise FormatFileError(f"{path}: invalid XML: {exc}") from exc
    except (LookupError, ValueError) as exc:  # an encoding declaration expat cannot use
        raise FormatFileError(f"{path}: invalid XML: unusable encoding declaration ({exc})") from exc


def extract_zip(
    archive: Path,
    destination: Path,
    *,
    max_entries: int = MAX_ARCHIVE_ENTRIES,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    max_ratio: int = MAX_COMPRESSION_RATIO,
) -> list[Path]:
    """Extract ``archive`` into ``destination`` member by member, refusing anything unsafe.

    Refused (nothing is written for such an archive): absolute paths, ``..`` segments, drive
    letters, symbolic links and other special files, encrypted members, a name given twice (or
    as both a file and a folder), more than ``max_entries`` members, more than ``max_bytes``
    uncompressed, or a member that inflates more than ``max_ratio`` times. Sizes are checked
    while streaming, not trusted from the header.
    """
    try:
        handle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:  # ValueError: a name not in UTF-8
        raise FormatFileError(f"{archive}: not a readable zip archive: {exc}") from exc
    with handle:
        members = handle.infolist()
        if len(members) > max_entries:
            raise FormatFileError(f"{archive}: {len(members)} entries exceeds the limit of {max_entries}")
        plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        kinds: dict[PurePosixPath, bool] = {}  # path -> is a folder (parents implied)
        for member in members:
            member_path = _safe_member_path(archive, member)
            if member.flag_bits & 0x1:
                raise FormatFileError(f"{archive}: {_shown(member.filename)} is encrypted (not supported)")
            folder = member.is_dir()
            if kinds.get(member_path, folder) != folder or (member_path in kinds and not folder):
                raise FormatFileError(f"{archive}: duplicate member {_shown(member.filename)}")
            if any(kinds.setdefault(parent, True) is False for parent in member_path.parents):
                raise FormatFileError(f"{archive}: member {_shown(member.filename)} lies inside a file")
            kinds[member_path] = folder
            plan.append((member, member_path))
        root = destination.resolve()
        root.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        total = 0
        try:
            for member, relative in plan:
                target = root.joinpath(*relative.parts)
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "xb") as sink:
                    written.append(target)  # now, so a member refused halfway is removed too
                    with handle.open(member) as source:
                        size = 0
                        while chunk := source.read(1 << 20):
                            size += len(chunk)
                            total += len(chunk)
                            if total > max_bytes:
                                raise FormatFileError(f"{archive}: more than {max_bytes} bytes uncompressed")
                            if size > max(member.compress_size, 1) * max_ratio and size > 1 << 20:
                                raise FormatFileError(
                                    f"{archive}: {member.filename} inflates more than {max_ratio}x "
                                    "(compression bomb)"
                                )
                            sink.write(chunk)
        except FormatFileError:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        except OSError as exc:
            for path in written:
                path.unlink(missing_ok=True)
            raise FormatFileError(
                f"{archive}: cannot extract {_shown(member.filename)}: {exc.strerror or exc}"
            ) from exc
        except _CORRUPT_MEMBER as exc:
            for path in written:
                path.unlink(missing_ok=True)
            raise FormatFileError(f"{archive}: corrupt archive: {exc}") from exc
    return written


def _shown(name: str, limit: int = 120) -> str:
    """A member name for a message: quoted, and cut when an attacker made it huge."""
    return repr(name) if len(name) <= limit else f"{name[:limit]!r}... ({len(name)} characters)"


def _safe_member_path(archive: Path, member: zipfile.ZipInfo) -> PurePosixPath:
    name = member.filename
    kind = stat.S_IFMT(member.external_attr >> 16)
    # No file type bits (zipfile.writestr, Windows tools) means a plain file, not a special one.
    if kind and not (stat.S_ISREG(kind) or stat.S_ISDIR(kind)):
        raise FormatFileError(f"{archive}: refusing link or special file {name!r}")
    if "\x00" in name or "\\" in name:
        raise FormatFileError(f"{archive}: refusing member name {name!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and ":" in path.parts[0]) or ".." in path.parts:
        raise FormatFileError(f"{archive}: refusing member {name!r} that would escape the folder")
    if not path.parts:
        raise FormatFileError(f"{archive}: refusing empty member name")
    return path
