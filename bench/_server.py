"""``visionloop serve``'s app under uvicorn in its own process, for benches that time requests
over real HTTP. Run as a script it serves one project: ``_server.py ROOT PORT`` (the token comes
from ``$VISIONLOOP_TOKEN``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from visionloop.project import Project

__all__ = ["Server"]


class Server:
    def __init__(self, project: Project, token: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, __file__, str(project.root), str(self.port)]
        environment = {**os.environ, "VISIONLOOP_TOKEN": token}
        self.process = subprocess.Popen(command, env=environment, start_new_session=True)  # noqa: S603

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the server exited while starting")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("the server did not start")

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def serve(root: Path, port: int) -> None:
    import uvicorn

    from visionloop.server import ServerSettings, create_app

    settings = ServerSettings(token=os.environ["VISIONLOOP_TOKEN"], port=port, poll_seconds=0.5)
    uvicorn.run(create_app(Project.load(root), settings), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
