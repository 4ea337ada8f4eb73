"""Proving that a pid is ours before signalling it.

A state file outlives what it names: after a crash or a reboot the pid in ``emulator.json``
or in the ``processes`` table may belong to an unrelated process. So a pid is signalled only
with proof: its start time (``/proc/PID/stat`` field 22, in clock ticks since boot) equals the
one recorded when we started it, and, for a revision's process group, its environment holds
this state directory's marker (``ROLLSAFE_EMULATOR_INSTANCE``), which the supervisor gives
every revision process. Where ``/proc`` is missing nothing can be proved, and nothing is
signalled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "INSTANCE_ENV",
    "PROCESSES_SCHEMA",
    "ensure_processes_table",
    "instance_id",
    "owned_group",
    "owned_process",
    "start_time",
]

#: the variable the supervisor sets on every revision process: the state directory's id
INSTANCE_ENV = "ROLLSAFE_EMULATOR_INSTANCE"

#: revision process groups, written by the supervisor so `stop` can sweep leftovers
PROCESSES_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS processes (pgid INTEGER PRIMARY KEY, revision TEXT NOT NULL, "
    "started TEXT NOT NULL, start_time INTEGER, instance TEXT)"
)
#: columns added after the table first shipped (older state directories lack them)
_ADDED = (("start_time", "INTEGER"), ("instance", "TEXT"))


def ensure_processes_table(query: Callable[[str], Iterable[Sequence[Any]]]) -> None:
    """Create the ``processes`` table, or add the proof columns to an older one.

    ``query`` runs one statement and returns its rows (``EmulatorDB.query``, or a
    connection's ``execute``).
    """
    query(PROCESSES_SCHEMA)
    have = {row[1] for row in query("PRAGMA table_info(processes)")}
    for name, kind in _ADDED:
        if name not in have:
            query(f"ALTER TABLE processes ADD COLUMN {name} {kind}")


def instance_id(state_dir: Path) -> str:
    """The marker of ``state_dir``'s emulator: a digest of its resolved path."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot; None if unknown (gone, no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    fields = stat.rpartition(b")")[2].split()
    try:
        return int(fields[19])  # field 22 of stat(5); fields[0] is field 3
    except (IndexError, ValueError):
        return None


def owned_process(pid: int, recorded_start: object) -> bool:
    """Is ``pid`` the process that started at ``recorded_start`` (what we wrote down)?"""
    if pid <= 0 or not isinstance(recorded_start, int) or isinstance(recorded_start, bool):
        return False
    return start_time(pid) == recorded_start


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


def owned_group(pgid: int, recorded_start: object, instance: str) -> bool:
    """Is ``pgid`` the leader of a revision group that this state directory's emulator
    started: the recorded start time, and the instance marker in its environment?"""
    if not owned_process(pgid, recorded_start):
        return False
    return f"{INSTANCE_ENV}={instance}".encode() in _environ(pgid)
