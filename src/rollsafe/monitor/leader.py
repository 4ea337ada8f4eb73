"""Which of several ``rollsafe monitor`` processes of one environment evaluates and notifies.

The leader holds the environment's deploy lock of the pseudo-service ``@monitor`` (a
service name no manifest can have). On PostgreSQL that lock is a session-level advisory
lock: it dies with the leader's process or connection, and a standby that tries it every
interval takes over within two intervals. On SQLite (one machine) a second monitor is
refused at start, naming the first: two processes on one file are a mistake, not HA.

Standbys idle: they neither probe nor read logs, so a standby costs nothing and the
services see one monitor's probes. Alert state and sent-markers live in the shared
store, so the new leader goes on where the old one stopped, and notifies each event once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from rollsafe.errors import RollsafeError
from rollsafe.state.base import LockHeldError, StateStore, StateUnavailableError
from rollsafe.state.records import LockInfo, ci_job_url, who_am_i

__all__ = ["LEADER_SERVICE", "Leader", "LeadershipLostError", "MonitorRunningError"]

#: the lock's pseudo-service: ``@`` is not allowed in a manifest's service names
LEADER_SERVICE = "@monitor"


class MonitorRunningError(RollsafeError):
    """Another monitor of this environment runs on a store that cannot share it (SQLite)."""

    exit_code = 1


class LeadershipLostError(RollsafeError):
    """This monitor led, and another one leads now (the database dropped this monitor's
    session and a standby took the lock before it was taken back). The monitor stops, as
    Kubernetes' leader election does, so that its supervisor restarts it as a standby:
    two leaders would notify twice."""

    exit_code = 1


class Leader:
    """The leader election of ``env``'s monitors through ``store``'s lock of ``@monitor``.

    ``acquire()`` at start: on SQLite it raises ``MonitorRunningError`` naming the live
    monitor; on PostgreSQL it returns False and the caller polls ``poll()`` every interval.
    """

    def __init__(
        self, store: StateStore, env: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._env = env
        self._clock = clock
        user, _ = who_am_i()
        self._me = LockInfo(
            env=env,
            service=LEADER_SERVICE,
            deploy_id=f"monitor-{uuid.uuid4().hex[:8]}",
            user=user,
            host=socket.gethostname(),
            pid=os.getpid(),
            since=clock(),
            ci_url=ci_job_url(),
            session=store.session,
        )
        self._held = False
        self._since = self._me.since
        #: the live leader when this monitor is a standby
        self.holder: LockInfo | None = None

    @property
    def shared(self) -> bool:
        """Whether several monitors may share this store (leader and standbys)."""
        return self._store.kind == "postgresql"

    @property
    def is_leader(self) -> bool:
        return self._held

    @property
    def me(self) -> LockInfo:
        """This monitor, as its lock names it."""
        return self._me

    def acquire(self) -> bool:
        """Try to become the leader. True: this monitor leads.

        On a store that is not shared a live leader refuses this monitor
        (``MonitorRunningError``, naming it).
        """
        if self._held:
            return True
        holder = replace(self._me, since=self._clock())
        try:
            self._store.acquire_lock(holder)
            self._since = holder.since
        except LockHeldError as exc:
            self.holder = exc.holder
            if not self.shared:
                raise MonitorRunningError(
                    f"another monitor of {self._env} runs: {exc.holder.describe()}",
                    hint="stop it first; on one machine one monitor per environment runs "
                    "(on PostgreSQL state, a second monitor waits as a standby)",
                ) from None
            return False
        self._held = True
        self.holder = None
        return True

    def confirm(self) -> None:
        """While leading, check that the lock is still this monitor's; raises
        ``LeadershipLostError`` naming the new leader when it is not. An unreachable store
        cannot tell: this monitor goes on leading until it can."""
        if not self._held or not self.shared:
            return
        try:
            self._store.acquire_lock(replace(self._me, since=self._since))
        except LockHeldError as exc:
            self._held = False
            self.holder = exc.holder
            raise LeadershipLostError(
                f"this monitor lost the leadership of {self._env} to "
                f"{exc.holder.describe()}; it stops so that it restarts as a standby",
                hint="run the monitor under a supervisor that restarts it (systemd, "
                "Kubernetes); the new leader goes on from the shared state",
            ) from None
        except StateUnavailableError:
            return

    def poll(self) -> bool:
        """A standby's periodic try (every interval); True once it leads. An unreachable
        store leaves it a standby until the next try."""
        try:
            return self.acquire()
        except StateUnavailableError:
            return False

    def release(self) -> None:
        """Let the next monitor lead (also done by the store's close and by dying)."""
        if self._held:
            self._held = False
            # unreachable: the session that held it is gone, and its lock with it
            with contextlib.suppress(StateUnavailableError):
                self._store.release_lock(self._env, LEADER_SERVICE, self._me.deploy_id)
