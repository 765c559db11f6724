"""What every command shares: finding the project and turning library errors into exit codes."""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from visionloop.cli.output import error
from visionloop.core.errors import VisionloopError
from visionloop.project import Project

F = TypeVar("F", bound=Callable[..., Any])
EXIT_ERROR = 1


def run_command(command: F) -> F:
    """Wrap a command so a :class:`VisionloopError` prints one clear line and exits with 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except VisionloopError as exc:
            error(str(exc))
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def current_project(ctx: typer.Context) -> Project:
    folder: Path | None = ctx.obj
    return Project.find() if folder is None else Project.load(folder)


MODEL_HELP = (
    "A registered version (v3) or alias (production), a training run id (or a unique prefix), "
    "or a model folder."
)


def model_argument(project: Project, model: str) -> str:
    """``model`` as the library takes it: a registry version or alias becomes its model folder;
    anything else (run id, prefix, folder) passes through unchanged."""
    from visionloop.registry import ModelRegistry

    with project.open_catalog() as catalog:
        registry = ModelRegistry(catalog, project.root)  # reading only: no mirror needed
        version = registry.find(model)
        return model if version is None else str(registry.folder(version))


def acting_user(by: str | None = None) -> str:
    """Who a registry change is recorded for: ``--by``, else $VISIONLOOP_USER, else the login."""
    return by or os.environ.get("VISIONLOOP_USER") or getpass.getuser()
