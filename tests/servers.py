"""Start real servers (PostgreSQL, a moto S3 server, Label Studio) on 127.0.0.1 for tests, and stop them.

The suite tests the PostgreSQL catalog, the S3 storage and the Label Studio format against real servers
rather than mocks, so
these helpers start throw-away instances on free local ports and make sure nothing is left running:
every server runs in its own process group (session) and is killed as a group if a clean stop fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

PG_START_TIMEOUT_S = 30
MOTO_START_TIMEOUT_S = 20
LABEL_STUDIO_START_TIMEOUT_S = 180  # ~60 s on a cold start (database migrations), ~12 s warm
_START_ATTEMPTS = 3  # a free port can be taken by someone else between picking and binding it
_PG_USER = "postgres"
_DB_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ServerUnavailable(Exception):
    """The server software is not installed here, so the tests that need it cannot run."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the OS picks it, so parallel runs differ)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(path: Path, lines: int = 40) -> str:
    """The end of a server log, for error messages that explain why a start failed."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _kill_group(pgid: int, child: subprocess.Popen[bytes] | None = None, grace_s: float = 5.0) -> None:
    """SIGTERM a whole process group, then SIGKILL it if it is still there after `grace_s`.

    `child` is our own Popen leading the group: it is reaped while waiting, else as a zombie it would
    keep the group "alive" and every stop would take the full grace period.
    """
    if pgid <= 1 or pgid == os.getpgrp():
        return  # never signal our own group (or init)
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if child is not None:
            child.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------------------
# PostgreSQL


def find_postgres_bindir() -> Path:
    """Where `initdb` and `pg_ctl` live; Debian keeps them off PATH under /usr/lib/postgresql/<ver>/bin."""
    candidates: list[tuple[int, Path]] = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        version = bindir.parent.name
        if version.isdigit() and (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            candidates.append((int(version), bindir))
    if candidates:
        return max(candidates)[1]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            if out and (Path(out) / "initdb").is_file() and (Path(out) / "pg_ctl").is_file():
                return Path(out)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    raise ServerUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; install them with "
        "`apt-get install postgresql` (or make `pg_config --bindir` point at them)"
    )


def _pg_command_prefix() -> list[str]:
    """PostgreSQL refuses to run as root, so as root every server command runs as the `postgres` user."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServerUnavailable("running as root but `runuser` is missing; cannot drop to the postgres user")
    return [runuser, "-u", _PG_USER, "--"]


