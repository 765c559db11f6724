"""``visionloop export-model``: a trained model as an ONNX graph that ONNX Runtime runs."""

from __future__ import annotations

from typing import Annotated

import typer

from visionloop.cli.context import MODEL_HELP, acting_user, current_project, model_argument
from visionloop.cli.output import print_json, stdout
from visionloop.project import Project
from visionloop.tasks.onnx_files import OnnxExport

HELP = """Export MODEL (a registered version or alias, a training run id, or a model folder) for
another runtime. When the weights are a registered version, the export is recorded as its onnx
artifact.

--format onnx writes model.onnx next to the weights: the network with the image embedding as an
extra output, plus onnx.json recording the weights it came from. Classifiers and heatmap pose
models take a batch; detectors (faster_rcnn, mask_rcnn, keypoint_rcnn) take one image per run
and their masks and keypoints are decoded in numpy. ONNX Runtime and PyTorch are compared on up
to --parity-images project images: classifiers must agree on 99.5% of top classes, with outputs
within 0.1% of their scale; detectors' ONNX labels, scored against PyTorch's with the task's
metric (box mAP, mask mAP, OKS AP), must stay within 0.5 point. An export that fails is not kept.

--int8 also makes an int8 graph (static quantization calibrated on --calibration-images other
project images) and keeps it only when it is at least 1.5x faster than the fp32 graph and loses
at most 1 point (accuracy on items people labelled, when at least 20 parity images are, else
agreement with PyTorch); the figures are printed and recorded either way. With N scored images
one changed top class costs 100/N points: judge int8 on 200 or more (--parity-images).

'visionloop prelabel' then uses ONNX Runtime (the int8 graph when kept) automatically, until the
model's weights change. Needs the onnx extra: pip install 'visionloop\\[onnx]'.
"""


def export_model(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    format_: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    parity_images: Annotated[
        int, typer.Option(min=1, max=10_000, help="Project images the parity check runs on.")
    ] = 64,
    opset: Annotated[int, typer.Option(min=13, max=20, help="ONNX operator set version.")] = 17,
    int8: Annotated[
        bool, typer.Option("--int8", help="Also try an int8 graph; keep it only if it pays.")
    ] = False,
    calibration_images: Annotated[
        int, typer.Option(min=1, max=10_000, help="Project images that calibrate the int8 graph.")
    ] = 32,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    from visionloop.tasks.onnx_export import export_project_model

    if format_ != "onnx":
        raise typer.BadParameter("only onnx is supported", param_hint="--format")
    project = current_project(ctx)
    run_id, export = export_project_model(
        project,
        model_argument(project, model),
        parity_images=parity_images,
        opset=opset,
        int8=int8,
        calibration_images=calibration_images,
    )
    version = _register_artifact(project, run_id, export)
    if json_output:
        print_json({"run_id": run_id, "version": version, **export.to_dict()})
        return
    if version is not None:
        stdout.print(f"registered as the onnx artifact of v{version}")
    parity = export.parity
    stdout.print(f"[bold green]exported[/] {export.path} (opset {export.opset}, run {run_id})")
    differences = ", ".join(f"{name} {value:.2g}" for name, value in parity.max_abs_diff.items())
    if parity.points_lost:
        scores = ", ".join(
            f"{name} {parity.metrics.get(name) or 0.0:.2f} ({lost:.2f} lost)"
            for name, lost in parity.points_lost.items()
        )
        stdout.print(
            f"parity on {parity.images} images, ONNX scored against PyTorch: {scores}; "
            f"same objects on {parity.agreement:.2%} of images; largest differences {differences}"
        )
    else:
        stdout.print(
            f"parity on {parity.images} images: decisions agree {parity.agreement:.2%}; "
            f"largest differences {differences}"
        )
    trial = export.int8
    if trial is not None:
        basis = "accuracy on labelled items" if trial.loss_basis == "labels" else "agreement with PyTorch"
        stdout.print(
            f"int8 {'[bold green]kept[/]' if trial.kept else '[yellow]discarded[/]'}: "
            f"{trial.fp32_images_per_second:.1f} -> {trial.int8_images_per_second:.1f} images/s "
            f"({trial.speedup:.2f}x, needs {trial.min_speedup:g}x), {trial.accuracy_loss:.2f} points of "
            f"{basis} lost (at most {trial.max_loss:g}) on {trial.scored_images} images"
        )


def _register_artifact(project: Project, run_id: str, export: OnnxExport) -> int | None:
    """Attach the export to the registered version of the same weights, if there is one."""
    from visionloop.registry import project_registry

    with project.open_catalog() as catalog:
        registry = project_registry(project, catalog)
        version = registry.find_by_weights(export.weights_sha256)
        if version is None:
            return None
        info = {
            "path": str(export.path),
            "run_id": run_id,
            "onnx_sha256": export.onnx_sha256,
            "opset": export.opset,
            "parity_passed": export.parity.passed,
            "int8_kept": bool(export.int8 is not None and export.int8.kept),
        }
        registry.add_artifact(version.version, "onnx", info, acting_user())
        return version.version
