"""The ``visionloop`` command. Thin: every command parses options and calls the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionloop import __version__
from visionloop.cli import (
    commands_active,
    commands_edge,
    commands_evaluate,
    commands_export,
    commands_formats,
    commands_ingest,
    commands_init,
    commands_labelstudio,
    commands_loop,
    commands_models,
    commands_pipeline,
    commands_serve,
    commands_status,
    commands_train,
    commands_watch,
)
from visionloop.cli.context import run_command
from visionloop.cli.output import paragraphs

app = typer.Typer(
    name="visionloop",
    help=(
        "visionloop: a local-first data engine for computer vision.\n\n"
        "Ingest images, label them with a model's help, train, evaluate and serve models, and "
        "send what the model is unsure of back to people. Start with 'visionloop init', then "
        "'visionloop ingest FOLDER' and 'visionloop status'."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"visionloop {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    project: Annotated[
        Path | None,
        typer.Option(
            "-p",
            "--project",
            help=(
                "Project folder (holding visionloop.yaml). "
                "Default: the current folder or its nearest parent with one."
            ),
            envvar="VISIONLOOP_PROJECT",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    ctx.obj = project


app.command("init", help=paragraphs(commands_init.HELP))(run_command(commands_init.init))
app.command("ingest", help=paragraphs(commands_ingest.HELP))(run_command(commands_ingest.ingest))
app.command("status", help=paragraphs(commands_status.HELP))(run_command(commands_status.status))
app.command("import", help=commands_formats.IMPORT_HELP)(run_command(commands_formats.import_))
app.command("export", help=commands_formats.EXPORT_HELP)(run_command(commands_formats.export))
app.command("train", help=paragraphs(commands_train.HELP))(run_command(commands_train.train))
app.command("evaluate", help=paragraphs(commands_evaluate.HELP))(run_command(commands_evaluate.evaluate))
app.add_typer(commands_models.models_app, name="models")
app.add_typer(commands_pipeline.pipeline_app, name="pipeline")
app.add_typer(commands_labelstudio.labelstudio_app, name="labelstudio")
app.command("serve", help=paragraphs(commands_serve.HELP))(run_command(commands_serve.serve))
app.command("export-model", help=paragraphs(commands_export.HELP))(run_command(commands_export.export_model))
app.command("prelabel", help=paragraphs(commands_active.PRELABEL_HELP))(run_command(commands_active.prelabel))
app.command("select", help=paragraphs(commands_active.SELECT_HELP))(run_command(commands_active.select))
app.command("autolabel", help=paragraphs(commands_active.AUTOLABEL_HELP))(
    run_command(commands_active.autolabel)
)
app.command("audit", help=paragraphs(commands_active.AUDIT_HELP))(run_command(commands_active.audit))
app.command("loop", help=paragraphs(commands_loop.LOOP_HELP))(run_command(commands_loop.loop))
app.command("watch", help=commands_watch.HELP)(run_command(commands_watch.watch))
app.command(
    "edge", help=paragraphs(commands_edge.HELP), context_settings=commands_edge.CONTEXT, add_help_option=False
)(commands_edge.edge)


def main() -> None:
    app()
