"""Liveness tokens of local processes: ``pid:HOST:PID:STARTTIME``.

A pid alone is not proof: after its process exits the kernel may hand the same number to
an unrelated process. The token also holds the process start time (``/proc/PID/stat``), so
a reused pid reads as gone. Another machine's processes cannot be seen: they are assumed
alive, and only ``rollsafe unlock`` breaks their locks.
"""

from __future__ import annotations

import os
import socket

from rollsafe.emulator._ownership import start_time

__all__ = ["PID_PREFIX", "local_session", "pid_alive", "session_alive"]

PID_PREFIX = "pid:"


def local_session() -> str:
    """This process's token: ``pid:HOST:PID:STARTTIME`` (STARTTIME empty without /proc)."""
    pid = os.getpid()
    started = start_time(pid)
    return f"{PID_PREFIX}{socket.gethostname()}:{pid}:{'' if started is None else started}"


def pid_alive(pid: int, host: str) -> bool:
    """Whether ``pid`` runs on ``host`` (another host: assumed alive)."""
    if host != socket.gethostname():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user's process
    return True


def session_alive(session: str | None, host: str, pid: int) -> bool:
    """Whether the writer with a ``pid:`` token (else ``host``/``pid``) still runs.

    Tokens of other kinds (``pg:``, ``memory:``) cannot be checked here: host and pid
    decide, as for records written before tokens existed.
    """
    if session is None or not session.startswith(PID_PREFIX):
        return pid_alive(pid, host)
    body = session[len(PID_PREFIX) :]
    token_host, _, rest = body.rpartition(":")
    token_host, _, token_pid = token_host.rpartition(":")
    try:
        proc = int(token_pid)
    except ValueError:
        return pid_alive(pid, host)
    if token_host != socket.gethostname():
        return True  # cannot tell for another machine
    if not pid_alive(proc, token_host):
        return False
    if not rest or start_time(os.getpid()) is None:
        return True  # no start time recorded, or no /proc here: the pid is all we have
    return str(start_time(proc)) == rest
