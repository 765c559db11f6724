"""A project on disk: its folder, its config, its catalog and its storage."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from visionloop.catalog import Catalog, redacted_url
from visionloop.core.errors import ConfigError, MissingDependencyError, ProjectNotFoundError, ValidationError
from visionloop.project.config import CONFIG_NAME, ProjectConfig, dump_config, load_config
from visionloop.storage import Filesystem, atomic_write_local, is_remote

_RUN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


@dataclass
class Project:
    root: Path
    config: ProjectConfig

    @classmethod
    def find(cls, start: Path | None = None) -> Project:
        """The project whose ``visionloop.yaml`` is in ``start`` or its nearest parent."""
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            candidate = folder / CONFIG_NAME
            if candidate.is_file():
                return cls(folder, load_config(candidate))
        raise ProjectNotFoundError(
            f"no {CONFIG_NAME} in {here} or its parents; create a project with 'visionloop init' "
            "or point to one with -p/--project"
        )

    @classmethod
    def load(cls, folder: Path) -> Project:
        """The project in exactly ``folder`` (as named by ``-p/--project``)."""
        config_path = folder.resolve() / CONFIG_NAME
        if not config_path.is_file():
            raise ProjectNotFoundError(
                f"{folder}: no {CONFIG_NAME} here; create one with 'visionloop init {folder}'"
            )
        return cls(folder.resolve(), load_config(config_path))

    @classmethod
    def create(cls, root: Path, config: ProjectConfig, *, exist_ok: bool = False) -> Project:
        root = root.resolve()
        config_path = root / CONFIG_NAME
        if config_path.exists() and not exist_ok:
            raise ConfigError(f"{config_path} already exists; refusing to overwrite a project")
        root.mkdir(parents=True, exist_ok=True)
        project = cls(root, config)
        with project.open_catalog() as catalog:  # create and migrate now, so errors show at init
            catalog.set_schema(config.labels)
        if not is_remote(project.storage_url):
            Path(project.storage_url).mkdir(parents=True, exist_ok=True)
        atomic_write_local(str(config_path), dump_config(config).encode("utf-8"))
        return project

    @property
    def catalog_url(self) -> str:
        """The catalog URL with a relative SQLite path resolved against the project folder."""
        url = os.path.expandvars(self.config.catalog)
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise ConfigError(
                f"{self.root / CONFIG_NAME}: invalid catalog URL {redacted_url(url)!r}"
            ) from exc
        if parsed.get_backend_name() == "sqlite" and parsed.database and not os.path.isabs(parsed.database):
            return f"sqlite:///{(self.root / parsed.database).resolve()}"
        return url

    @property
    def storage_url(self) -> str:
        storage = self.config.storage
        if is_remote(storage):
            return storage.rstrip("/")
        path = Path(storage).expanduser()
        return str(path if path.is_absolute() else (self.root / path).resolve())

    def run_folder(self, run_id: str) -> Path:
        """Where a run keeps its files (plots, logs, checkpoints): ``runs/<run id>``.

        Run ids are the catalog's hex ids; anything else is refused, so an id taken from a
        request or a file can never point outside ``runs/``."""
        if not _RUN_ID.fullmatch(run_id):
            raise ValidationError(f"{run_id[:80]!r} is not a run id")
        return self.root / "runs" / run_id

    def open_catalog(self) -> Catalog:
        return Catalog.open(self.catalog_url)

    @cached_property
    def storage(self) -> Filesystem:
        return Filesystem(self.storage_url, self.config.s3.fsspec_options())

    def aws_client(self, service: str) -> Any:
        """A botocore client (``s3``, ``sqs``) with this project's S3 settings; botocore comes with s3fs."""
        try:
            import botocore.session
        except ImportError as exc:
            raise MissingDependencyError("botocore", "s3", f"Talking to {service.upper()}") from exc
        options = self.config.s3
        return botocore.session.get_session().create_client(
            service,
            region_name=options.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=options.endpoint_url,
            aws_access_key_id=options.key,
            aws_secret_access_key=options.secret,
        )

    def filesystem_for(self, url: str) -> Filesystem:
        """A filesystem for a source URL, with this project's S3 settings applied to ``s3://``."""
        options = self.config.s3.fsspec_options() if url.startswith("s3://") else {}
        return Filesystem(url, options)