def _run_pg(cmd: Sequence[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run one PostgreSQL tool in its own session (the postmaster inherits it, so it can be group-killed)."""
    env = dict(os.environ, LC_ALL="C", LANG="C")
    env.pop("PGDATA", None)
    return subprocess.run(
        [*_pg_command_prefix(), *cmd],
        cwd=cwd,  # the postgres user may not be allowed into our cwd
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
        check=False,
    )


def _postmaster_pid(data_dir: Path) -> int | None:
    """The postmaster's PID from postmaster.pid, if a server is (or was) running on `data_dir`."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    return None


def _is_postgres(pid: int) -> bool:
    """Guard against a stale postmaster.pid whose PID now belongs to an unrelated process."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in {"postgres", "postmaster"}
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no procfs: cannot tell, trust the pid file
    except OSError:
        return False


def _stop_postgres(bindir: Path, data_dir: Path, workdir: Path) -> None:
    """Stop the server at once (`-m immediate`: the data is thrown away); group-kill it if that fails."""
    pid = _postmaster_pid(data_dir)
    if pid is None or not _is_postgres(pid):
        return
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    try:
        result = _run_pg(
            [str(bindir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "stop"], workdir, 30
        )
        stopped = result.returncode == 0
    except subprocess.TimeoutExpired:
        stopped = False
    if not stopped:
        _kill_group(pgid)  # the postmaster and its backends share the session pg_ctl was started in


@contextlib.contextmanager
def postgres_server(base_dir: Path) -> Iterator[str]:
    """Run a fresh PostgreSQL cluster on a free 127.0.0.1 port; yield `postgresql://postgres@127.0.0.1:PORT/postgres`.

    The cluster lives in a private `vl-pg-*` directory in the system temp dir, not under `base_dir`:
    pytest's tmp dirs are mode 700 and owned by root, so the `postgres` user could not reach them, and
    the Unix socket path must stay short (~107 bytes). The server log is copied to
    `base_dir/postgres.log` when the server stops. Trust auth, fsync off: for tests only.
    """
    bindir = find_postgres_bindir()
    prefix = _pg_command_prefix()  # fail early (ServerUnavailable) before creating anything
    owner: tuple[int, int] | None = None
    if prefix:
        import pwd

        try:
            entry = pwd.getpwnam(_PG_USER)
        except KeyError as exc:
            raise ServerUnavailable(
                f"running as root but there is no `{_PG_USER}` user; `apt-get install postgresql` creates it"
            ) from exc
        owner = (entry.pw_uid, entry.pw_gid)

    workdir = Path(tempfile.mkdtemp(prefix="vl-pg-"))
    data_dir = workdir / "data"
    log_path = workdir / "postgres.log"
    try:
        workdir.chmod(0o755)  # mkdtemp makes it 700; the postgres user must traverse it
        data_dir.mkdir(mode=0o700)
        if owner is not None:
            os.chown(data_dir, *owner)
            os.chown(workdir, *owner)  # pg_ctl (as postgres) writes the log file here

        result = _run_pg(
            [
                str(bindir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                _PG_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            workdir,
            120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

        port = 0
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = free_port()
            options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data_dir} -c fsync=off"
            cmd = [str(bindir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-w"]
            cmd += ["-t", str(PG_START_TIMEOUT_S), "-l", str(log_path), "start"]
            try:
                result = _run_pg(cmd, workdir, PG_START_TIMEOUT_S + 10)
                ok, detail = result.returncode == 0, f"{result.stdout}\n{result.stderr}"
            except subprocess.TimeoutExpired:
                ok, detail = False, "pg_ctl start timed out"
            if ok:
                break
            _stop_postgres(bindir, data_dir, workdir)
            log = _log_tail(log_path)
            if attempt < _START_ATTEMPTS and "already in use" in log:
                continue  # lost the port race; try another port
            raise RuntimeError(
                f"PostgreSQL did not start within {PG_START_TIMEOUT_S}s on port {port}:\n"
                f"{detail.strip()}\n--- server log tail ({log_path}) ---\n{log}"
            )

        yield f"postgresql://{_PG_USER}@127.0.0.1:{port}/postgres"
    finally:
        # Runs on success, on a failing test body and on an interrupted start alike.
        _stop_postgres(bindir, data_dir, workdir)
        with contextlib.suppress(OSError):
            base_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log_path, base_dir / "postgres.log")
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """Create database `name` on the server at `url` and return a URL for it (a cheap per-test database)."""
    if not _DB_NAME_RE.fullmatch(name):
        raise ValueError(f"invalid database name {name!r}: use lower-case letters, digits and _")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server_url = make_url(url)
    engine = create_engine(server_url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return server_url.set(database=name).render_as_string(hide_password=False)


# --------------------------------------------------------------------------------------------------------
# S3 (moto)


def find_moto_server() -> Path:
    """The `moto_server` script: next to this interpreter (the venv) first, then on PATH."""
    beside = Path(sys.executable).parent / "moto_server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("moto_server")
    if found:
        return Path(found)
    raise ServerUnavailable("`moto_server` not found; install it with `pip install 'moto[server]'`")


def _moto_answers(url: str) -> bool:
    """True once *moto* answers HTTP at `url`: its `x-amzn-requestid` header tells it apart from some
    other program that grabbed the port first. Proxies are bypassed: they cannot reach our 127.0.0.1."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1) as response:
            return "x-amzn-requestid" in response.headers
    except urllib.error.HTTPError as error:  # an error status still means a server is up
        return "x-amzn-requestid" in error.headers
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def _http_server(
    name: str,
    command_for_port: Callable[[int], list[str]],
    answers: Callable[[str], bool],
    log_path: Path,
    *,
    timeout_s: float,
    poll_s: float = 0.1,
    grace_s: float = 5.0,
    **popen: Any,
) -> Iterator[str]:
    """Start a server on a free 127.0.0.1 port in its own process group, wait until
    ``answers(url)``, yield the URL and stop the whole group afterwards. A start that lost the
    port race is retried on another port; any other failure raises with the log's tail."""
    log: IO[Any] = log_path.open("ab")
    proc: subprocess.Popen[bytes] | None = None
    try:
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            proc = subprocess.Popen(
                command_for_port(port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **popen,
            )
            deadline = time.monotonic() + timeout_s
            while proc.poll() is None and time.monotonic() < deadline and not answers(url):
                time.sleep(poll_s)
            if proc.poll() is None and answers(url):
                break
            exited = proc.poll() is not None
            _kill_group(proc.pid, proc)
            proc.wait()
            proc = None
            log.flush()
            tail = _log_tail(log_path)
            if attempt < _START_ATTEMPTS and exited and "in use" in tail:
                continue  # lost the port race; try another port
            raise RuntimeError(
                f"{name} did not answer on {url} within {timeout_s}s"
                f"{' (it exited)' if exited else ''}\n--- log tail ({log_path}) ---\n{tail}"
            )
        yield url
    finally:
        if proc is not None:
            _kill_group(proc.pid, proc, grace_s=grace_s)  # start_new_session: its pid is its group id
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        log.close()


@contextlib.contextmanager
def moto_s3_server(log_path: Path | None = None) -> Iterator[str]:
    """Run a moto S3 server on a free 127.0.0.1 port in its own process group; yield `http://127.0.0.1:PORT`.

    Its output goes to `log_path` (a temp file, deleted afterwards, if not given).
    """
    exe = find_moto_server()
    own_log = log_path is None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="vl-moto-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    try:
        with _http_server(
            "moto_server",
            lambda port: [str(exe), "-H", "127.0.0.1", "-p", str(port)],
            _moto_answers,
            log_path,
            timeout_s=MOTO_START_TIMEOUT_S,
        ) as endpoint:
            yield endpoint
    finally:
        if own_log:
            log_path.unlink(missing_ok=True)


def s3_env(endpoint: str) -> dict[str, str]:
    """Environment variables pointing boto3/s3fs at the test server with moto's dummy credentials."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }


def make_bucket(endpoint: str, name: str) -> None:
    """Create bucket `name` on the test server (us-east-1, so no LocationConstraint is needed)."""
    import boto3

    env = s3_env(endpoint)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    try:
        client.create_bucket(Bucket=name)
    finally:
        client.close()


# --------------------------------------------------------------------------------------------------------
# Label Studio

REPO_ROOT = Path(__file__).resolve().parent.parent
LABEL_STUDIO_VENV = REPO_ROOT / ".venv-labelstudio"
LABEL_STUDIO_INSTALL = "scripts/install-labelstudio.sh"
LABEL_STUDIO_USER = "visionloop-tests@example.com"


class LabelStudio(NamedTuple):
    """A running Label Studio: its base URL, an API token, and its local-files document root."""

    url: str
    token: str
    files: Path


def find_label_studio() -> Path:
    """The `label-studio` script in the repository's own Label Studio venv (it pins numpy<2.3, so it
    cannot share the main venv)."""
    exe = LABEL_STUDIO_VENV / "bin" / "label-studio"
    if exe.is_file() and os.access(exe, os.X_OK):
        return exe
    raise ServerUnavailable(f"Label Studio not found at {exe}; install it with `{LABEL_STUDIO_INSTALL}`")


def _label_studio_answers(url: str) -> bool:
    """True once Label Studio's `/health` answers `{"status": "UP"}` (proxies bypassed)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/health", timeout=2) as response:
            return response.status == 200 and b'"UP"' in response.read()
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def label_studio_server(base_dir: Path | None = None) -> Iterator[LabelStudio]:
    """Run Label Studio on a free 127.0.0.1 port in its own process group; yield `(url, token, files)`.

    Its data (SQLite database, media), the local-files document root (`<base_dir>/files`, serving
    enabled) and its log (`label-studio.log`) live under `base_dir` (a fresh temp dir, removed
    afterwards, if not given). One user with a legacy API token is created on start: send
    `Authorization: Token <token>`.
    """
    exe = find_label_studio()
    own_dir = base_dir is None
    workdir = Path(tempfile.mkdtemp(prefix="vl-ls-")) if base_dir is None else base_dir
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    (workdir / "files").mkdir(exist_ok=True)
    log_path = workdir / "label-studio.log"
    # Label Studio sets the user's token only when it creates the user, so a reused data dir keeps
    # its first token: remember it next to the data.
    token_file = workdir / "data" / "visionloop-token"
    if not token_file.is_file():
        token_file.write_text(secrets.token_hex(20))  # 40 characters, as Label Studio's legacy tokens are
    token = token_file.read_text().strip()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(workdir / "data"),
        LABEL_STUDIO_USERNAME=LABEL_STUDIO_USER,
        LABEL_STUDIO_PASSWORD=secrets.token_urlsafe(16),
        LABEL_STUDIO_USER_TOKEN=token,
        LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
        LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(workdir / "files"),
        LATEST_VERSION_CHECK="false",
        COLLECT_ANALYTICS="false",
        ML_BLOCK_LOCAL_IP="false",
        SSRF_PROTECTION_ENABLED="false",
        NO_PROXY="127.0.0.1,localhost",
    )
    command = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--enable-legacy-api-token"]
    try:
        with _http_server(
            "Label Studio",
            lambda port: [*command, "--port", str(port)],
            _label_studio_answers,
            log_path,
            timeout_s=LABEL_STUDIO_START_TIMEOUT_S,
            poll_s=0.5,
            grace_s=10.0,
            cwd=workdir,
            env=env,
        ) as url:
            yield LabelStudio(url, token, workdir / "files")
    finally:
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)


VISIONLOOP_SERVE_TIMEOUT_S = 60


def _serve_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/health", timeout=1) as response:  # noqa: S310  # our own URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def visionloop_server(project: Path, token: str, log_path: Path, *extra: str) -> Iterator[str]:
    """``visionloop serve`` for ``project`` as its own process on 127.0.0.1; yields its URL."""
    command = [sys.executable, "-m", "visionloop.cli", "-p", str(project), "serve", "--token", token, *extra]
    with _http_server(
        "visionloop serve",
        lambda port: [*command, "--port", str(port), "--log-level", "warning"],
        _serve_answers,
        log_path,
        timeout_s=VISIONLOOP_SERVE_TIMEOUT_S,
    ) as url:
        yield url
