"""``visionloop watch``: run the project's triggers until stopped (or once, with --once)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer

from visionloop.cli.context import current_project
from visionloop.cli.output import log_line, paragraphs, print_json, stdout
from visionloop.core.errors import ConfigError

_PROSE = """Start pipelines when something happens: the triggers: list of visionloop.yaml.

An objects trigger watches a folder or s3:// prefix (files matching its pattern; with queue:, S3
event notifications from that SQS queue instead of listing); a schedule trigger fires every
every_s seconds; an annotations trigger runs 'labelstudio sync'. Each event is stored once, so
a notification delivered twice or an object seen on every poll starts one run; an interrupted
run is resumed on the next pass. Ctrl-C (or SIGTERM) stops between events. Example:
"""

_EXAMPLE = """  triggers:
    - {name: dlc, event: objects, source: s3://lab/uploads, pattern: "*.zip",
       pipeline: dlc-train, params: {zip: "{uri}"}}
    - {name: nightly, event: schedule, every_s: 86400, pipeline: build}
    - {name: labels, event: annotations}
"""

HELP = paragraphs(_PROSE) + "\n\n" + _EXAMPLE


def watch(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One pass over the triggers, then exit.")] = False,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between passes.")] = 30.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print each pass's report as JSON.")] = False,
) -> None:
    from visionloop.pipelines.watch import watch_pass

    project = current_project(ctx)
    if not project.config.triggers:
        raise ConfigError(
            "no triggers: add a triggers: list to visionloop.yaml (see 'visionloop watch --help')"
        )
    stop = threading.Event()
    if not once:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_args: stop.set())
    while True:
        report = watch_pass(project, log=log_line)
        _print(report.to_dict(), json_output)
        if once or stop.wait(interval):
            return


def _print(report: dict[str, Any], json_output: bool) -> None:
    if json_output:
        print_json(report)
        return
    runs = report["runs"]
    failed = sum(run["status"] == "failed" for run in runs)
    stdout.print(
        f"{report['events']} new events ({report['duplicates']} repeats), {len(runs)} runs"
        + (f", [red]{failed} failed[/]" if failed else "")
        + (f", {len(report['syncs'])} syncs" if report["syncs"] else "")
    )
