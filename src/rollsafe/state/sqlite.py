"""``SQLiteStateStore``: the default backend, one file (``journal.sqlite3``) in the state dir.

It opens journals written by earlier rollsafe releases and keeps their rows (versioned
migrations, ``_sqlite_schema``). WAL mode lets readers run beside a writer; writes that
must be atomic (a lock taken over, a compare-and-swap) run in ``BEGIN IMMEDIATE``, which
the other processes using the file wait for (busy timeout).

Liveness: a writer is known by ``pid:HOST:PID:STARTTIME``; a pid reused by another process
does not pass for the writer, and a writer on another host is assumed alive.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from rollsafe.state._liveness import local_session, session_alive
from rollsafe.state._sqlite_schema import migrate
from rollsafe.state.base import (
    LockHeldError,
    StateConflictError,
    StateError,
    StateStore,
    StateUnavailableError,
)
from rollsafe.state.paths import ensure_state_dir
from rollsafe.state.records import DeployRecord, LockInfo

__all__ = ["JOURNAL_FILE", "SQLiteStateStore"]

JOURNAL_FILE = "journal.sqlite3"
#: how long a write waits for another process's transaction on the file
BUSY_TIMEOUT_SECONDS = 10.0

_JSON_FIELDS = ("findings", "stages", "rollback", "previous_split", "compensation")
# ``acquired`` is the holder's ``since`` (the column's name in the first journals)
_LOCK_COLUMNS = "env, service, deploy_id, user, host, pid, acquired, ci_url, session"
_LOCK_MARKS = ", ".join("?" for _ in _LOCK_COLUMNS.split(","))


class SQLiteStateStore(StateStore):
    """Deploy records, deploy locks and key/value state in one SQLite file. Thread-safe."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._session = local_session()
        self._closed = False
        #: the locks this store took and has not released: ``close`` releases them
        self._held: set[tuple[str, str, str]] = set()
        ensure_state_dir(self.path.parent)
        with self._errors():
            # autocommit: every transaction is explicit (BEGIN IMMEDIATE), the rest is one
            # statement each
            self._conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
        try:
            with self._errors():
                self._conn.row_factory = sqlite3.Row
                self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
                self._conn.execute("PRAGMA journal_mode = WAL")
                migrate(self._conn)
        except BaseException:
            self._conn.close()
            raise

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def session(self) -> str:
        return self._session

    def is_alive(self, session: str | None, host: str, pid: int) -> bool:
        return session_alive(session, host, pid)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """sqlite3's errors as ours: a file that cannot be used now (locked past the busy
        timeout, unreadable, a full disk) is unavailable; the rest is a state error."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise StateUnavailableError(
                f"the state file {self.path} cannot be used: {exc}",
                hint="check the file's permissions and free disk space; another process "
                "may hold it for a long write",
            ) from exc
        except sqlite3.Error as exc:
            raise StateError(
                f"the state file {self.path} failed: {exc}",
                hint="if it is not a rollsafe journal, move it away",
            ) from exc

    @contextlib.contextmanager
    def _use(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            if self._closed:
                raise StateError(f"the state store {self.path} is closed")
            yield self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: the file's write lock for the whole body."""
        with self._use() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- the journal --
    def save_record(self, record: DeployRecord) -> None:
        row = record.to_row()
        row["forced"] = int(record.forced)
        for key in _JSON_FIELDS:
            row[key] = json.dumps(row[key])
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{name} = excluded.{name}" for name in row if name != "id")
        with self._use() as conn:
            conn.execute(
                f"INSERT INTO deploys ({columns}) VALUES ({marks}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                list(row.values()),
            )

    def get_record(self, deploy_id: str) -> DeployRecord | None:
        with self._use() as conn:
            row = conn.execute("SELECT * FROM deploys WHERE id = ?", (deploy_id,)).fetchone()
        return _record(row) if row is not None else None

    def list_records(
        self, env: str, service: str | None = None, limit: int = 100
    ) -> list[DeployRecord]:
        sql = "SELECT * FROM deploys WHERE env = ?"
        params: list[Any] = [env]
        if service is not None:
            sql += " AND service = ?"
            params.append(service)
        sql += " ORDER BY started DESC LIMIT ?"
        params.append(limit)
        with self._use() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_record(row) for row in rows]

    def environments(self) -> list[str]:
        with self._use() as conn:
            rows = conn.execute(
                "SELECT env FROM deploys UNION SELECT env FROM locks ORDER BY env"
            ).fetchall()
        return [row[0] for row in rows]

    # -- locks --
    def _alive(self, lock: LockInfo) -> bool:
        return self.is_alive(lock.session, lock.host, lock.pid)

    def acquire_lock(self, holder: LockInfo) -> None:
        holder = replace(holder, session=holder.session or self._session, held=True)
        with self._transaction() as conn:
            current = _lock_row(conn, holder.env, holder.service)
            if (
                current is not None
                and current.deploy_id != holder.deploy_id
                and self._alive(current)
            ):
                raise LockHeldError.refused(current)
            conn.execute(
                f"INSERT OR REPLACE INTO locks ({_LOCK_COLUMNS}) VALUES ({_LOCK_MARKS})",
                (
                    holder.env,
                    holder.service,
                    holder.deploy_id,
                    holder.user,
                    holder.host,
                    holder.pid,
                    holder.since,
                    holder.ci_url,
                    holder.session,
                ),
            )
            self._held.add((holder.env, holder.service, holder.deploy_id))

    def release_lock(self, env: str, service: str, deploy_id: str) -> None:
        with self._use() as conn:
            conn.execute(
                "DELETE FROM locks WHERE env = ? AND service = ? AND deploy_id = ?",
                (env, service, deploy_id),
            )
            self._held.discard((env, service, deploy_id))

    def list_locks(self, env: str) -> list[LockInfo]:
        with self._use() as conn:
            rows = conn.execute(
                f"SELECT {_LOCK_COLUMNS} FROM locks WHERE env = ? ORDER BY service", (env,)
            ).fetchall()
        locks = [_lock_info(row) for row in rows]
        return [replace(lock, held=self._alive(lock)) for lock in locks]

    def break_lock(self, env: str, service: str) -> LockInfo | None:
        with self._transaction() as conn:
            current = _lock_row(conn, env, service)
            if current is None:
                return None
            if self._alive(current):
                raise LockHeldError.unbreakable(current)
            conn.execute("DELETE FROM locks WHERE env = ? AND service = ?", (env, service))
        return replace(current, held=False)

    # -- key/value --
    def kv_get(self, namespace: str, key: str) -> tuple[Any, int] | None:
        with self._use() as conn:
            row = conn.execute(
                "SELECT value, version FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        return (json.loads(row[0]), int(row[1])) if row is not None else None

    def kv_put(
        self, namespace: str, key: str, value: Any, *, expect_version: int | None = None
    ) -> int:
        text = json.dumps(value)
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT version FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
            version = int(row[0]) if row is not None else 0
            if expect_version is not None and expect_version != version:
                raise StateConflictError(
                    f"{namespace}/{key} is at version {version}, not {expect_version}"
                )
            conn.execute(
                "INSERT OR REPLACE INTO kv (namespace, key, value, version, updated) "
                "VALUES (?, ?, ?, ?, ?)",
                (namespace, key, text, version + 1, time.time()),
            )
        return version + 1

    def kv_list(self, namespace: str, prefix: str = "") -> dict[str, tuple[Any, int]]:
        with self._use() as conn:
            rows = conn.execute(
                "SELECT key, value, version FROM kv WHERE namespace = ? "
                "AND substr(key, 1, ?) = ? ORDER BY key",
                (namespace, len(prefix), prefix),
            ).fetchall()
        return {row[0]: (json.loads(row[1]), int(row[2])) for row in rows}

    def kv_delete(self, namespace: str, key: str) -> None:
        with self._use() as conn:
            conn.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key))

    def kv_namespaces(self) -> list[str]:
        with self._use() as conn:
            rows = conn.execute("SELECT DISTINCT namespace FROM kv ORDER BY namespace").fetchall()
        return [row[0] for row in rows]

    # -- lifetime --
    def close(self) -> None:
        """Release the locks this store took and close the file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                with self._errors():
                    for env, service, deploy_id in sorted(self._held):
                        self._conn.execute(
                            "DELETE FROM locks WHERE env = ? AND service = ? AND deploy_id = ?",
                            (env, service, deploy_id),
                        )
                    self._held.clear()
            finally:
                self._conn.close()


def _record(row: sqlite3.Row) -> DeployRecord:
    data = dict(row)
    for key in _JSON_FIELDS:
        text = data.get(key)
        data[key] = json.loads(text) if text else None
    return DeployRecord.from_row(data)


def _lock_info(row: sqlite3.Row) -> LockInfo:
    return LockInfo(
        env=row["env"],
        service=row["service"],
        deploy_id=row["deploy_id"],
        user=row["user"],
        host=row["host"],
        pid=int(row["pid"]),
        since=float(row["acquired"]),
        ci_url=row["ci_url"],
        session=row["session"],
    )


def _lock_row(conn: sqlite3.Connection, env: str, service: str) -> LockInfo | None:
    row = conn.execute(
        f"SELECT {_LOCK_COLUMNS} FROM locks WHERE env = ? AND service = ?", (env, service)
    ).fetchone()
    return _lock_info(row) if row is not None else None
