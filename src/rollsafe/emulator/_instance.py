"""What a revision instance is, and the small process helpers the supervisor uses.

Specs, the start error, one attempt of a startup probe, the environment an instance
inherits, and the messages Cloud Run words for a container that does not start. Those
messages are Cloud Run's own fixed text: they point at the logs and never quote what the
application printed (the logs have that: ``run.googleapis.com/stdout``, ``stderr`` and
``varlog/system``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from urllib.parse import quote

__all__ = [
    "DEFAULT_PROBE_SECONDS",
    "InstanceSpec",
    "ProbeSpec",
    "RevisionStartError",
    "SecretEnv",
    "base_env",
    "exit_description",
    "failed_to_start",
    "free_port",
    "logs_url",
    "not_ready",
    "probe_failed",
    "probe_once",
    "probe_succeeded",
    "secret_path",
    "signal_group",
]


class RevisionStartError(Exception):
    """The first instance of a revision did not become ready.

    ``message`` is what the operation's error and the service's condition say (``Revision
    'X' is not ready and cannot serve traffic. ...``); ``condition`` is what the revision's
    own Ready condition says (the same text without that first sentence, as on Cloud Run).
    """

    def __init__(
        self, message: str, exit_code: int | None = None, *, condition: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.condition = condition if condition is not None else message


#: Cloud Run's startup probe when a container declares none (its documented default)
DEFAULT_PROBE_SECONDS = 240


@dataclass(frozen=True)
class ProbeSpec:
    """A startup probe as Cloud Run runs it.

    ``path`` None is a TCP probe, else an HTTP GET of ``path``. ``port`` None means the
    container's ingress port (the instance's ``PORT`` locally). Attempts start every
    ``period`` seconds after ``initial_delay``; each may take ``timeout`` seconds; the
    revision fails after ``failure_threshold`` failures in a row. ``default`` marks the
    probe Cloud Run adds to a container that declares none.
    """

    path: str | None = None
    port: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    initial_delay: float = 0.0
    period: float = float(DEFAULT_PROBE_SECONDS)
    timeout: float = float(DEFAULT_PROBE_SECONDS)
    failure_threshold: int = 1
    default: bool = True

    @property
    def kind(self) -> str:
        return "TCP" if self.path is None else "HTTP"


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
    #: the ingress container's name, as Cloud Run's system log entries name it
    container: str = ""
    #: the port the container declares (``container_port``); locally it is reached on PORT
    container_port: int = 8080


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


async def probe_once(port: int, probe: ProbeSpec, host: str = "127.0.0.1") -> bool:
    """One attempt of ``probe`` against ``port``, within ``probe.timeout``.

    A TCP attempt succeeds once a connection opens, trying again until its timeout (a
    container gets the whole timeout to start listening); an HTTP attempt is one GET that
    must answer 200-399 (Cloud Run counts 2xx and 3xx as success).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + probe.timeout
    while True:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), max(deadline - loop.time(), 0.001)
            )
            break
        except (OSError, TimeoutError):
            if probe.path is not None or loop.time() >= deadline:
                return False
            await asyncio.sleep(min(0.05, max(deadline - loop.time(), 0)))
    try:
        if probe.path is None:
            return True
        headers = {"Host": f"{host}:{port}", "User-Agent": "GoogleHC/1.0"}
        for name, value in probe.headers:
            headers[name] = value
        lines = [f"GET {probe.path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), max(deadline - loop.time(), 0.001))
        parts = status_line.split()
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


def logs_url(spec: InstanceSpec) -> str:
    """The Cloud Console link Cloud Run puts in a failed revision's message."""
    query = (
        f'resource.type="cloud_run_revision"\nresource.labels.service_name="{spec.service}"'
        f'\nresource.labels.revision_name="{spec.revision}"'
    )
    return (
        f"https://console.cloud.google.com/logs/viewer?project={spec.project}"
        f"&resource=cloud_run_revision/service_name/{spec.service}/revision_name/"
        f"{spec.revision}&advancedFilter={quote(query, safe='')}"
    )


def failed_to_start(spec: InstanceSpec, port: int) -> RevisionStartError:
    """Cloud Run's error for a container that exited or failed its startup probe.

    Its wording is fixed; what the application printed is in the revision's logs only.
    """
    condition = (
        "The user-provided container failed to start and listen on the port defined provided "
        f"by the PORT={port} environment variable within the allocated timeout. This can "
        "happen when the container port is misconfigured or if the timeout is too short. "
        "The health check timeout can be extended. Logs for this revision might contain "
        f"more information.\n\nLogs URL: {logs_url(spec)}\nFor more troubleshooting "
        "guidance, see https://cloud.google.com/run/docs/troubleshooting"
        "#container-failed-to-start"
    )
    return RevisionStartError(f"{not_ready(spec)} {condition}", condition=condition)


def not_ready(spec: InstanceSpec) -> str:
    return f"Revision '{spec.revision}' is not ready and cannot serve traffic."


def _target(probe: ProbeSpec, port: int) -> str:
    if probe.path is not None:
        return f'on path "{probe.path}"'
    return f"on port {port}"


def probe_failed(spec: InstanceSpec, probe: ProbeSpec, port: int, failures: int) -> str:
    """The system log line of a startup probe that gave up."""
    times = "time" if failures == 1 else "times"
    prefix = "Default STARTUP" if probe.default else "STARTUP"
    return (
        f"{prefix} {probe.kind} probe failed {failures} {times} consecutively for container "
        f'"{spec.container}" {_target(probe, port)}. The instance was not started.'
    )


def probe_succeeded(spec: InstanceSpec, probe: ProbeSpec, port: int, attempts: int) -> str:
    """The system log line of a startup probe that passed."""
    noun = "attempt" if attempts == 1 else "attempts"
    prefix = "Default STARTUP" if probe.default else "STARTUP"
    return (
        f"{prefix} {probe.kind} probe succeeded after {attempts} {noun} for container "
        f'"{spec.container}" {_target(probe, port)}.'
    )


def secret_path(project: str, secret: str) -> str:
    return secret if secret.startswith("projects/") else f"projects/{project}/secrets/{secret}"
