"""``visionloop import`` and ``visionloop export``: labels in and out of the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from visionloop.cli.context import current_project
from visionloop.cli.output import print_json, stdout
from visionloop.core.errors import ConfigError
from visionloop.core.provenance import ProvenanceKind
from visionloop.formats.registry import available_formats
from visionloop.formats.transfer import export_labels, import_labels
from visionloop.ingest import IngestOptions
from visionloop.ingest import ingest as run_ingest


def _format_list() -> str:
    return "\n\n".join(f"[bold]{spec.name}[/]: {spec.description}" for spec in available_formats())


IMPORT_HELP = (
    "Import labels from PATH (a file or folder in --format) onto the project's images.\n\n"
    "Each labeled image is matched to a catalog item by its path under --images (default: the folder "
    "holding PATH), which is ingested first, incrementally. Human labels become annotation versions; "
    "model labels (with scores and model versions) become predictions. Invalid records are rejected "
    "with file, locator and reason and the rest are written in one transaction; with --strict nothing "
    "is written if anything was rejected.\n\n"
    f"Formats:\n\n{_format_list()}"
)

EXPORT_HELP = (
    "Export labels to OUT in --format, from a snapshot: a new snapshot of the current labels by default, "
    "or --snapshot ID. With --predictions, write each item's newest model predictions instead.\n\n"
    f"Formats:\n\n{_format_list()}"
)


def import_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Annotation file or folder to import.", exists=True)],
    format_name: Annotated[str, typer.Option("--format", "-f", help="Format of PATH (see the list above).")],
    images: Annotated[
        str | None, typer.Option(help="Folder or s3:// prefix the label file's image names are relative to.")
    ] = None,
    as_kind: Annotated[
        ProvenanceKind | None,
        typer.Option("--as", help="Treat every label as 'human' or 'model' output, whatever the file says."),
    ] = None,
    model_version: Annotated[str | None, typer.Option(help="Model version for --as model.")] = None,
    reference: Annotated[
        Path | None, typer.Option(help="COCO results files: the ground-truth file naming their images.")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Write nothing if any record is rejected.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    project = current_project(ctx)
    root = images or str((path if path.is_dir() else path.parent).resolve())
    with project.open_catalog() as catalog:

        def ingest_root(url: str) -> None:
            run_ingest(
                catalog, project.filesystem_for(url), IngestOptions(workers=project.config.ingest.workers)
            )

        report = import_labels(
            catalog,
            format_name,
            path,
            image_root=root,
            schema=project.config.labels,
            as_kind=as_kind,
            model_version=model_version,
            strict=strict,
            reference=reference,
            ingest_images=ingest_root,
        )
    if json_output:
        print_json(report.to_dict())
    else:
        stdout.print(
            f"{report.records} records in {report.path}: [green]{report.imported} imported[/], "
            f"[{'red' if report.rejected else 'default'}]{report.rejected} rejected[/]; "
            f"{report.annotations_written} annotations and {report.predictions_written} predictions written"
            + ("" if report.written else " ([red]nothing written: --strict[/])")
        )
        if report.images_not_found:
            stdout.print(
                f"[yellow]{len(report.images_not_found)} labeled images are not in the catalog[/], e.g. "
                f"{report.images_not_found[0]}"
            )
        if report.rejections:
            table = Table("file", "where", "reason")
            for rejection in report.rejections[:30]:
                table.add_row(rejection["file"], rejection["locator"], rejection["reason"])
            stdout.print(table)
    if not report.written:
        raise typer.Exit(1)


def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="Output file or folder.")],
    format_name: Annotated[str, typer.Option("--format", "-f", help="Format to write (see the list above).")],
    snapshot: Annotated[
        str | None, typer.Option(help="Snapshot id to export. Default: a new snapshot.")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Only items of this split (train, val, test).")] = None,
    predictions: Annotated[bool, typer.Option(help="Export model predictions instead of labels.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    project = current_project(ctx)
    if split is not None and split not in ("train", "val", "test"):
        raise ConfigError(f"split must be train, val or test; got {split!r}")
    with project.open_catalog() as catalog:
        report = export_labels(
            catalog,
            format_name,
            out,
            schema=project.config.labels,
            snapshot_id=snapshot,
            split=split,
            predictions=predictions,
        )
    if json_output:
        print_json(report.to_dict())
        return
    stdout.print(
        f"Wrote {report.labels} labels of {report.images} images from snapshot {report.snapshot} "
        f"as {report.format}: {', '.join(report.files)}"
    )
