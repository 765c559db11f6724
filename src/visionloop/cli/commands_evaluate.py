"""``visionloop evaluate``: metrics, robustness and the gate for a trained model."""

from __future__ import annotations

from typing import Annotated

import typer

from visionloop.cli.context import MODEL_HELP, current_project, model_argument
from visionloop.cli.output import print_json, stdout

HELP = """Evaluate MODEL (a training run id, or a model folder) on the test split of a snapshot.

Reports the task's metrics (accuracy, per-class precision/recall/F1, confusion matrix and
calibration error for classifiers; COCO box and mask mAP; keypoint OKS AP and mean pixel error
with a likelihood cutoff), a robustness suite (Gaussian noise, blur, JPEG compression,
brightness) with the relative drop per corruption, and the project's gate (the 'gate:' section
of visionloop.yaml, e.g. min_accuracy: 0.6, max_robustness_drop: 0.1). Writes metrics.json and
report.html with plots (and Integrated Gradients explanations for classifiers) into the
evaluation run's folder. Exits with 2 when the gate fails.
"""

EXIT_GATE_FAILED = 2


def evaluate(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    snapshot: Annotated[
        str | None, typer.Option(help="Snapshot id to evaluate on. Default: a snapshot of the catalog now.")
    ] = None,
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "test",
    robustness: Annotated[
        bool, typer.Option("--robustness/--no-robustness", help="Run the corruption suite.")
    ] = True,
    severity: Annotated[int, typer.Option(min=1, max=5, help="Corruption severity, 1 (mild) to 5.")] = 3,
    explain: Annotated[int, typer.Option(min=0, max=64, help="Classifier images to explain.")] = 4,
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate at most this many images.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    from visionloop.evaluation.corruptions import CORRUPTIONS
    from visionloop.evaluation.evaluate import evaluate_model

    project = current_project(ctx)
    result = evaluate_model(
        project,
        model_argument(project, model),
        snapshot=snapshot,
        split=split,
        corruptions=tuple(CORRUPTIONS) if robustness else (),
        severity=severity,
        explain=explain,
        limit=limit,
    )
    headline = result.metrics["headline_metric"]
    value = result.metrics.get(headline)
    if json_output:
        print_json(
            {
                "run_id": result.run_id,
                "headline_metric": headline,
                "value": value,
                "gate": {"passed": result.gate.passed, "reasons": result.gate.reasons},
                "robustness": result.metrics.get("robustness"),
                "report": str(result.html_path),
                "metrics": str(result.json_path),
            }
        )
    else:
        shown = "n/a" if not isinstance(value, int | float) else f"{value:.4f}"
        stdout.print(f"{headline}: [bold]{shown}[/] on {result.metrics['evaluated_images']} images")
        robust = result.metrics.get("robustness")
        if isinstance(robust, dict):
            drops = ", ".join(
                f"{name} {'n/a' if entry['mean_drop'] is None else format(entry['mean_drop'], '+.1%')}"
                for name, entry in robust["corruptions"].items()
            )
            stdout.print(f"robustness (relative drop): {drops}")
        verdict = "[bold green]gate passed[/]" if result.gate.passed else "[bold red]gate failed[/]"
        stdout.print(verdict)
        for reason in result.gate.reasons:
            stdout.print(f"  - {reason}")
        stdout.print(f"report: {result.html_path}")
    if not result.gate.passed:
        raise typer.Exit(EXIT_GATE_FAILED)
