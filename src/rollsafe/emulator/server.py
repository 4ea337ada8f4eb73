"""Running the emulator: in the foreground, or in the background with start/stop/status."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollsafe.emulator._ownership import (
    PROCESSES_SCHEMA,
    ensure_processes_table,
    instance_id,
    owned_group,
    owned_process,
    start_time,
)
from rollsafe.errors import RollsafeError, UsageError
from rollsafe.state.paths import ensure_state_dir

__all__ = [
    "PROCESSES_SCHEMA",
    "EmulatorStatus",
    "emulator_status",
    "endpoint_answers",
    "ensure_emulator",
    "run_emulator",
    "start_emulator",
    "stop_emulator",
]

RUN_FILE = "emulator.json"
LOG_FILE = "emulator.log"
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
#: idle keep-alive of the API port, as Google's front ends (about 620 s)
KEEP_ALIVE_SECONDS = 620


#: emulators this process started, kept until stopped: a Popen collected while its child
#: runs warns (ResourceWarning), and stop_emulator reaps the child through it
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def _reap_finished() -> None:
    """Forget started emulators that died some other way (killed outright, crashed)."""
    for pid, process in list(_STARTED.items()):
        if process.poll() is not None:
            del _STARTED[pid]


class EmulatorError(RollsafeError):
    """The emulator could not be started, reached or stopped."""

    exit_code = 1


@dataclass(frozen=True)
class EmulatorStatus:
    """Whether the emulator of a state directory runs, and where."""

    running: bool
    endpoint: str | None
    pid: int | None
    state_dir: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "endpoint": self.endpoint,
            "pid": self.pid,
            "state_dir": str(self.state_dir),
        }


def _free_port(preferred: int = 0) -> int:
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            bound: int = sock.getsockname()[1]
            return bound
    raise EmulatorError("no free port on 127.0.0.1")


def _read_run_file(state_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((state_dir / RUN_FILE).read_text())
        return data
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours still answers kill(0); reap it if we can
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _answers(endpoint: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=timeout) as response:
            return bool(json.loads(response.read()).get("emulator") == "rollsafe")
    except (OSError, ValueError):
        return False


def endpoint_answers(endpoint: str, timeout: float = 1.0) -> bool:
    """Does a rollsafe emulator answer at ``endpoint`` (``ROLLSAFE_GCP_ENDPOINT``, say)?"""
    return _answers(endpoint.rstrip("/"), timeout)


def emulator_status(state_dir: Path) -> EmulatorStatus:
    """Read ``emulator.json`` and check that the process lives and answers."""
    _reap_finished()
    data = _read_run_file(state_dir)
    if not data:
        return EmulatorStatus(False, None, None, state_dir)
    pid, endpoint = int(data.get("pid", 0)), str(data.get("endpoint", ""))
    running = bool(pid) and _alive(pid) and _answers(endpoint)
    return EmulatorStatus(
        running, endpoint if running else None, pid if running else None, state_dir
    )


def run_emulator(state_dir: Path, port: int = 0) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; revisions stop with it."""
    import uvicorn

    from rollsafe.emulator.app import build_app
    from rollsafe.emulator.state import EmulatorState

    ensure_state_dir(state_dir)
    previous = _read_run_file(state_dir) or {}
    port = _free_port(port or int(previous.get("port", 0)))
    state = EmulatorState.open(state_dir)
    ensure_processes_table(state.db.query)
    endpoint = f"http://{HOST}:{port}"
    state.endpoint = endpoint
    run_file = state_dir / RUN_FILE
    # Google's front ends keep an idle connection for about ten minutes; uvicorn's default
    # of 5 s closes it under a client (the rollback's set_traffic after a canary step) that
    # is about to reuse it, and the request fails with "Remote end closed connection"
    config = uvicorn.Config(
        build_app(state),
        host=HOST,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    server = uvicorn.Server(config)
    info = {
        "pid": os.getpid(),
        # with the pid, what proves to `stop` that a live pid is still this emulator
        "start_time": start_time(os.getpid()),
        "port": port,
        "endpoint": endpoint,
        "started": time.time(),
    }
    run_file.write_text(json.dumps(info))
    try:
        server.run()
    finally:
        data = _read_run_file(state_dir)
        if data and data.get("pid") == os.getpid():
            run_file.unlink(missing_ok=True)
        state.close()
        _sweep_processes(state_dir)


def start_emulator(
    state_dir: Path, port: int = 0, timeout: float = START_TIMEOUT
) -> EmulatorStatus:
    """Start in the background (or find it running) and return once it answers."""
    state_dir = state_dir.resolve()
    status = emulator_status(state_dir)
    if status.running:
        return status
    ensure_state_dir(state_dir)
    (state_dir / RUN_FILE).unlink(missing_ok=True)
    command = [sys.executable, "-m", "rollsafe.emulator", "run", "--state-dir", str(state_dir)]
    if port:
        command += ["--port", str(port)]
    with open(state_dir / LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # survives the shell that started it
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorError(
                f"the emulator exited with code {process.returncode} while starting",
                hint=f"see {state_dir / LOG_FILE}",
            )
        status = emulator_status(state_dir)
        if status.running:
            _STARTED[process.pid] = process
            return status
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise EmulatorError(
        f"the emulator did not answer within {timeout:.0f} s", hint=f"see {state_dir / LOG_FILE}"
    )


def _sweep_processes(state_dir: Path) -> None:
    """Kill any revision process group the supervisor recorded and did not reap.

    Only groups it can prove are this emulator's (``owned_group``: the recorded start time
    and the state directory's marker); every row is dropped, proved or stale.
    """
    db = state_dir / "emulator.sqlite3"
    if not db.exists():
        return
    instance = instance_id(state_dir)
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
            ensure_processes_table(lambda sql: conn.execute(sql).fetchall())
            rows = conn.execute("SELECT pgid, start_time FROM processes").fetchall()
            for pgid, started in rows:
                if owned_group(pgid, started, instance):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pgid, signal.SIGKILL)
            conn.execute("DELETE FROM processes")
            conn.commit()
    except sqlite3.Error:
        pass


def stop_emulator(state_dir: Path, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the emulator and every revision process. True if one was running.

    The pid in ``emulator.json`` is signalled only if it still is the process that wrote
    the file (same start time); a stale file naming a reused pid is just removed.
    """
    state_dir = state_dir.resolve()
    data = _read_run_file(state_dir) or {}
    pid = int(data.get("pid", 0) or 0)
    recorded = data.get("start_time")
    was_running = bool(pid) and _alive(pid) and owned_process(pid, recorded)
    if was_running:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid) and owned_process(pid, recorded):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    (state_dir / RUN_FILE).unlink(missing_ok=True)
    started = _STARTED.pop(pid, None)
    if started is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            started.wait(timeout)
    _sweep_processes(state_dir)
    return was_running


def ensure_emulator(state_dir: Path) -> str:
    """The endpoint of the emulator of ``state_dir``, starting it if needed."""
    if not state_dir.parent.exists():
        raise UsageError(f"state directory's parent does not exist: {state_dir.parent}")
    status = start_emulator(state_dir)
    assert status.endpoint is not None
    return status.endpoint
