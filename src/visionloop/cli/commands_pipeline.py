"""``visionloop pipeline``: run the named pipelines, resume one after a crash, see what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from visionloop.cli.context import current_project, run_command
from visionloop.cli.executor_options import ExecutorOption, RayAddressOption
from visionloop.cli.output import log_line, paragraphs, print_json, stdout
from visionloop.project.executor import choose_executor

HELP = """Named pipelines: the loop's steps wired together, recorded, resumable.

model-assisted-labeling: ingest a source, train, pre-label, select what people should label and
push it to Label Studio. build: snapshot, train (optionally tune), evaluate, gate, register.
deploy: export to ONNX, staging, robustness check, wait for approval, production. dlc-train: a
DeepLabCut project zip -> import -> train keypoints -> evaluate -> export next to the upload.

Every run and step is stored in the catalog. A run stopped by a crash, even kill -9, continues
with 'visionloop pipeline resume RUN' from the first step that did not finish; steps are
idempotent, so nothing is done twice or lost. Parameters come from the project's 'pipelines:'
section, then --params FILE, then KEY=VALUE arguments.
"""

pipeline_app = typer.Typer(help=paragraphs(HELP), no_args_is_help=True, rich_markup_mode="rich")

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _print_run(run: Any) -> None:
    colour = {"succeeded": "green", "failed": "red", "waiting": "yellow"}.get(run.status, "cyan")
    stdout.print(f"[bold]{run.pipeline}[/] run {run.run_id}: [{colour}]{run.status}[/]")
    for step in run.steps:
        detail = f"  ({step.error})" if step.error else ""
        tries = f"  attempts {step.attempts}" if step.attempts > 1 else ""
        stdout.print(f"  {step.position + 1}. {step.name:<12} {step.status}{tries}{detail}", highlight=False)
    if run.status in ("failed", "waiting", "running"):
        stdout.print(f"continue it with: visionloop pipeline resume {run.run_id}")


def _finish(run: Any, json_output: bool) -> None:
    if json_output:
        print_json(run.to_dict())
    else:
        _print_run(run)
    if run.status == "failed":
        raise typer.Exit(1)


def _execute(
    project: Any, run_id: str, json_output: bool, pipeline: Any = None, executor: Any = None
) -> None:
    """Run ``run_id`` from its first unfinished step; on a failure, say how to continue it."""
    from visionloop.pipelines.runner import resume_pipeline

    try:
        result = resume_pipeline(project, run_id, log=log_line, pipeline=pipeline, executor=executor)
    except Exception:
        log_line(f"continue it with: visionloop pipeline resume {run_id}")
        raise
    _finish(result, json_output)


def _params(params_file: Path | None, assignments: list[str] | None) -> dict[str, Any]:
    from visionloop.project.config import read_settings_file
    from visionloop.training.config import apply_overrides

    data = read_settings_file(params_file, allow_empty=True) if params_file else {}
    return apply_overrides(data, assignments or [])


@pipeline_app.command("list", help="The named pipelines and their steps, or the recent runs with --runs.")
@run_command
def list_pipelines(
    ctx: typer.Context,
    runs: Annotated[bool, typer.Option("--runs", help="List recent pipeline runs instead.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="How many runs to list.")] = 20,
    json_output: Json = False,
) -> None:
    from visionloop.pipelines.named import get_pipeline, pipeline_names
    from visionloop.pipelines.runner import RUN_KIND, pipeline_run

    if not runs:
        pipelines = [get_pipeline(name) for name in pipeline_names()]
        if json_output:
            print_json([{"name": p.name, "steps": [s.name for s in p.steps]} for p in pipelines])
            return
        for pipeline in pipelines:
            stdout.print(f"[bold]{pipeline.name}[/]: {' -> '.join(s.name for s in pipeline.steps)}")
            stdout.print(f"  {pipeline.description}", highlight=False)
        return
    project = current_project(ctx)
    with project.open_catalog() as catalog:
        records = catalog.list_runs(kind=RUN_KIND, limit=limit)
    found = [pipeline_run(project, record.id) for record in records]
    if json_output:
        print_json([run.to_dict() for run in found])
        return
    table = Table("run", "pipeline", "status", "steps done", "started")
    for run, record in zip(found, records, strict=True):
        done = sum(step.status == "succeeded" for step in run.steps)
        started = f"{record.created_at:%Y-%m-%d %H:%M}"
        table.add_row(run.run_id, run.pipeline, run.status, f"{done}/{len(run.steps)}", started)
    stdout.print(table)


@pipeline_app.command(
    "run",
    help="Run a named pipeline now. KEY=VALUE arguments set its parameters (values are YAML scalars).",
)
@run_command
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The pipeline ('visionloop pipeline list' names them).")],
    assignments: Annotated[
        list[str] | None,
        typer.Argument(help="Parameters as KEY=VALUE, e.g. source=s3://bucket/new/ budget=50."),
    ] = None,
    params_file: Annotated[
        Path | None, typer.Option("--params", help="YAML file of parameters.", exists=True, dir_okay=False)
    ] = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    json_output: Json = False,
) -> None:
    from visionloop.pipelines.named import get_pipeline
    from visionloop.pipelines.runner import start_pipeline

    project = current_project(ctx)
    pipeline = get_pipeline(name)
    where = choose_executor(project.config.executor, executor, ray_address)
    run_id = start_pipeline(project, pipeline, _params(params_file, assignments), executor=where.kind)
    log_line(f"pipeline {name}: run {run_id}" + (" (steps as Ray tasks)" if where.kind == "ray" else ""))
    _execute(project, run_id, json_output, pipeline, where)


@pipeline_app.command(
    "resume",
    help="Continue a run from its first unfinished step (after a crash, a wait), on the executor it "
    "started on unless --executor says otherwise.",
)
@run_command
def resume(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The pipeline run id ('visionloop pipeline list --runs').")],
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    json_output: Json = False,
) -> None:
    from visionloop.pipelines.runner import pipeline_run

    project = current_project(ctx)
    started_on = pipeline_run(project, run_id).executor
    where = choose_executor(project.config.executor, executor or started_on, ray_address)
    _execute(project, run_id, json_output, executor=where)


@pipeline_app.command("show", help="One run: its parameters and each step's status, attempts and outputs.")
@run_command
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The pipeline run id.")],
    json_output: Json = False,
) -> None:
    from visionloop.pipelines.runner import pipeline_run

    found = pipeline_run(current_project(ctx), run_id)
    if json_output:
        print_json(found.to_dict())
        return
    _print_run(found)
    stdout.print(f"parameters: {found.params}", highlight=False)
