"""Self-check of tests/servers.py: the real servers start, answer and go away."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import TypeVar

import pytest

from servers import ServerUnavailable, create_database, make_bucket, moto_s3_server, postgres_server, s3_env

T = TypeVar("T")


def _enter_or_skip(stack: ExitStack, server: AbstractContextManager[T]) -> T:
    """Start a server; skip when it is not installed here, but fail on CI, which must provide it."""
    try:
        return stack.enter_context(server)
    except ServerUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide this server: {exc}")
        pytest.skip(str(exc))


@pytest.mark.postgres
def test_postgres_server_runs_queries(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    with ExitStack() as stack:
        url = _enter_or_skip(stack, postgres_server(tmp_path))
        db_url = create_database(url, "vl_selfcheck")
        assert db_url.endswith("/vl_selfcheck")
        engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
                assert conn.execute(text("SELECT current_database()")).scalar_one() == "vl_selfcheck"
        finally:
            engine.dispose()
    assert (tmp_path / "postgres.log").is_file()


@pytest.mark.s3
def test_moto_s3_server_stores_objects() -> None:
    import s3fs

    with ExitStack() as stack:
        endpoint = _enter_or_skip(stack, moto_s3_server())
        make_bucket(endpoint, "vl-selfcheck")
        env = s3_env(endpoint)  # key/secret "testing", moto's dummy credentials
        fs = s3fs.S3FileSystem(
            client_kwargs={"endpoint_url": endpoint},
            key=env["AWS_ACCESS_KEY_ID"],
            secret=env["AWS_SECRET_ACCESS_KEY"],
        )
        with fs.open("vl-selfcheck/dir/hello.txt", "wb") as f:
            f.write(b"hello")
        assert fs.cat("vl-selfcheck/dir/hello.txt") == b"hello"
        assert fs.ls("vl-selfcheck/dir") == ["vl-selfcheck/dir/hello.txt"]
