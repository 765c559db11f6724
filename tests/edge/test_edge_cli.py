"""The edge command line: ``python -m visionloop.edge`` and ``visionloop edge`` share one parser;
JSON summaries, predictions on stdout, one-line errors, and a real run that imports no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tiny_models import write_model
from visionloop.cli.app import app
from visionloop.edge.cli import main


def test_run_prints_a_json_summary(edge_project, photo_folder: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    output = tmp_path / "out.jsonl"
    args = ["run", "--model", str(edge_project.model), "--source", str(photo_folder), "-o", str(output)]
    assert main([*args, "--batch-size", "4", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["predicted"], summary["skipped_files"], len(summary["failed"])) == (9, 1, 1)
    assert summary["model_version"] == f"run:{edge_project.run_id}" and summary["capture_to"] is None
    assert len(output.read_text().splitlines()) == 9


def test_predictions_can_go_to_stdout(edge_project, photo_folder: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["run", "--model", str(edge_project.model), "--source", str(photo_folder), "-o", "-"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert len(lines) == 9 and all(line["prediction"]["type"] == "class" for line in lines)
    assert "9 of 10 images predicted" in captured.err and "unreadable: " in captured.err
    assert "broken.jpg" in captured.err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root, "not a visionloop model"),
        (lambda root: write_model(root / "m", "classifier").folder, "no ONNX export"),
        (lambda root: root / "absent", "no such model folder"),
    ],
)
def test_a_bad_model_is_one_line_and_exit_1(
    make, message: str, photo_folder: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    model = make(tmp_path)
    assert main(["run", "--model", str(model), "--source", str(photo_folder), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_options_are_checked(photo_folder: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exited:
        main(["run", "--model", "m", "--source", str(photo_folder), "--sample", "2"])
    assert exited.value.code == 2 and "must lie within [0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--model", "m"])
    assert "run needs --model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--sync-only"])
    assert "--sync-only needs --capture-to" in capsys.readouterr().err


def test_the_main_command_line_passes_through(edge_project, photo_folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    helped = runner.invoke(app, ["edge", "run", "--help"])
    assert (
        helped.exit_code == 0
        and "--capture-below" in helped.output
        and "visionloop edge run" in helped.output
    )
    output = tmp_path / "out.jsonl"
    args = ["edge", "run", "--model", str(edge_project.model), "--source", str(photo_folder)]
    result = runner.invoke(app, [*args, "-o", str(output), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["predicted"] == 9
    failed = runner.invoke(app, ["edge", "run", "--model", str(tmp_path), "--source", str(photo_folder)])
    assert failed.exit_code == 1


def test_a_real_run_imports_no_torch(edge_project, photo_folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The import-linter contract checks the static imports; this checks the running process."""
    code = (
        "import sys\n"
        "from visionloop.edge.cli import main\n"
        f"status = main(['run', '--model', {str(edge_project.model)!r}, '--source', {str(photo_folder)!r},"
        f" '-o', {str(tmp_path / 'out.jsonl')!r}, '--capture-to', {str(tmp_path / 'caps')!r},"
        f" '--spool', {str(tmp_path / 'spool')!r}, '--capture-below', '1', '--json'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'sqlalchemy'))"
        "\n"
        "print(json.dumps({'status': status, 'heavy': heavy}))\n"
    ).replace("import sys\n", "import json, sys\n", 1)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"status": 0, "heavy": []}
    assert len(list((tmp_path / "caps" / "images").rglob("*"))) > 0
