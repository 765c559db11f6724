"""The ``--executor`` and ``--ray-address`` options of the commands that do heavy work."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["ExecutorOption", "RayAddressOption"]

ExecutorOption = Annotated[
    str | None,
    typer.Option(
        "--executor",
        help="local (this machine; needs no Ray) or ray (a Ray cluster, or a Ray instance started for "
        "the command). Default: the project's executor.kind (local unless visionloop.yaml says ray).",
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster for --executor ray (auto, ray://HOST:10001). Default: the project's "
        "executor.address, else $RAY_ADDRESS, else a Ray instance started here (token auth on).",
    ),
]
