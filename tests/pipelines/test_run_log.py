"""A pipeline run's log file: stamped lines appended as said, read back in whole lines."""

from __future__ import annotations

from pathlib import Path

from visionloop.pipelines.run_log import RunLog, read_log


def test_lines_are_stamped_appended_and_passed_on(tmp_path: Path) -> None:
    heard: list[str] = []
    log = RunLog(tmp_path / "run" / "pipeline.log", heard.append)
    log("first")
    log("two\nlines")
    RunLog(tmp_path / "run" / "pipeline.log")("after a restart")  # a resumed run appends
    lines = (tmp_path / "run" / "pipeline.log").read_text().splitlines()
    assert [line[20:] for line in lines] == ["first", "two", "lines", "after a restart"]
    assert all(line[4] == "-" and line[19] == " " for line in lines)
    assert heard == ["first", "two\nlines"]


def test_reads_give_whole_lines_and_where_to_go_on(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.log"
    assert read_log(path).text == ""  # nothing logged yet
    path.write_bytes(b"one\ntwo\nthree (still being writ")
    chunk = read_log(path, after=0)
    assert (chunk.text, chunk.end) == ("one\ntwo\n", 8)  # the unfinished line waits
    with path.open("ab") as out:
        out.write(b"ten)\n")
    assert read_log(path, after=chunk.end).text == "three (still being written)\n"


def test_the_default_read_is_the_tail_from_a_line_start(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.log"
    path.write_text("".join(f"line {n:04d}\n" for n in range(1000)))  # 10 bytes a line
    tail = read_log(path, limit=95)
    assert tail.text.splitlines() == [f"line {n:04d}" for n in range(991, 1000)]
    assert tail.end == tail.size == 10_000


def test_a_line_longer_than_a_read_still_moves_on(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.log"
    path.write_text("x" * 300 + "\nnext\n")
    first = read_log(path, after=0, limit=100)
    assert (len(first.text), first.end) == (100, 100)
    assert read_log(path, after=first.end, limit=1000).text == "x" * 200 + "\nnext\n"
