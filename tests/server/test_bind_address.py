"""Servers listen on 127.0.0.1 unless told otherwise: ``visionloop serve`` is started and its
listening socket read back from the kernel; the settings and the CLI option default there too.

The only other server-like entry point, the Ray executor's local instance, has no bind address
in Ray 2.60 and relies on Ray's token authentication (see visionloop.project.executor)."""

from __future__ import annotations

import inspect
import ipaddress
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardening_tally import tally
from servers import visionloop_server
from tiny_registry import classifier_project
from visionloop.cli.app import app
from visionloop.cli.commands_serve import serve
from visionloop.server.settings import ServerSettings

TOKEN = "bind-token-0123456789abcdef"  # noqa: S105  # a fixture token
_LISTEN = "0A"


def _listening(port: int) -> set[str]:
    """The addresses the kernel has listening TCP sockets on for ``port`` (Linux /proc)."""
    found = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == _LISTEN and int(port_hex, 16) == port:
                raw = bytes.fromhex(address)
                # /proc writes each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(str(ipaddress.ip_address(words)))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from Linux /proc")
def test_visionloop_serve_listens_on_loopback_only_by_default(tmp_path: Path) -> None:
    project = classifier_project(tmp_path, approved=(1,))
    with visionloop_server(project.root, TOKEN, tmp_path / "serve.log") as url:
        port = int(url.rsplit(":", 1)[1])
        assert _listening(port) == {"127.0.0.1"}
    tally("server entry points checked")


def test_settings_and_the_cli_option_default_to_loopback() -> None:
    assert ServerSettings().host == "127.0.0.1"
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--host" in result.output and "127.0.0.1" in result.output
