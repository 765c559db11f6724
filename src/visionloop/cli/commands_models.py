"""``visionloop models``: register trained models, move aliases through the gate and approvals,
roll back, and read the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from visionloop.cli.context import acting_user, current_project, run_command
from visionloop.cli.output import paragraphs, print_json, stderr, stdout
from visionloop.registry import PRODUCTION, ModelRegistry, ModelVersion, RegistryEvent, project_registry

HELP = """Model versions, aliases and approvals.

A version is a trained model's weights with their lineage (training run, dataset snapshot,
config, metrics, parent version) and the verdict of the project's gate from its newest
'visionloop evaluate'. Aliases (candidate, staging, production, or any name) point at versions;
serving follows them. A version that failed its gate cannot be promoted; one not evaluated yet
only becomes a candidate; production takes only an approved version. Every change is recorded
with who made it, when and why.
"""

models_app = typer.Typer(help=paragraphs(HELP), no_args_is_help=True, rich_markup_mode="rich")

Actor = Annotated[
    str | None,
    typer.Option("--by", help="Who makes the change. Default: $VISIONLOOP_USER, else the login name."),
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Reference = Annotated[str, typer.Argument(help="A version (3 or v3) or an alias (production).")]


@contextmanager
def _registry(ctx: typer.Context) -> Iterator[ModelRegistry]:
    project = current_project(ctx)
    with project.open_catalog() as catalog:
        registry = project_registry(project, catalog)
        yield registry
        if registry.mirror_error:
            stderr.print(f"[yellow]warning:[/] not mirrored to MLflow: {registry.mirror_error}")


def _gate_text(version: ModelVersion) -> str:
    if version.gate is None:
        return "[yellow]not evaluated[/]"
    return "[green]passed[/]" if version.gate.passed else "[red]failed[/]"


def _headline(version: ModelVersion) -> str:
    metrics = {key: value for key, value in version.metrics.items() if isinstance(value, int | float)}
    return ", ".join(f"{key} {value:.3f}" for key, value in list(metrics.items())[:3])


def _print_version(version: ModelVersion, events: list[RegistryEvent]) -> None:
    aliases = ", ".join(version.aliases) or "-"
    stdout.print(f"[bold]v{version.version}[/] {version.task} {version.family}  aliases: {aliases}")
    stdout.print(f"  weights  {version.weights_sha256}  ({version.model_path})")
    stdout.print(f"  run      {version.run_id or '-'}   snapshot {version.snapshot_id or '-'}")
    stdout.print(f"  parent   {'v' + str(version.parent_version) if version.parent_version else '-'}")
    stdout.print(f"  metrics  {_headline(version) or '-'}")
    gate = _gate_text(version)
    if version.gate is not None:
        gate += f" (evaluation {version.gate.evaluation_run[:8]})"
        gate += "".join(f"\n           {reason}" for reason in version.gate.reasons)
    stdout.print(f"  gate     {gate}")
    for name, info in version.artifacts.items():
        stdout.print(f"  artifact {name}: {info.get('path', info) if isinstance(info, dict) else info}")
    stdout.print(f"  created  {version.created_at:%Y-%m-%d %H:%M} by {version.created_by}")
    for event in events:
        stdout.print(f"  {_event_text(event)}")


def _event_text(event: RegistryEvent) -> str:
    target = f" -> {event.alias}" if event.alias else ""
    before = f" (was v{event.previous_version})" if event.previous_version else ""
    why = f": {event.reason}" if event.reason else ""
    when = f"{event.created_at:%Y-%m-%d %H:%M}"
    return f"{when} {event.action} v{event.version}{target}{before} by {event.actor}{why}"


@models_app.command("list", help="Every registered version, newest first, with its aliases and gate.")
@run_command
def list_versions(ctx: typer.Context, json_output: Json = False) -> None:
    with _registry(ctx) as registry:
        versions = registry.versions()
    if json_output:
        print_json([version.to_dict() for version in versions])
        return
    if not versions:
        stdout.print("no registered models yet: 'visionloop models register RUN' adds one")
        return
    table = Table("version", "aliases", "task", "family", "gate", "metrics", "run", "created")
    for version in versions:
        table.add_row(
            version.name,
            ", ".join(version.aliases),
            version.task,
            version.family,
            _gate_text(version),
            _headline(version),
            (version.run_id or "")[:8],
            f"{version.created_at:%Y-%m-%d %H:%M} {version.created_by}",
        )
    stdout.print(table)


@models_app.command("show", help="One version: lineage, gate, artifacts and its history.")
@run_command
def show(ctx: typer.Context, reference: Reference, json_output: Json = False) -> None:
    with _registry(ctx) as registry:
        version = registry.refresh_gate(reference)
        events = registry.history(version.name)
    if json_output:
        print_json({**version.to_dict(), "history": [event.to_dict() for event in events]})
        return
    _print_version(version, events)


@models_app.command(
    "register", help="Register a trained model (training run id or model folder) as a new version."
)
@run_command
def register(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Training run id (or a unique prefix) or model folder.")],
    description: Annotated[str | None, typer.Option(help="What is new in this version.")] = None,
    parent: Annotated[
        str | None, typer.Option(help="Parent version, when training did not start from its weights.")
    ] = None,
    by: Actor = None,
    json_output: Json = False,
) -> None:
    from visionloop.models.artifact import read_artifact
    from visionloop.tasks.registry import require_project_task, resolve_model_folder

    project = current_project(ctx)
    folder = resolve_model_folder(project, model)
    require_project_task(project, read_artifact(folder).schema, folder, "register")
    with _registry(ctx) as registry:
        version = registry.register(folder, acting_user(by), description=description, parent=parent)
    _done(version, f"registered [bold]v{version.version}[/] (gate: {_gate_text(version)})", json_output)


@models_app.command("promote", help="Point an alias at a version (the gate and approvals permitting).")
@run_command
def promote(
    ctx: typer.Context,
    reference: Reference,
    to: Annotated[str, typer.Option("--to", help="The alias: candidate, staging, production or any name.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
    by: Actor = None,
    json_output: Json = False,
) -> None:
    with _registry(ctx) as registry:
        version = registry.promote(reference, to, acting_user(by), reason)
    _done(version, f"[bold]{to}[/] now points at [bold]v{version.version}[/]", json_output)


@models_app.command("approve", help="Record a reviewer's approval (or --reject) of a version for production.")
@run_command
def approve(
    ctx: typer.Context,
    reference: Reference,
    reason: Annotated[str, typer.Option(help="Why: what was checked.")],
    for_alias: Annotated[str, typer.Option("--for", help="The alias the decision is for.")] = PRODUCTION,
    reject: Annotated[bool, typer.Option("--reject", help="Record a rejection instead.")] = False,
    by: Actor = None,
    json_output: Json = False,
) -> None:
    with _registry(ctx) as registry:
        event = registry.approve(reference, acting_user(by), reason, alias=for_alias, approved=not reject)
    if json_output:
        print_json(event.to_dict())
        return
    verb = "rejected" if reject else "approved"
    stdout.print(f"v{event.version} {verb} for [bold]{for_alias}[/] by {event.actor}")


@models_app.command("rollback", help="Move an alias back to the version it held before.")
@run_command
def rollback(
    ctx: typer.Context,
    alias: Annotated[str, typer.Argument(help="The alias to roll back, e.g. production.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
    by: Actor = None,
    json_output: Json = False,
) -> None:
    with _registry(ctx) as registry:
        version = registry.rollback(alias, acting_user(by), reason)
    _done(version, f"[bold]{alias}[/] rolled back to [bold]v{version.version}[/]", json_output)


@models_app.command("history", help="The audit trail: every registration, promotion, approval and rollback.")
@run_command
def history(
    ctx: typer.Context,
    reference: Annotated[str | None, typer.Argument(help="Only this version or alias.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the newest N events.")] = None,
    json_output: Json = False,
) -> None:
    with _registry(ctx) as registry:
        events = registry.history(reference, limit)
    if json_output:
        print_json([event.to_dict() for event in events])
        return
    for event in events:
        stdout.print(_event_text(event))


def _done(version: ModelVersion, message: str, json_output: bool) -> None:
    if json_output:
        print_json(version.to_dict())
    else:
        stdout.print(message)


@models_app.command(
    "sync", help="Mirror the whole registry to MLflow now (registry.mlflow_uri in visionloop.yaml)."
)
@run_command
def sync(ctx: typer.Context, json_output: Json = False) -> None:
    with _registry(ctx) as registry:
        report = registry.sync_mirror()
    if json_output:
        print_json(report)
        return
    stdout.print("mirrored to MLflow: " + ", ".join(f"{count} {what}" for what, count in report.items()))
