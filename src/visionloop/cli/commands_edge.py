"""``visionloop edge``: the edge runtime's own command line, reached from the main one.

The options live once, in :mod:`visionloop.edge.cli` (argparse, so ``python -m visionloop.edge``
runs on a device with nothing but ONNX Runtime); this command passes its arguments through.
"""

from __future__ import annotations

import typer

HELP = """Run an exported model with ONNX Runtime alone (no PyTorch) on a folder of images or a
video, and capture what it is unsure of: 'visionloop edge run --model MODEL --source FOLDER'
writes one JSON line per image; --capture-to PREFIX spools uncertain and sampled images with
their predictions and uploads them when PREFIX can be reached; 'visionloop edge sync' uploads
what waits. 'visionloop edge --help' and 'visionloop edge run --help' explain every option.
On a device: python -m visionloop.edge run ...
"""

CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def edge(ctx: typer.Context) -> None:
    from visionloop.edge.cli import main

    status = main(list(ctx.args), prog="visionloop edge")
    if status:
        raise typer.Exit(status)
