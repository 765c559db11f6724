"""The command line: help that explains, JSON that adds up, errors that name the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from images import bad_samples, good_samples
from servers import create_database
from visionloop.cli.app import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("command", "phrases"),
    [
        ((), ["init", "ingest", "status", "--project"]),
        (
            ("init",),
            ["--task", "--classes", "--keypoints", "--skeleton", "--catalog", "--storage", "postgresql"],
        ),
        (("ingest",), ["SOURCE", "--split", "--copy", "--json", "rejected", "s3://"]),
        (("status",), ["provenance", "--json"]),
    ],
)
def test_help_explains_each_command(command: tuple[str, ...], phrases: list[str]) -> None:
    code, output = invoke(*command, "--help")
    assert code == 0
    for phrase in phrases:
        assert phrase in output, phrase


def test_init_ingest_status_end_to_end(tmp_path: Path) -> None:
    source = tmp_path / "images"
    for sample in good_samples() + bad_samples():
        (source / sample.name).parent.mkdir(parents=True, exist_ok=True)
        (source / sample.name).write_bytes(sample.data)
    project = tmp_path / "proj"

    code, output = invoke("init", str(project), "--task", "detection", "--classes", "cat,dog", "--json")
    assert code == 0, output
    assert json.loads(output)["classes"] == ["cat", "dog"]
    assert (project / "visionloop.yaml").is_file() and (project / "catalog.db").is_file()

    code, output = invoke("-p", str(project), "ingest", str(source), "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["added"] + report["unchanged"] + report["rejected"] == report["seen"]
    assert (report["added"], report["rejected"]) == (len(good_samples()), len(bad_samples()))
    assert all({"path", "reason"} <= set(r) for r in report["rejections"])

    code, output = invoke("-p", str(project), "status", "--json")
    assert code == 0, output
    status = json.loads(output)
    assert status["items"] == len(good_samples())
    assert sum(status["items_by_split"].values()) == status["items"]
    assert status["files"]["rejected"] == len(bad_samples())

    code, output = invoke("-p", str(project), "status")
    assert code == 0 and "Items" in output and "provenance" in output


def test_keypoints_project_with_skeleton(tmp_path: Path) -> None:
    code, output = invoke(
        "init",
        str(tmp_path / "pose"),
        "--task",
        "keypoints",
        "--classes",
        "person",
        "--keypoints",
        "nose,left_eye,right_eye",
        "--skeleton",
        "1-2,1-3",
    )
    assert code == 0, output
    text = (tmp_path / "pose" / "visionloop.yaml").read_text()
    assert "left_eye" in text and "skeleton" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--task", "detection"), "at least one class"),
        (("--task", "keypoints", "--classes", "p"), "needs keypoint names"),
        (
            ("--task", "keypoints", "--classes", "p", "--keypoints", "a,b", "--skeleton", "1-9"),
            "outside 1..2",
        ),
        (("--classes", "a", "--catalog", "mysql://x/y"), "unsupported catalog URL"),
    ],
)
def test_init_errors_are_one_clear_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    code, output = invoke("init", str(tmp_path / "p"), *args)
    assert code == 1
    assert message in output
    assert "Traceback" not in output


@pytest.mark.postgres
def test_a_catalog_password_from_the_environment_is_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    monkeypatch.setenv("VL_TEST_DB_PASSWORD", "hunter2")  # the test server trusts any password
    url = create_database(postgres_url, "password_test").replace(
        "postgres@", "postgres:${VL_TEST_DB_PASSWORD}@"
    )
    code, output = invoke("init", str(tmp_path / "p"), "--classes", "a", "--catalog", url)
    assert code == 0 and "postgres:***@127.0.0.1" in output and "hunter2" not in output
    code, output = invoke("init", str(tmp_path / "q"), "--classes", "a", "--catalog", url, "--json")
    assert code == 0 and "hunter2" not in output
    refused = url.replace(url.split("@")[1].split("/")[0], "127.0.0.1:9")  # nothing listens on 9
    code, output = invoke("init", str(tmp_path / "r"), "--classes", "a", "--catalog", refused)
    assert code == 1 and "postgres:***@127.0.0.1:9" in output and "hunter2" not in output


def test_init_refuses_to_overwrite_a_project(tmp_path: Path) -> None:
    assert invoke("init", str(tmp_path), "--classes", "a")[0] == 0
    code, output = invoke("init", str(tmp_path), "--classes", "b")
    assert code == 1 and "already exists" in output


def test_commands_outside_a_project_say_how_to_create_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = invoke("status")
    assert code == 1 and "visionloop init" in output
    code, output = invoke("-p", str(tmp_path), "status")
    assert code == 1 and "no visionloop.yaml" in output


def test_bad_config_names_the_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "visionloop.yaml").write_text(
        "name: x\nlabels: {task: detection, classes: [a]}\ncatalgo: typo\n"
    )
    code, output = invoke("-p", str(tmp_path), "status")
    assert code == 1 and "visionloop.yaml" in output and "catalgo" in output
    (tmp_path / "visionloop.yaml").write_text("!!python/object/apply:os.system ['echo pwned']\n")
    code, output = invoke("-p", str(tmp_path), "status")
    assert code == 1 and "invalid YAML" in output


def test_ingest_option_errors(tmp_path: Path) -> None:
    invoke("init", str(tmp_path), "--classes", "a")
    code, output = invoke("-p", str(tmp_path), "ingest", str(tmp_path), "--split", "holdout")
    assert code == 1 and "split must be one of" in output
    code, output = invoke("-p", str(tmp_path), "ingest", str(tmp_path / "absent"))
    assert code == 1 and "no such file or directory" in output


def test_the_command_line_starts_without_loading_torch() -> None:
    """Every 'visionloop' call imports the CLI; torch (seconds to import) loads only when needed."""
    import subprocess
    import sys

    probe = "import sys, visionloop.cli.app; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
