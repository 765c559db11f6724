"""How Label Studio reaches each image: local files through its local-files storage, S3 objects
through presigned HTTPS URLs.

Local images must lie under ``labelstudio.local_files_root`` (Label Studio's document root): the
task names them by their path relative to it, and a local-files storage is connected for each
top-level folder they come from (Label Studio refuses the root itself). Anything outside the root
is refused with the item and the reason, never guessed at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from visionloop.catalog import Catalog
from visionloop.catalog.records import ItemRecord
from visionloop.core.errors import ConfigError, UnsafePathError
from visionloop.labeling.labelstudio.connection import TOOL, LabelStudioProject, local_files_root
from visionloop.labeling.store import read_cursor, write_cursor
from visionloop.project import Project
from visionloop.storage import is_remote

__all__ = ["ImageLinks"]


class ImageLinks:
    """``data.image`` for catalog items, connecting local-files storages as needed."""

    def __init__(self, project: Project, catalog: Catalog, target: LabelStudioProject) -> None:
        self.project, self.catalog, self.target = project, catalog, target
        self.root = local_files_root(target.settings)
        self._connected: set[str] = set(read_cursor(catalog, self._storages_key) or [])
        self._signer: Any = None

    @property
    def _storages_key(self) -> str:
        return f"{TOOL}:storages:{self.target.key}"

    def url(self, item: ItemRecord) -> str:
        if item.uri.startswith("s3://"):
            bucket, _, key = item.uri[len("s3://") :].partition("/")
            signed: str = self._s3().generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": key},
                ExpiresIn=self.target.settings.presign_expiry_s,
            )
            return signed
        if is_remote(item.uri):
            raise UnsafePathError(
                f"item {item.id} ({item.uri}): Label Studio can only be given local or s3:// images"
            )
        relative = self._relative(item)
        self._connect(relative.parts[0])
        return f"/data/local-files/?d={quote(relative.as_posix())}"

    def _s3(self) -> Any:
        """One botocore client for every signature: signing is local arithmetic, while s3fs's
        ``sign`` costs ~0.2 s a URL through its event loop (200 s for 1,000 tasks)."""
        if self._signer is None:
            self._signer = self.project.aws_client("s3")
        return self._signer

    def _relative(self, item: ItemRecord) -> Path:
        if self.root is None:
            raise ConfigError(
                f"item {item.id} ({item.uri}) is a local file: set labelstudio.local_files_root to "
                "Label Studio's LOCAL_FILES_DOCUMENT_ROOT (and keep the images under it), or ingest from S3"
            )
        path = Path(item.uri).resolve()
        if not path.is_relative_to(self.root) or len(path.relative_to(self.root).parts) < 2:
            raise UnsafePathError(
                f"item {item.id} ({item.uri}) is not in a folder under Label Studio's local files root "
                f"{self.root}; Label Studio cannot serve it"
            )
        return path.relative_to(self.root)

    def _connect(self, folder: str) -> None:
        if folder in self._connected:
            return
        assert self.root is not None  # noqa: S101 - _relative checked it
        path = str(self.root / folder)
        existing = self.target.client.get("/api/storages/localfiles", project=self.target.project_id) or []
        if not any(storage.get("path") == path for storage in existing):
            self.target.client.post(
                "/api/storages/localfiles",
                {"project": self.target.project_id, "path": path, "use_blob_urls": False, "title": folder},
            )
        self._connected.add(folder)
        write_cursor(self.catalog, self._storages_key, sorted(self._connected))
