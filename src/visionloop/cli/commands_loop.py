"""``visionloop loop``: the labeling loop with a simulated annotator, and its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionloop.cli.commands_active import AuditShare, Confidence, TargetAccuracy
from visionloop.cli.context import current_project
from visionloop.cli.output import print_json, stderr, stdout

LOOP_HELP = """Run the labeling loop with a simulated annotator (an oracle) and write a report.

The oracle holds the true labels (--oracle: labels files or folders in any importable format,
image names relative to --image-root or to each --oracle folder) and reveals one only when the
loop asks for it. It first labels the evaluation split (--eval-split, the yardstick, not
counted), a random --calibration sample of the pool (moved to split 'calib', never trained on)
and --seed-labels random items. Then each of --rounds rounds trains a model (KEY=VALUE training
settings, or --config), evaluates it, pre-labels the pool and, except after the last round,
selects --budget items by --strategy for the oracle to label. Finally the last model
auto-labels what the calibration certifies at --target-accuracy, the oracle labels the audit
sample, and the audit can revoke the calibration. Every step is a stored run; loop.json and
report.html (learning curve, risk-coverage, confusion matrix, galleries) are written into
runs/<loop run>/. Pass another loop's folder or loop.json as --baseline (say, one with
--strategy random on a copy of the project) to draw both learning curves.
"""


def loop(
    ctx: typer.Context,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="KEY=VALUE training settings, e.g. optim.epochs=5.")
    ] = None,
    oracle: Annotated[
        list[Path] | None,
        typer.Option("--oracle", help="The hidden true labels (a file or folder); repeatable.", exists=True),
    ] = None,
    oracle_format: Annotated[
        str, typer.Option("--oracle-format", help="Format of --oracle (see 'visionloop import --help').")
    ] = "imagefolder",
    image_root: Annotated[
        Path | None,
        typer.Option(
            "--image-root", help="Folder the oracle's image names are relative to. Default: each --oracle."
        ),
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, max=1000, help="Train-and-select rounds.")] = 3,
    budget: Annotated[int, typer.Option(min=1, help="Items the oracle labels per round.")] = 100,
    strategy: Annotated[
        str, typer.Option(help="Selection strategy (see 'visionloop select --help').")
    ] = "margin",
    seed_labels: Annotated[
        int | None, typer.Option(min=0, help="Random labels to start from. Default: one budget.")
    ] = None,
    calibration: Annotated[
        int, typer.Option(min=0, help="Random pool items labelled to calibrate auto-labeling.")
    ] = 500,
    eval_split: Annotated[str, typer.Option(help="Split that measures each round's model.")] = "test",
    target_accuracy: TargetAccuracy = 0.95,
    confidence: Confidence = 0.95,
    audit: AuditShare = 0.02,
    baseline: Annotated[
        Path | None, typer.Option(help="Another loop's folder or loop.json to compare learning curves with.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML file of training settings.", dir_okay=False)
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the random draws.")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Images per pre-label batch.")] = 64,
    workers: Annotated[
        int | None, typer.Option(min=0, max=64, help="Decoding worker processes. Default: one per core.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    from visionloop.pipelines.loop import LoopOptions, read_loop, run_loop
    from visionloop.pipelines.loop_report import write_loop_report
    from visionloop.pipelines.oracle import Oracle
    from visionloop.training.config import load_train_config

    if not oracle:
        raise typer.BadParameter("give the true labels with --oracle", param_hint="--oracle")
    project = current_project(ctx)
    settings = load_train_config(project.config.train, config, overrides or [])
    compared = read_loop(baseline) if baseline is not None else None
    with project.open_catalog() as catalog:
        schema = catalog.get_schema() or project.config.labels
        truth = Oracle.merged(
            [
                Oracle.from_file(
                    catalog, oracle_format, path.resolve(), str((image_root or path).resolve()), schema
                )
                for path in oracle
            ]
        )
    options = LoopOptions(
        rounds=rounds,
        budget=budget,
        strategy=strategy,
        seed_labels=seed_labels,
        calibration=calibration,
        eval_split=eval_split,
        target_accuracy=target_accuracy,
        confidence=confidence,
        audit=audit,
        seed=seed,
        batch_size=batch_size,
        workers=workers,
    )
    report = run_loop(project, truth, settings, options, log=stderr.print)
    page = write_loop_report(project, report, truth=truth.truth, baseline=compared)
    if json_output:
        print_json({**report.to_dict(), "report": str(page)})
        return
    last = report.rounds[-1]
    accuracy = "n/a" if report.auto_accuracy is None else f"{report.auto_accuracy:.2%}"
    stdout.print(
        f"[bold green]loop {report.run_id} finished[/]: {report.human_labels} human labels, "
        f"{report.headline_metric} {last.headline:.4f}; auto-labelled {report.auto_accepted} items "
        f"(accuracy against the truth {accuracy})"
    )
    stdout.print(f"report: {page}")
