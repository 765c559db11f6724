"""``visionloop export-model``: a trained model as an ONNX graph that ONNX Runtime runs."""

from __future__ import annotations

from typing import Annotated

import typer

from visionloop.cli.context import current_project
from visionloop.cli.output import print_json, stdout

HELP = """Export MODEL (a training run id, or a model folder) for another runtime.

--format onnx writes model.onnx next to the weights: the network with a dynamic batch axis,
returning the model's outputs and the image embedding, plus onnx.json recording the weights it
came from. ONNX Runtime and PyTorch are compared on up to --parity-images project images; an
export whose decisions agree on fewer than 99.5% of them, or whose outputs differ by more than
0.1% of their scale, is not kept. 'visionloop prelabel' then uses ONNX Runtime automatically,
until the model's weights change. Classifiers and heatmap pose models export; detection models
not yet. Needs the onnx extra: pip install 'visionloop\\[onnx]'.
"""


def export_model(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Training run id (or a unique prefix) or model folder.")],
    format_: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    parity_images: Annotated[
        int, typer.Option(min=1, max=10_000, help="Project images the parity check runs on.")
    ] = 64,
    opset: Annotated[int, typer.Option(min=13, max=20, help="ONNX operator set version.")] = 17,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    from visionloop.tasks.onnx_export import export_project_model

    if format_ != "onnx":
        raise typer.BadParameter("only onnx is supported", param_hint="--format")
    project = current_project(ctx)
    run_id, export = export_project_model(project, model, parity_images=parity_images, opset=opset)
    if json_output:
        print_json({"run_id": run_id, **export.to_dict()})
        return
    parity = export.parity
    stdout.print(f"[bold green]exported[/] {export.path} (opset {export.opset}, run {run_id})")
    differences = ", ".join(f"{name} {value:.2g}" for name, value in parity.max_abs_diff.items())
    stdout.print(
        f"parity on {parity.images} images: decisions agree {parity.agreement:.2%}; "
        f"largest differences {differences}"
    )
