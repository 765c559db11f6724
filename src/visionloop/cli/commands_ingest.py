"""``visionloop ingest``: add images from a folder or S3 prefix to the catalog."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from visionloop.cli.context import current_project
from visionloop.cli.output import print_json, progress_bar, stdout
from visionloop.core.media import ItemSource
from visionloop.ingest import AUTO_SPLIT
from visionloop.ingest import ingest as run_ingest
from visionloop.pipelines.steps import project_ingest_options

HELP = """Add the images under SOURCE (a folder, a file or s3://bucket/prefix) to the catalog.

Files are recognised by content, not extension, and deduplicated by SHA-256. Re-running over
an unchanged tree only lists and stats files. Bad files (empty, truncated, corrupt, not
images, decompression bombs, unreadable pixel modes) are recorded as rejected with a reason
and never modified. Images are referenced where they are unless --copy is given.
"""


def ingest(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Folder, file or s3://bucket/prefix to ingest.")],
    split: Annotated[
        str,
        typer.Option(help="Split for new items: train, val, test, or auto (stable, by content hash)."),
    ] = AUTO_SPLIT,
    copy: Annotated[bool, typer.Option("--copy", help="Copy images into the project's storage.")] = False,
    capture: Annotated[
        bool,
        typer.Option(
            "--capture",
            help=(
                "Mark new items as captured from production (source 'capture'), e.g. the prefix "
                "'visionloop edge run --capture-to' fills; its *.prediction.json sidecars are skipped."
            ),
        ),
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Glob of paths or names to skip; repeatable."),
    ] = None,
    follow_links: Annotated[
        bool, typer.Option("--follow-links", help="Ingest the targets of symbolic links.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Reader threads. Default: from config.")
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(min=1, max=10_000, help="Files per catalog transaction. Default: from config."),
    ] = None,
    max_pixels: Annotated[
        int | None,
        typer.Option(min=1, help="Reject images with more pixels. Default: from config."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    project = current_project(ctx)
    options = project_ingest_options(
        project,
        split=split,
        source=ItemSource.CAPTURE if capture else ItemSource.INGEST,
        max_pixels=max_pixels,
        workers=workers,
        batch_size=batch_size,
        follow_links=follow_links,
        exclude=tuple(exclude or ()),
        copy_to=project.storage if copy else None,
    )
    with (
        project.open_catalog() as catalog,
        progress_bar("Ingesting", enabled=not json_output) as progress,
    ):
        report = run_ingest(catalog, project.filesystem_for(source), options, progress)
    if json_output:
        print_json(report.to_dict())
        return
    stdout.print(
        f"[bold]{report.seen}[/] files in {report.source}: [green]{report.added} added[/], "
        f"{report.unchanged} unchanged ({report.duplicates} duplicates), "
        f"[{'red' if report.rejected else 'default'}]{report.rejected} rejected[/]"
        + (f", {report.missing} missing since last run" if report.missing else "")
        + f" in {report.seconds:.1f} s"
    )
    if report.rejections:
        table = Table("rejected file", "reason", title=None, show_lines=False)
        for rejection in report.rejections[:50]:
            table.add_row(rejection.path, rejection.reason)
        stdout.print(table)
        if len(report.rejections) > 50:
            stdout.print(f"... and {len(report.rejections) - 50} more (use --json for the full list)")
