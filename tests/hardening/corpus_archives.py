"""The archive half of the bad-input corpus: malicious and broken zips, built in code.

Each :class:`ArchiveCase` says what part of the refusal message must name the reason. Every one
holds a valid DeepLabCut ``config.yaml`` and CSV next to its trap where it can, so a refusal is
due to the trap and not to a missing project; ``ESCAPE`` is the name every escaping member
aims at, so a test can look for it anywhere outside the extraction folder.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

ESCAPE = "vl-hardening-escaped.txt"
CONFIG = yaml.safe_dump({"scorer": "Alex", "bodyparts": ["nose", "tail"]}).encode()
CSV = (
    b"scorer,,,Alex,Alex,Alex,Alex\nbodyparts,,,nose,nose,tail,tail\ncoords,,,x,y,x,y\n"
    b"labeled-data,v,a.png,1,2,3,4\n"
)
PROJECT: list[tuple[str, bytes]] = [
    ("config.yaml", CONFIG),
    ("labeled-data/v/CollectedData_Alex.csv", CSV),
]
#: The entry limit tests set (the real one is 100,000 members: too slow to build per run).
ENTRY_LIMIT = 500


@dataclass(frozen=True)
class ArchiveCase:
    name: str
    data: bytes
    reason: str | None  # a fragment the refusal must contain (lower case); None: may extract


def _zip(members: list[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as handle:
        for info, data in members:
            handle.writestr(info, data)
    return buffer.getvalue()


def _special(name: str, kind: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (kind | 0o777) << 16
    return info


def _patch_headers(data: bytes, *, flag: int | None = None, method: int | None = None) -> bytes:
    """Set the general-purpose flag or compression method in every local and central header."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = out.find(signature)
        while start >= 0:
            if flag is not None:
                old = struct.unpack_from("<H", out, start + offset)[0]
                struct.pack_into("<H", out, start + offset, old | flag)
            if method is not None:
                struct.pack_into("<H", out, start + offset + 2, method)
            start = out.find(signature, start + 4)
    return bytes(out)


def _renamed(data: bytes, placeholder: bytes, raw: bytes) -> bytes:
    """Replace a member's name bytes (same length) in its local and central headers."""
    assert len(placeholder) == len(raw) and data.count(placeholder) == 2
    return data.replace(placeholder, raw)


def _corrupt_deflate() -> bytes:
    data = bytearray(_zip([*PROJECT, ("labeled-data/v/a.png", bytes(range(256)) * 64)]))
    member = data.rfind(b"labeled-data/v/a.png", 0, data.find(b"PK\x01\x02"))
    start = member + len(b"labeled-data/v/a.png")
    data[start + 4 : start + 40] = b"\xff" * 36
    return bytes(data)


def _overlapping() -> bytes:
    """Two central-directory entries pointing at one local header (the overlapping-file bomb)."""
    data = _zip([("aaaa", b"\0" * 100_000), ("bbbb", b"x")])
    central = data.find(b"PK\x01\x02")
    second = data.find(b"PK\x01\x02", central + 4)
    out = bytearray(data)
    struct.pack_into("<I", out, second + 42, 0)  # bbbb's local header offset -> aaaa's
    return bytes(out)


def _eocd_claims(entries: int, size: int) -> bytes:
    """The end record claims ``entries`` members in a central directory of ``size`` bytes."""
    data = bytearray(_zip(PROJECT))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HHI", data, end + 8, entries & 0xFFFF, entries & 0xFFFF, size)
    return bytes(data)


