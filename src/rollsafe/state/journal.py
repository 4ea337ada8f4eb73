"""The deploy journal: one record per deploy attempt, written before each stage.

``DeployJournal`` is the deploy's view of a ``StateStore``: it builds the records and the
lock holders; the store keeps them (SQLite in the state directory by default, or a team's
PostgreSQL). A crash at any point leaves a record whose ``outcome`` is empty and whose
writer is gone; the next command on that service, on any machine sharing the store,
reconciles it.

A journal write never stops a deploy: one the store cannot take is retried for a few
seconds, then kept in a local spool (``state._spool``) that the next journal opened on a
reachable store replays.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rollsafe.errors import RollsafeError
from rollsafe.state._spool import SPOOL_DIR_NAME, Spool
from rollsafe.state.base import LockHeldError, StateStore, StateUnavailableError
from rollsafe.state.paths import ensure_state_dir, state_dir_for
from rollsafe.state.records import DeployRecord, LockInfo, ci_job_url, who_am_i

__all__ = ["JOURNAL_FILE", "DeployJournal", "DeployLockedError", "DeployRecord", "who_am_i"]

#: the SQLite journal's file in the state directory
JOURNAL_FILE = "journal.sqlite3"

#: how long a write the store refused as unavailable is retried before it is spooled: a
#: database that restarts is back within it; one that is down is not waited for
RETRY_SECONDS = 5.0
#: the pauses between those attempts
RETRY_DELAYS = (0.2, 0.4, 0.8, 1.6)


class DeployLockedError(RollsafeError):
    """Another deploy of the same service and environment is running."""

    exit_code = 1


Warn = Callable[[str], None]


def _ignore(_message: str) -> None:
    """The default ``on_warning``: library callers that do not listen hear nothing."""


class DeployJournal:
    """Deploy records and per-service locks in a ``StateStore``.

    ``store`` is a store, or a state directory (today's ``journal.sqlite3`` in it, the
    store then owned and closed by this journal). Writes the store cannot take go to the
    spool in ``spool_dir`` (default: ``spool/`` in the state directory); ``on_warning``
    hears, once, that they did, and that an earlier spool was replayed.
    """

    def __init__(
        self,
        store: StateStore | Path,
        *,
        spool_dir: Path | None = None,
        on_warning: Warn | None = None,
    ) -> None:
        self._owns_store = isinstance(store, Path)
        #: the journal file when ``store`` was a state directory (else None)
        self.path: Path | None = None
        if isinstance(store, Path):
            from rollsafe.state.sqlite import SQLiteStateStore

            ensure_state_dir(store)  # with its .gitignore
            self.path = store / JOURNAL_FILE
            spool_dir = spool_dir or store / SPOOL_DIR_NAME
            store = SQLiteStateStore(self.path)
        self.store: StateStore = store
        self._warn: Warn = on_warning or _ignore
        self._spool = Spool(spool_dir or state_dir_for() / SPOOL_DIR_NAME, store.location)
        #: set once a write was spooled: the rest of the run goes there too, in order
        self._spooling = False
        self._write_lock = threading.Lock()
        try:
            self.replay_spool()
        except BaseException:
            self.close()
            raise

    # -- lifetime --
    def close(self) -> None:
        """Close the store if this journal opened it."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> DeployJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DeployJournal({self.store.location!r})"

    @property
    def location(self) -> str:
        """Where the journal is, for messages: a path, or a URL without its password."""
        return self.store.location

    @property
    def spooling(self) -> bool:
        """Whether this run's writes go to the local spool (the store was lost)."""
        return self._spooling

    @property
    def spool(self) -> Spool:
        """The local spool of this journal's store."""
        return self._spool

    def replay_spool(self) -> int:
        """Write the writes spooled by earlier runs into the store; return how many.

        Nothing happens (0) while the store is unreachable: the spool waits for a run
        that reaches it.
        """
        try:
            count = self._spool.replay(self.store)
        except StateUnavailableError:
            return 0
        if count:
            self._warn(f"replayed {count} journal writes spooled while DB was unreachable")
        return count

    # -- writes: retried, then spooled --
    def _save(self, record: DeployRecord) -> None:
        """Write ``record`` whole: to the store, retried while it is unavailable, else to
        the spool. Never raises ``StateUnavailableError``."""
        with self._write_lock:
            if not self._spooling:
                deadline = time.monotonic() + RETRY_SECONDS
                delays = iter(RETRY_DELAYS)
                while True:
                    try:
                        self.store.save_record(record)
                        return
                    except StateUnavailableError as exc:
                        delay = next(delays, RETRY_DELAYS[-1])
                        # an attempt may itself take seconds (a connect or pool timeout)
                        if time.monotonic() + delay > deadline:
                            self._start_spooling(exc)
                            break
                        time.sleep(delay)
            self._spool.append(record)

    def _start_spooling(self, exc: StateUnavailableError) -> None:
        self._spooling = True
        self._warn(
            f"the state store is unreachable ({exc.message}); the journal writes of this "
            f"run go to {self._spool.path} and are replayed by the next run that reaches "
            f"{self.store.location}"
        )

    # -- records --
    def begin(
        self,
        *,
        env: str,
        service: str,
        checks: str,
        reason: str | None,
        image: str | None,
        cwd: Path | None = None,
        forced: bool = False,
    ) -> DeployRecord:
        """Write the record of a new attempt (stage ``plan``) and return it."""
        user, commit = who_am_i(cwd)
        record = DeployRecord(
            id=time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6],
            env=env,
            service=service,
            user=user,
            host=socket.gethostname(),
            pid=os.getpid(),
            checks=checks,
            stage="plan",
            started=time.time(),
            git_commit=commit,
            image=image,
            reason=reason,
            forced=forced,
            ci_url=ci_job_url(),
            session=self.store.session,
        )
        self._save(record)
        return record

    def record_unlock(self, broken: LockInfo, reason: str, cwd: Path | None = None) -> DeployRecord:
        """Journal that the stale lock ``broken`` was broken, and why (``history`` shows it):
        checks ``unlock``, outcome ``unlocked``."""
        user, commit = who_am_i(cwd)
        now = time.time()
        record = DeployRecord(
            id=time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6],
            env=broken.env,
            service=broken.service,
            user=user,
            host=socket.gethostname(),
            pid=os.getpid(),
            checks="unlock",
            stage="unlock",
            started=now,
            git_commit=commit,
            reason=reason,
            outcome="unlocked",
            exit_code=0,
            message=f"broke the stale lock of {broken.describe()}",
            finished=now,
            ci_url=ci_job_url(),
            session=self.store.session,
        )
        self._save(record)
        return record

    def update(self, record: DeployRecord, **changes: Any) -> DeployRecord:
        """Change fields of ``record`` and write them at once (before the stage runs)."""
        for key, value in changes.items():
            setattr(record, key, value)
        self._save(record)
        return record

    def stage(self, record: DeployRecord, name: str, **changes: Any) -> DeployRecord:
        """Record that stage ``name`` starts now, with ``changes`` (its compensation) in the
        same write: a kill can never see the stage without them."""
        stages = [*record.stages, {"stage": name, "started": time.time(), "seconds": None}]
        return self.update(record, stage=name, stages=stages, **changes)

    def stage_done(self, record: DeployRecord, ok: bool, detail: str = "") -> DeployRecord:
        """Close the current stage with its duration and result."""
        if not record.stages:
            return record
        stages = [dict(s) for s in record.stages]
        last = stages[-1]
        last["seconds"] = round(time.time() - last["started"], 3)
        last["ok"] = ok
        if detail:
            last["detail"] = detail
        return self.update(record, stages=stages)

    def finish(
        self,
        record: DeployRecord,
        outcome: str,
        exit_code: int,
        message: str,
        rollback: dict[str, Any] | None = None,
    ) -> DeployRecord:
        """Close the attempt with its outcome."""
        return self.update(
            record,
            outcome=outcome,
            exit_code=exit_code,
            message=message,
            rollback=rollback,
            finished=time.time(),
        )

    # -- reads (``StateUnavailableError`` when the store cannot be reached) --
    def history(self, env: str, service: str | None = None, limit: int = 100) -> list[DeployRecord]:
        """Newest first."""
        return self.store.list_records(env, service or None, limit)

    def get(self, deploy_id: str) -> DeployRecord | None:
        """The record ``deploy_id``, or None."""
        return self.store.get_record(deploy_id)

    def interrupted(self, env: str, service: str) -> list[DeployRecord]:
        """Attempts with no outcome whose writer is gone: they need reconciling."""
        return [
            r
            for r in self.history(env, service)
            if r.in_progress and not self.store.is_alive(r.session, r.host, r.pid)
        ]

    def last_verified_revision(self, env: str, service: str) -> str | None:
        """The revision of the newest deploy that succeeded."""
        for record in self.history(env, service):
            if record.outcome == "succeeded" and record.revision:
                return record.revision
        return None

    # -- locks --
    @contextlib.contextmanager
    def lock(self, env: str, service: str, record: DeployRecord) -> Iterator[None]:
        """Hold the deploy lock of ``env``/``service``; a stale lock (its holder gone) is
        taken over.

        An attempt refused because another holds it (or because the store cannot be
        reached to take it) is closed at once as ``refused``: left open, it would look
        like a running deploy for as long as its process lives.
        """
        try:
            self.acquire(env, service, record)
        except (DeployLockedError, StateUnavailableError) as exc:
            self.finish(record, "refused", exc.exit_code, exc.message)
            raise
        try:
            yield
        finally:
            self.release(env, service, record.id)

    def acquire(self, env: str, service: str, record: DeployRecord) -> None:
        """Take the lock for ``record``, or raise ``DeployLockedError`` naming its holder."""
        holder = LockInfo(
            env=env,
            service=service,
            deploy_id=record.id,
            user=record.user,
            host=record.host,
            pid=record.pid,
            since=time.time(),
            ci_url=record.ci_url,
            session=self.store.session,
        )
        try:
            self.store.acquire_lock(holder)
        except LockHeldError as exc:
            raise DeployLockedError(
                f"another deploy of {service} to {env} is running: {exc.holder.describe()}",
                hint="wait for it to finish; if that process is gone, the next command "
                f"takes the lock over (see `rollsafe locks --env {env}`)",
            ) from None
        except StateUnavailableError as exc:
            raise StateUnavailableError(
                f"cannot take the deploy lock of {service} in {env}: {exc.message}; "
                "nothing was changed",
                hint=exc.hint,
            ) from exc

    def release(self, env: str, service: str, deploy_id: str) -> None:
        """Release the lock if ``deploy_id`` holds it. A store that cannot be reached is
        ignored: the lock went with the session it was held by."""
        with contextlib.suppress(StateUnavailableError):
            self.store.release_lock(env, service, deploy_id)

    @contextlib.contextmanager
    def try_lock(self, env: str, service: str, purpose: str) -> Iterator[LockInfo | None]:
        """A short-lived lock of ``env``/``service`` with an id of its own (``purpose``-…),
        for a command that is not a deploy; yields the live holder instead (None: ours)."""
        user, _ = who_am_i()
        holder = LockInfo(
            env=env,
            service=service,
            deploy_id=f"{purpose}-{uuid.uuid4().hex[:6]}",
            user=user,
            host=socket.gethostname(),
            pid=os.getpid(),
            since=time.time(),
            ci_url=ci_job_url(),
            session=self.store.session,
        )
        try:
            self.store.acquire_lock(holder)
        except LockHeldError as exc:
            yield exc.holder
            return
        try:
            yield None
        finally:
            self.release(env, service, holder.deploy_id)

    def locks(self, env: str) -> list[LockInfo]:
        """The locks of ``env``, each with ``held`` False when its holder is gone."""
        return self.store.list_locks(env)

    def break_lock(self, env: str, service: str) -> LockInfo | None:
        """Remove a stale lock (``LockHeldError`` while its holder lives); what it was, or
        None when there was no lock."""
        return self.store.break_lock(env, service)
