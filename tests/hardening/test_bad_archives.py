"""Every malicious archive through the archive reader (``extract_zip``, which ``dlc-train``
uses) and through ``visionloop import --format deeplabcut``: refused with the archive's name and
the reason, nothing written outside the extraction folder, nothing left inside it, the catalog
untouched; the harmless oddities (a NUL-cut name, fullwidth dots) extract inside, as named."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardening.bounds import Bounds
from hardening.corpus_archives import ENTRY_LIMIT, ESCAPE, PROJECT, archive_corpus, write_archives
from hardening_tally import tally
from visionloop.cli.app import app
from visionloop.formats import deeplabcut
from visionloop.formats.safeio import FormatFileError, extract_zip

runner = CliRunner()


def _escaped(*roots: Path) -> list[Path]:
    found = [path for root in roots for path in root.rglob(ESCAPE)]
    return found + [Path(p) for p in (f"/{ESCAPE}", f"/tmp/{ESCAPE}") if Path(p).exists()]


def test_the_corpus_has_30_malicious_archives() -> None:
    assert sum(case.reason is not None for case in archive_corpus()) >= 30


def test_extract_zip_refuses_each_malicious_archive_and_writes_nothing(tmp_path: Path) -> None:
    archives = write_archives(tmp_path / "in")
    bounds, wrong = Bounds(), []
    for path, case in archives.items():
        box = tmp_path / "box" / case.name  # the sandbox: "../" from out/ lands here
        out = box / "out"
        box.mkdir(parents=True)
        with bounds.check(case.name):
            try:
                extract_zip(path, out, max_entries=ENTRY_LIMIT)
                outcome = "extracted"
            except FormatFileError as exc:
                outcome = str(exc)
        if case.reason is None:
            if outcome != "extracted":
                wrong.append(f"{case.name}: {outcome}")
        elif not outcome.startswith(str(path)) or case.reason not in outcome.lower():
            wrong.append(f"{case.name}: expected {case.reason!r}, got {outcome[:300]!r}")
        elif out.exists() and any(p.is_file() for p in out.rglob("*")):
            wrong.append(f"{case.name}: refused but left {[str(p) for p in out.rglob('*')][:3]}")
        if {p.name for p in box.iterdir()} - {"out"}:
            wrong.append(f"{case.name}: wrote beside the folder: {sorted(p.name for p in box.iterdir())}")
    assert not wrong, wrong
    assert not _escaped(tmp_path / "box"), _escaped(tmp_path / "box")
    assert not bounds.over, (bounds.over, bounds.summary())
    print(bounds.summary())
    tally("bad inputs refused: archives (extract_zip)", sum(c.reason is not None for c in archives.values()))


@pytest.mark.slow
def test_import_command_refuses_each_malicious_archive_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deeplabcut, "ARCHIVE_ENTRIES", ENTRY_LIMIT)
    scratch = tmp_path / "scratch" / "tmp"  # where the importer extracts: "../" lands in scratch/
    scratch.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    project = tmp_path / "project"
    assert (
        runner.invoke(
            app,
            ["init", str(project), "--task", "keypoints", "--classes", "animal", "--keypoints", "nose,tail"],
        ).exit_code
        == 0
    )
    archives = write_archives(tmp_path / "in")
    bounds, wrong, refused = Bounds(), [], 0
    for path, case in archives.items():
        with bounds.check(case.name):
            result = runner.invoke(
                app, ["-p", str(project), "import", str(path), "-f", "deeplabcut", "--json"]
            )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            wrong.append(f"{case.name}: crashed: {result.exception!r}")
            continue
        if case.reason is None:
            continue  # a harmless oddity: imported or not, only nothing may escape (below)
        # Not --strict: the command succeeds with the archive as its one rejected record.
        report = json.loads(result.output) if result.exit_code == 0 else {}
        text = " ".join(result.output.split()).lower()
        if (
            report.get("imported")
            or report.get("annotations_written")
            or path.name.lower() not in text
            or case.reason not in text
        ):
            wrong.append(f"{case.name}: exit {result.exit_code}, {result.output[-400:]!r}")
        refused += 1
    assert not wrong, wrong
    assert not _escaped(tmp_path / "scratch", tmp_path / "in", project), "a member escaped"
    assert list(scratch.iterdir()) == []  # every extraction folder removed
    assert not bounds.over, (bounds.over, bounds.summary())
    print(bounds.summary())
    tally("bad inputs refused: archives (visionloop import)", refused)


def test_regression_zips_written_by_python_or_windows_tools_are_plain_files(tmp_path: Path) -> None:
    """``zipfile.writestr`` stores permission bits without a file type (mode 0o600): extract_zip
    took that for a "special file" and refused every such archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for name, data in PROJECT:
            handle.writestr(name, data)
    (tmp_path / "p.zip").write_bytes(buffer.getvalue())
    written = extract_zip(tmp_path / "p.zip", tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == sorted(
        n for n, _ in PROJECT
    )


def test_regression_a_member_refused_halfway_leaves_no_partial_file(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("big.bin", b"\0" * (8 << 20))
    (tmp_path / "bomb.zip").write_bytes(buffer.getvalue())
    with pytest.raises(FormatFileError, match="compression bomb"):
        extract_zip(tmp_path / "bomb.zip", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
