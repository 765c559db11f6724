"""``visionloop init``: create a project folder with its config, catalog and storage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from visionloop.catalog import redacted_url
from visionloop.cli.output import print_json, stdout
from visionloop.core.errors import ConfigError
from visionloop.core.schema import LabelSchema, TaskType, parse_skeleton
from visionloop.project import Project, ProjectConfig, S3Options

HELP = """Create a project: a folder with visionloop.yaml, a catalog and a storage location.

By default the catalog is a SQLite file inside the project and blobs go to its 'storage'
folder. Use --catalog postgresql://user@host/db for a team catalog and --storage
s3://bucket/prefix for shared storage.

Example: visionloop init pets --task detection --classes cat,dog
"""


def _split_names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")] = Path("."),
    task: Annotated[
        TaskType,
        typer.Option("--task", "-t", help="What the project labels.", case_sensitive=False),
    ] = TaskType.CLASSIFICATION,
    classes: Annotated[
        str, typer.Option("--classes", "-c", help="Comma-separated class names, e.g. cat,dog.")
    ] = "",
    keypoints: Annotated[
        str | None, typer.Option(help="Keypoints projects: comma-separated keypoint names.")
    ] = None,
    skeleton: Annotated[
        str | None,
        typer.Option(
            help="Keypoints projects: edges as 1-based index pairs (1-2,2-3) or names (nose-left_eye)."
        ),
    ] = None,
    catalog: Annotated[
        str | None,
        typer.Option(help="Catalog URL. Default: sqlite:///catalog.db inside the project."),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Storage folder or s3://bucket/prefix. Default: PROJECT/storage."),
    ] = None,
    s3_endpoint: Annotated[
        str | None, typer.Option(help="S3-compatible endpoint URL (MinIO, moto, Ceph...).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Project name. Default: the folder name.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    keypoint_names = _split_names(keypoints)
    try:
        edges = parse_skeleton(skeleton or "", keypoint_names)
        labels = LabelSchema(
            task=task, classes=_split_names(classes), keypoints=keypoint_names, skeleton=edges
        )
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"invalid labels: {_pydantic_message(exc)}") from None
    root = directory.resolve()
    config = ProjectConfig(
        name=name or root.name or "visionloop",
        labels=labels,
        catalog=catalog or "sqlite:///catalog.db",
        storage=storage or "storage",
        s3=S3Options(endpoint_url=s3_endpoint),
    )
    project = Project.create(root, config)
    result = {
        "project": str(project.root),
        "task": task.value,
        "classes": labels.classes,
        "catalog": redacted_url(project.catalog_url),
        "storage": project.storage_url,
    }
    if json_output:
        print_json(result)
        return
    stdout.print(f"[green]Created[/] {task.value} project [bold]{config.name}[/] in {project.root}")
    stdout.print(f"  catalog: {redacted_url(project.catalog_url)}\n  storage: {project.storage_url}")
    stdout.print("Next: visionloop ingest FOLDER_OR_S3_PREFIX")


def _pydantic_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
    return str(exc)
