"""Shared fixtures: catalogs on SQLite and on a real PostgreSQL, trees on disk and in a real S3 server.

Suites that take ``catalog_url`` or ``tree`` run once per backend, so the same tests prove
the same behaviour on the laptop default and on the team set-up.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from servers import (
    LabelStudio,
    ServerUnavailable,
    create_database,
    label_studio_server,
    make_bucket,
    moto_s3_server,
    postgres_server,
    s3_env,
)
from visionloop.catalog import Catalog, sqlite_url_for
from visionloop.storage import Filesystem

# The browser fixture of the dashboard tests (a real Chromium through Playwright); the hardening
# tests' tally, printed at the end of the run.
pytest_plugins = ["live_dashboard", "hardening_tally"]


def _unavailable(exc: ServerUnavailable) -> None:
    """Locally a missing server skips; in CI it fails, since CI must install every server."""
    if os.environ.get("CI"):
        pytest.fail(f"required test server unavailable in CI: {exc}")
    pytest.skip(str(exc))


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A Ray instance for this module's tests, with 2 CPUs, like a small cluster (token auth on,
    Ray's default for an instance started by ``ray.init``)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        with postgres_server(tmp_path_factory.mktemp("pg")) as url:
            yield url
    except ServerUnavailable as exc:
        _unavailable(exc)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    try:
        with moto_s3_server() as endpoint:
            saved = {key: os.environ.get(key) for key in s3_env(endpoint)}
            os.environ.update(s3_env(endpoint))
            try:
                yield endpoint
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
    except ServerUnavailable as exc:
        _unavailable(exc)


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    """A real Label Studio server for the whole session: `(url, token, files)`, where `files` is its
    local-files document root (see `servers.label_studio_server`)."""
    try:
        with label_studio_server(tmp_path_factory.mktemp("labelstudio")) as server:
            yield server
    except ServerUnavailable as exc:
        _unavailable(exc)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url_for(tmp_path / "catalog.db")
    server: str = request.getfixturevalue("postgres_url")
    return create_database(server, f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    with Catalog.open(catalog_url) as opened:
        yield opened


@dataclass
class Tree:
    """A folder of test files, on local disk or under an S3 prefix, behind one interface."""

    root: str
    filesystem: Filesystem

    def uri(self, name: str) -> str:
        return f"{self.root}/{name}"

    def write(self, name: str, data: bytes) -> str:
        if self.filesystem.protocol == "file":
            path = Path(self.uri(name))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self.filesystem.fs.pipe_file(self.uri(name), data)
        return self.uri(name)

    def read(self, name: str) -> bytes:
        return self.filesystem.read_bytes(self.uri(name))

    def remove(self, name: str) -> None:
        if self.filesystem.protocol == "file":
            Path(self.uri(name)).unlink()
        else:
            self.filesystem.fs.rm_file(self.uri(name))

    def listing(self) -> dict[str, Any]:
        return {entry.uri: entry.fingerprint for entry in self.filesystem.list_files()}


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def tree(request: pytest.FixtureRequest, tmp_path: Path) -> Tree:
    if request.param == "local":
        root = tmp_path / "source"
        root.mkdir()
        return Tree(str(root), Filesystem(str(root)))
    endpoint: str = request.getfixturevalue("s3_endpoint")
    bucket = f"vl-{uuid.uuid4().hex[:12]}"
    make_bucket(endpoint, bucket)
    url = f"s3://{bucket}/source"
    return Tree(url, Filesystem(url, {"endpoint_url": endpoint}))
