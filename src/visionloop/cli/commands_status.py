"""``visionloop status``: what the catalog holds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from visionloop.cli.context import current_project
from visionloop.cli.output import print_json, stdout

HELP = """Show the project's items per split, labels by provenance (human, model, auto) and class balance."""


def status(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    project = current_project(ctx)
    with project.open_catalog() as catalog:
        summary = catalog.summary()
    summary = {"project": project.config.name, "task": project.config.labels.task.value, **summary}
    if json_output:
        print_json(summary)
        return
    stdout.print(
        f"[bold]{summary['project']}[/] ({summary['task']}): {summary['items']} items, "
        f"{summary['labelled']} labelled, {summary['unlabelled']} unlabelled"
    )
    splits = Table("split", "items", title="Items")
    for split, count in summary["items_by_split"].items():
        splits.add_row(split, str(count))
    stdout.print(splits)
    provenance = Table("provenance", "labelled items", title="Labels")
    for kind, count in summary["labelled_by_provenance"].items():
        provenance.add_row(kind, str(count))
    stdout.print(provenance)
    if summary["class_balance"]:
        balance = Table("class", "count", title="Class balance")
        for class_name, count in summary["class_balance"].items():
            balance.add_row(class_name, str(count))
        stdout.print(balance)
    rejected = summary["files"].get("rejected", 0)
    if rejected:
        stdout.print(f"[yellow]{rejected} rejected files[/] (see 'visionloop ingest --json' for reasons)")
