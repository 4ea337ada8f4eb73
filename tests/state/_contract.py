"""The backends the contract suite runs against, and real holder processes for their locks.

``Backend.open()`` opens another store on the same state (for memory: a world of its own,
``shared`` False). ``holder(...)`` runs a real child process that opens the store, takes a
lock and reports its liveness token; ``dead_holder(...)`` leaves a lock whose holder is
gone: for SQLite and memory a child that exits without releasing it, for PostgreSQL a child
killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rollsafe.state.base import LockHeldError, StateStore
from rollsafe.state.records import LockInfo

REPO = Path(__file__).resolve().parents[2]

_CHILD = r"""
import os, socket, sys, time
from rollsafe.state._liveness import local_session
from rollsafe.state.records import LockInfo
kind, where, mode, env, service, deploy = sys.argv[1:7]
store = None
if kind == "sqlite":
    from pathlib import Path
    from rollsafe.state.sqlite import SQLiteStateStore
    store = SQLiteStateStore(Path(where))
elif kind == "postgresql":
    from rollsafe.state.postgresql import PostgresStateStore
    store = PostgresStateStore(where)
if store is not None and service:
    store.acquire_lock(
        LockInfo(env, service, deploy, "child", socket.gethostname(), os.getpid(), time.time())
    )
print(store.session if store is not None else local_session(), flush=True)
if mode == "wait":
    sys.stdin.readline()  # until the parent closes stdin, or kills this process
os._exit(0)  # no close(): what a crash leaves behind
"""


@dataclass
class Backend:
    """One backend under test."""

    kind: str
    where: str  # the journal path or the URL (without a password)
    factory: Callable[[], StateStore]
    child_env: dict[str, str] = field(default_factory=dict)
    opened: list[StateStore] = field(default_factory=list)

    @property
    def shared(self) -> bool:
        """Whether ``open()`` gives another store on the same state."""
        return self.kind != "memory"

    def open(self) -> StateStore:
        store = self.factory()
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()

    @contextlib.contextmanager
    def holder(
        self, env: str = "", service: str = "", deploy: str = "", *, wait: bool = True
    ) -> Iterator[tuple[subprocess.Popen[str], str]]:
        """A child process (holding ``env``/``service`` for ``deploy`` if given): yields it
        and its liveness token. It exits when the block ends, if it still runs."""
        kind = self.kind if self.kind != "memory" else "none"
        env_vars = {**os.environ, **self.child_env, "PYTHONPATH": str(REPO / "src")}
        with subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHILD,
                kind,
                self.where,
                "wait" if wait else "exit",
                env,
                service,
                deploy,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env_vars,
        ) as proc:
            assert proc.stdout is not None
            session = proc.stdout.readline().strip()
            assert session, "the holder process failed to start"
            try:
                yield proc, session
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()

    def dead_holder(self, store: StateStore, env: str, service: str, deploy: str) -> str:
        """Leave a lock of ``env``/``service`` whose holder is gone; returns its token."""
        if self.kind == "memory":
            # a real process that has exited: its pid and token, written as its lock
            with self.holder(wait=False) as (proc, session):
                proc.wait()
            store.acquire_lock(
                LockInfo(
                    env,
                    service,
                    deploy,
                    "child",
                    socket.gethostname(),
                    proc.pid,
                    1.0,
                    session=session,
                )
            )
            return session
        if self.kind == "sqlite":
            with self.holder(env, service, deploy, wait=False) as (proc, session):
                proc.wait()
            return session
        with self.holder(env, service, deploy) as (proc, session):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        return session


def acquire_soon(store: StateStore, holder: LockInfo, seconds: float = 20) -> None:
    """Acquire, retrying while a just-killed holder's backend is still ending (its socket
    close reaches the server a moment after the kill)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            store.acquire_lock(holder)
            return
        except LockHeldError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
