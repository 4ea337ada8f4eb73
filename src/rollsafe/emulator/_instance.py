"""What a revision instance is, and the small process helpers the supervisor uses.

Specs, the start error, the startup probe, the environment an instance inherits, and the
messages Cloud Run words for a container that does not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from dataclasses import dataclass, field

__all__ = [
    "InstanceSpec",
    "ProbeSpec",
    "RevisionStartError",
    "SecretEnv",
    "base_env",
    "exit_description",
    "free_port",
    "not_ready",
    "probe_once",
    "secret_path",
    "signal_group",
]


class RevisionStartError(Exception):
    """The first instance of a revision did not become ready; ``message`` says why."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class ProbeSpec:
    """A startup probe: TCP connect (``path`` None) or HTTP GET ``path``, within a budget."""

    path: str | None = None
    initial_delay: float = 0.0
    timeout: float = 1.0
    budget: float = 60.0


@dataclass(frozen=True)
class SecretEnv:
    """An env var read from Secret Manager when the instance starts, as Cloud Run does."""

    name: str
    secret: str
    version: str = "latest"
    #: where the reference sits in the template, for error messages
    field_path: str = ""


@dataclass(frozen=True)
class InstanceSpec:
    """What to run for one revision."""

    project: str
    location: str
    service: str
    revision: str
    #: the revision's full resource name (the supervisor's key)
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[SecretEnv, ...] = ()
    working_dir: str | None = None
    probe: ProbeSpec = field(default_factory=ProbeSpec)


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def exit_description(code: int) -> str:
    """``Container called exit(3).`` or ``Container terminated on signal 9.``"""
    if code < 0:
        return f"Container terminated on signal {-code}."
    return f"Container called exit({code})."


#: variables of the emulator's own environment an instance inherits (never the whole env)
_INHERITED = ("PATH", "HOME", "VIRTUAL_ENV", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


def base_env() -> dict[str, str]:
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    # keep the emulator's interpreter and its packages reachable: `python -m uvicorn` and a
    # bare `uvicorn` must work in an instance as they do in the emulator's own venv
    bindir = os.path.dirname(sys.executable)
    path = env.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        env["PATH"] = os.pathsep.join(p for p in (bindir, path) if p)
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    # pipes make Python buffer stdout by blocks; logs must appear as they are written
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def probe_once(port: int, probe: ProbeSpec) -> bool:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), probe.timeout
        )
    except (OSError, TimeoutError):
        return False
    try:
        if probe.path is None:
            return True
        request = (
            f"GET {probe.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode("latin-1"))
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), probe.timeout)
        parts = status_line.split()
        # Kubernetes and Cloud Run count 2xx and 3xx as success
        return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def not_ready(spec: InstanceSpec, port: int) -> str:
    return (
        f"Revision '{spec.revision}' is not ready and cannot serve traffic. The user-provided "
        "container failed to start and listen on the port defined provided by the "
        f"PORT={port} environment variable."
    )


def secret_path(project: str, secret: str) -> str:
    return secret if secret.startswith("projects/") else f"projects/{project}/secrets/{secret}"
