"""``visionloop labelstudio push|pull|sync``: the project's Label Studio project, both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from visionloop.cli.context import current_project, run_command
from visionloop.cli.output import paragraphs, print_json, progress_bar, stderr, stdout
from visionloop.core.errors import ConfigError, ValidationError

HELP = """Label Studio: push tasks with the model's predictions, pull people's annotations back.

Label Studio's URL is labelstudio.url in visionloop.yaml (or $LABEL_STUDIO_URL); its API token
comes only from $LABEL_STUDIO_API_KEY. The project's Label Studio project (titled
labelstudio.project_title, default the project name) is created on first use with a labeling
config generated from the label schema. S3 images go as presigned URLs; local images must lie in
folders under labelstudio.local_files_root, Label Studio's LOCAL_FILES_DOCUMENT_ROOT.
"""

labelstudio_app = typer.Typer(help=paragraphs(HELP), no_args_is_help=True, rich_markup_mode="rich")

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@labelstudio_app.command(
    "push",
    help=paragraphs(
        """Send items to Label Studio as tasks with their newest prediction.

By default the items of the newest 'visionloop select' run; --run picks another selection,
--unlabelled takes every item without a label, --items-file a file of item ids (one per line).
Bulk and chunked (labelstudio.chunk_size tasks per request); safe to repeat: an item that is
already a task is never pushed twice, it gets the new prediction when the model changed.
"""
    ),
)
@run_command
def push(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="A select run whose items to push.")] = None,
    unlabelled: Annotated[bool, typer.Option("--unlabelled", help="Every item without a label.")] = False,
    items_file: Annotated[
        Path | None, typer.Option("--items-file", help="File of item ids.", exists=True, dir_okay=False)
    ] = None,
    json_output: Json = False,
) -> None:
    from visionloop.labeling.labelstudio import push_items

    project = current_project(ctx)
    items = _items(project, run, unlabelled, items_file)
    with progress_bar("Pushing", enabled=not json_output) as progress:
        report = push_items(project, items, progress=progress)
    if json_output:
        print_json(report.to_dict())
        return
    stdout.print(
        f"Label Studio project {report.labelstudio_project}: [green]{report.created} tasks created[/], "
        f"{report.predictions_added} predictions added, {report.already_there} already there"
        + (f", {report.adopted} adopted from an interrupted push" if report.adopted else "")
        + f" in {report.seconds:.1f} s"
    )


@labelstudio_app.command(
    "pull",
    help=paragraphs(
        """Bring new and edited annotations back as human labels (with their annotator).

Incremental and safe to repeat: an annotation already pulled and unchanged is never imported
twice; an edited one becomes a new label version; skipped ones and ones that do not fit the
label schema are recorded with the reason, never imported; deleted ones are recorded as
deleted (the label history stays in the catalog).
"""
    ),
)
@run_command
def pull(ctx: typer.Context, json_output: Json = False) -> None:
    from visionloop.labeling.labelstudio import pull_annotations

    with progress_bar("Pulling", enabled=not json_output) as progress:
        report = pull_annotations(current_project(ctx), progress=progress)
    if json_output:
        print_json(report.to_dict())
        return
    stdout.print(
        f"{report.tasks} changed tasks: [green]{report.imported} new[/], {report.updated} edited, "
        f"{report.unchanged} unchanged, {report.skipped} skipped, {report.deleted} deleted, "
        f"[{'red' if report.invalid else 'default'}]{report.invalid} invalid[/] in {report.seconds:.1f} s"
    )
    for problem in report.problems or []:
        stderr.print(f"  {problem}", highlight=False)


@labelstudio_app.command(
    "sync",
    help=paragraphs(
        """One pass of the loop: pull, retrain if the policy says so, push again.

The retrain: section of visionloop.yaml decides (after_labels new human labels, every_s, a
START_TRAINING request from Label Studio, debounce_s of quiet); --train asks for a training
now. A retraining is a recorded model-assisted-labeling run (train, pre-label, select, push)
that resumes if it was interrupted; only one runs at a time. Run it from cron or 'watch'.
"""
    ),
)
@run_command
def sync(
    ctx: typer.Context,
    train: Annotated[bool, typer.Option("--train", help="Retrain now whatever the policy says.")] = False,
    json_output: Json = False,
) -> None:
    from visionloop.pipelines.sync import sync_labelstudio

    report = sync_labelstudio(
        current_project(ctx), train=train, log=lambda line: stderr.print(line, highlight=False)
    )
    if json_output:
        print_json(report.to_dict())
        return
    if report.pipeline_run:
        stdout.print(f"retrained: pipeline run {report.pipeline_run} {report.pipeline_status}")
    else:
        stdout.print(f"no retraining: {report.note or report.decision.get('reason', '')}", highlight=False)


def _items(project: Any, run: str | None, unlabelled: bool, items_file: Path | None) -> list[int]:
    if sum(bool(choice) for choice in (run, unlabelled, items_file)) > 1:
        raise ConfigError("choose one of --run, --unlabelled and --items-file")
    with project.open_catalog() as catalog:
        if unlabelled:
            labelled = catalog.annotated_item_ids()
            return [item.id for item in catalog.iter_items() if item.id not in labelled]
        if items_file is not None:
            try:
                return [int(line) for line in items_file.read_text().split() if line.strip()]
            except ValueError as exc:
                raise ValidationError(f"{items_file}: expected one item id per line ({exc})") from None
        record = (
            catalog.get_run(run)
            if run
            else next(
                (r for r in catalog.list_runs(kind="select", limit=200) if r.status == "succeeded"), None
            )
        )
    if record is None:
        raise ValidationError("no finished selection: run 'visionloop select' first, or pass --unlabelled")
    if record.kind != "select":
        raise ValidationError(f"run {record.id} is a {record.kind} run, not a select run")
    return [int(item) for item in (record.outputs or {}).get("items", [])]
