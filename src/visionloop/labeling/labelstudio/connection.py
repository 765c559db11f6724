"""The project's Label Studio project: found or created, its labeling config kept in step.

The Label Studio project id is remembered in the catalog (``cursors``); if that project is gone,
one with the same title is looked for, else a new one is made with the config generated from
the project's label schema. A changed schema updates the config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionloop.catalog import Catalog
from visionloop.core.errors import ConfigError
from visionloop.formats.labelstudio import labeling_config
from visionloop.labeling.labelstudio.client import LabelStudioClient
from visionloop.labeling.store import read_cursor, write_cursor
from visionloop.project import Project
from visionloop.project.config import LabelStudioSettings

__all__ = ["TOKEN_ENV", "TOOL", "URL_ENV", "LabelStudioProject", "connect"]

TOOL = "labelstudio"
TOKEN_ENV = "LABEL_STUDIO_API_KEY"  # noqa: S105 - the name of the variable, not a secret
URL_ENV = "LABEL_STUDIO_URL"


@dataclass
class LabelStudioProject:
    """An open connection to one Label Studio project; ``key`` names it in the catalog."""

    client: LabelStudioClient
    project_id: int
    key: str
    settings: LabelStudioSettings

    def close(self) -> None:
        self.client.close()


def connect(
    project: Project, catalog: Catalog, client: LabelStudioClient | None = None
) -> LabelStudioProject:
    """Open the client and make sure the Label Studio project exists with the right config."""
    settings = project.config.labelstudio
    if client is None:
        url = settings.url or os.environ.get(URL_ENV)
        if not url:
            raise ConfigError(f"no Label Studio URL: set labelstudio.url in visionloop.yaml or ${URL_ENV}")
        token = os.environ.get(TOKEN_ENV)
        if not token:
            raise ConfigError(
                f"no Label Studio API token: set ${TOKEN_ENV} (it is never read from visionloop.yaml)"
            )
        client = LabelStudioClient(url, token)
    title = settings.project_title or project.config.name
    config = labeling_config(catalog.get_schema() or project.config.labels)
    remembered = f"{TOOL}:project:{client.url}:{title}"
    project_id = read_cursor(catalog, remembered)
    found: Any = client.request("GET", f"/api/projects/{project_id}", allow=(404,)) if project_id else None
    if found is None:
        found = next((p for p in _projects(client, title) if p.get("title") == title), None)
    if found is None:
        found = client.post("/api/projects", {"title": title, "label_config": config})
    elif _normal(found.get("label_config")) != _normal(config):
        # Label Studio re-validates every annotation on a config change: only send a real change
        client.patch(f"/api/projects/{found['id']}", {"label_config": config})
    project_id = int(found["id"])
    write_cursor(catalog, remembered, project_id)
    return LabelStudioProject(client, project_id, f"{client.url}#{project_id}", settings)


def _normal(config: Any) -> str:
    """A config with whitespace collapsed: Label Studio stores it stripped (no final newline)."""
    return " ".join(str(config or "").split())


def _projects(client: LabelStudioClient, title: str) -> list[dict[str, Any]]:
    body = client.get("/api/projects", title=title, page_size=100)
    results = body.get("results", []) if isinstance(body, dict) else body
    return list(results or [])


def local_files_root(settings: LabelStudioSettings) -> Path | None:
    return Path(settings.local_files_root).expanduser().resolve() if settings.local_files_root else None
