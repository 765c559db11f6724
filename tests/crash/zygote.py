"""A process that imports visionloop's heavy modules once, then forks a child per command to run.

Crash tests kill the child with SIGKILL at random moments; forking from a warm parent puts those
moments in the command's real work instead of in Python start-up, and costs milliseconds a run
instead of seconds of imports. Protocol, one JSON line each way:

    stdin:  {"argv": ["-p", "/project", "train", ...], "log": "/path/for/stdout+stderr"}
    stdout: {"pid": 1234}                   as soon as the child runs
            {"pid": 1234, "returncode": 0}  when it ends (-9 when killed by SIGKILL)
"""

from __future__ import annotations

import json
import os
import sys


def _warm_up() -> None:
    """Import what the commands import, so a child starts working at once."""
    import torch  # noqa: F401

    import visionloop.active.prelabel
    import visionloop.formats
    import visionloop.ingest
    import visionloop.labeling.labelstudio
    import visionloop.pipelines.runner
    import visionloop.pipelines.sync
    import visionloop.training  # noqa: F401
    from visionloop.cli.app import app  # noqa: F401


def _child(argv: list[str], log: str) -> None:
    """Run one command in this (forked) process and leave with its exit status, never returning."""
    os.setpgid(0, 0)  # its own process group, so a kill also takes any worker it started
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    code = 1
    try:
        from visionloop.cli.app import app

        sys.argv = ["visionloop", *argv]
        app(argv, prog_name="visionloop")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported in the log, the exit status says it failed
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    _warm_up()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request["argv"], request["log"])
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"pid": pid, "returncode": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