def archive_corpus() -> list[ArchiveCase]:
    """Every malicious or broken archive; ``reason`` is what the refusal must say."""
    slip, escape, link, bomb = "escape", "escape", "link", "compression bomb"
    nul = _renamed(_zip([*PROJECT, ("evilXXXname", b"x")]), b"evilXXXname", b"evil\x00../../")
    bad_utf8 = _patch_headers(
        _renamed(_zip([*PROJECT, ("name-XX.txt", b"x")]), b"name-XX.txt", b"name-\xff\xfe.txt"), flag=0x800
    )
    nested_bomb = _zip([("bomb.bin", b"\0" * (8 << 20))])
    cases = [
        ArchiveCase("zip_slip.zip", _zip([*PROJECT, (f"../{ESCAPE}", b"x")]), slip),
        ArchiveCase("zip_slip_deep.zip", _zip([*PROJECT, (f"../../../../../../tmp/{ESCAPE}", b"x")]), slip),
        ArchiveCase("zip_slip_inner.zip", _zip([*PROJECT, (f"a/b/../../../{ESCAPE}", b"x")]), slip),
        ArchiveCase(
            "zip_slip_last.zip", _zip([*PROJECT, ("a.txt", b"1"), (f"a/../../{ESCAPE}", b"x")]), slip
        ),
        ArchiveCase("absolute.zip", _zip([*PROJECT, (f"/tmp/{ESCAPE}", b"x")]), escape),
        ArchiveCase("absolute_root.zip", _zip([(f"/{ESCAPE}", b"x")]), escape),
        ArchiveCase("drive_letter.zip", _zip([*PROJECT, (f"C:/{ESCAPE}", b"x")]), escape),
        ArchiveCase("drive_relative.zip", _zip([*PROJECT, (f"C:{ESCAPE}", b"x")]), escape),
        ArchiveCase("backslash_slip.zip", _zip([*PROJECT, (f"..\\{ESCAPE}", b"x")]), "member name"),
        ArchiveCase("backslash_drive.zip", _zip([*PROJECT, (f"C:\\{ESCAPE}", b"x")]), "member name"),
        ArchiveCase("unc_path.zip", _zip([*PROJECT, (f"\\\\server\\share\\{ESCAPE}", b"x")]), "member name"),
        ArchiveCase("symlink.zip", _zip([(_special("config.yaml", stat.S_IFLNK), b"/etc/passwd")]), link),
        ArchiveCase(
            "symlink_dir.zip", _zip([(_special("up", stat.S_IFLNK), b".."), (f"up/{ESCAPE}", b"x")]), link
        ),
        ArchiveCase(
            "symlink_absolute.zip",
            _zip([*PROJECT, (_special("labeled-data/v/a.png", stat.S_IFLNK), b"/etc/shadow")]),
            link,
        ),
        ArchiveCase("fifo.zip", _zip([*PROJECT, (_special("pipe", stat.S_IFIFO), b"")]), "special file"),
        ArchiveCase(
            "char_device.zip", _zip([*PROJECT, (_special("zero", stat.S_IFCHR), b"")]), "special file"
        ),
        ArchiveCase(
            "block_device.zip", _zip([*PROJECT, (_special("disk", stat.S_IFBLK), b"")]), "special file"
        ),
        ArchiveCase("socket.zip", _zip([*PROJECT, (_special("sock", stat.S_IFSOCK), b"")]), "special file"),
        ArchiveCase("bomb.zip", _zip([*PROJECT, ("big.bin", b"\0" * (32 << 20))]), bomb),
        ArchiveCase(
            "bomb_bzip2.zip", _zip([*PROJECT, ("big.bin", b"\0" * (16 << 20))], zipfile.ZIP_BZIP2), bomb
        ),
        ArchiveCase(
            "bomb_lzma.zip", _zip([*PROJECT, ("big.bin", b"\0" * (16 << 20))], zipfile.ZIP_LZMA), bomb
        ),
        ArchiveCase(
            "too_many_entries.zip",
            _zip([(f"f{i}", b"") for i in range(ENTRY_LIMIT + 1)], zipfile.ZIP_STORED),
            "entries",
        ),
        ArchiveCase("entry_count_lies.zip", _eocd_claims(65_535, 0x7FFFFFF0), "zip archive"),
        ArchiveCase("entry_count_small_lie.zip", _eocd_claims(1, 0), None),  # zipfile reads on
        ArchiveCase(
            "duplicate_names.zip", _zip([*PROJECT, ("config.yaml", b"scorer: other\n")]), "duplicate"
        ),
        ArchiveCase("file_then_folder.zip", _zip([*PROJECT, ("x", b"1"), ("x/y", b"2")]), "inside a file"),
        ArchiveCase("folder_then_file.zip", _zip([*PROJECT, ("x/", b""), ("x", b"2")]), "duplicate"),
        ArchiveCase("nul_in_name.zip", nul, None),  # zipfile cuts the name at the NUL: "evil"
        ArchiveCase("invalid_utf8_name.zip", bad_utf8, "utf-8"),
        ArchiveCase("dot_name.zip", _zip([*PROJECT, ("./", b"")]), "empty member name"),
        ArchiveCase("huge_name.zip", _zip([*PROJECT, ("n" * 10_000, b"x")]), "10000 characters"),
        ArchiveCase("deep_nesting.zip", _zip([*PROJECT, ("d/" * 3_000 + "x", b"x")]), "characters"),
        ArchiveCase("encrypted.zip", _patch_headers(_zip(PROJECT), flag=0x1), "encrypted"),
        ArchiveCase("unknown_method.zip", _patch_headers(_zip(PROJECT), method=99), "compression method"),
        ArchiveCase("corrupt_deflate.zip", _corrupt_deflate(), "corrupt"),
        ArchiveCase(
            "crc_mismatch.zip", _zip(PROJECT, zipfile.ZIP_STORED).replace(b"- tail", b"- tall"), "crc"
        ),
        ArchiveCase("overlapping_entries.zip", _overlapping(), "corrupt"),
        ArchiveCase("truncated.zip", _zip(PROJECT)[:-30], "zip archive"),
        ArchiveCase("empty.zip", b"", "zip archive"),
        ArchiveCase("not_a_zip.zip", b"\x1f\x8b\x08\x00" + b"\x00" * 100, "zip archive"),
        ArchiveCase("nested_bomb.zip", _zip([*PROJECT, ("inner.zip", nested_bomb)]), None),  # never opened
        ArchiveCase("fullwidth_dots.zip", _zip([*PROJECT, (f"．．／{ESCAPE}", b"x")]), None),
        ArchiveCase("encoded_dots.zip", _zip([*PROJECT, (f"%2e%2e%2f{ESCAPE}", b"x")]), None),
        ArchiveCase("rtl_override.zip", _zip([*PROJECT, ("txt.\u202egnp.exe", b"x")]), None),
    ]
    return cases


def write_archives(folder: Path) -> dict[Path, ArchiveCase]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for case in archive_corpus():
        path = folder / case.name
        path.write_bytes(case.data)
        written[path] = case
    return written
