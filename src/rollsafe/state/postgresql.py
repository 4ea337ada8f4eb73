"""``PostgresStateStore``: a team's shared state on PostgreSQL (psycopg 3 and a small pool).

Records and key/value state go through a ``psycopg_pool.ConnectionPool`` (1 to 4
connections). Locks and liveness go through one dedicated session connection, kept for the
store's lifetime, because PostgreSQL ties session-level advisory locks to a session:

- the store's liveness token is ``pg:UUID``; its session holds the advisory lock
  ``hashtextextended('rollsafe-session:UUID', 0)``, and ``is_alive`` looks that lock up in
  ``pg_locks`` (visible to every role), from any machine;
- a deploy lock is the advisory lock ``hashtextextended('rollsafe-lock:ENV/SERVICE', 0)``
  plus a row in ``rollsafe.locks`` naming the holder. A process that dies (even by
  SIGKILL) loses its socket, its backend ends, and its locks are free at once: the row it
  leaves reads as not held.

Connection settings are short (``connect_timeout`` and the pool's wait: a few seconds) so
a database that is down is noticed fast; every psycopg error leaves as ours
(``_pg_errors``), naming the URL without its password.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from rollsafe.state._liveness import session_alive
from rollsafe.state._pg_errors import import_driver, pg_errors
from rollsafe.state._pg_schema import SCHEMA, migrate
from rollsafe.state.base import LockHeldError, StateConflictError, StateError, StateStore
from rollsafe.state.records import DeployRecord, LockInfo
from rollsafe.state.spec import redact_url

__all__ = ["PostgresStateStore"]

_T = TypeVar("_T")

_log = logging.getLogger(__name__)
# the library never prints: without a handler of the application's, Python's last-resort
# handler would write the pool's reconnect warnings (and ours) to stderr
_log.addHandler(logging.NullHandler())
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())

SESSION_PREFIX = "pg:"
#: how often a store holding deploy locks looks at its session (to take it back after a
#: server restart)
_KEEPALIVE_SECONDS = 2.0
_JSON_FIELDS = ("findings", "stages", "rollback", "previous_split", "compensation")
_LOCK_COLUMNS = 'env, service, deploy_id, "user", host, pid, since, ci_url, session'
# whether advisory key ``{key}`` (a bigint expression) is held by a live session of this
# database: pg_locks shows a bigint key as its high and low 32 bits, with objsubid 1
_GRANTED = (
    "EXISTS (SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.granted "
    "AND p.objsubid = 1 AND p.database = (SELECT oid FROM pg_database "
    "WHERE datname = current_database()) "
    "AND p.classid::bigint = (({key}) >> 32) & 4294967295 "
    "AND p.objid::bigint = ({key}) & 4294967295)"
)
_SESSION_KEY = "hashtextextended('rollsafe-session:' || {uuid}, 0)"
_LOCK_KEY = "hashtextextended('rollsafe-lock:' || {env} || '/' || {service}, 0)"
_LOCK_KEY_PARAMS = _LOCK_KEY.format(env="%s", service="%s")
_UPSERT_LOCK = (
    f"INSERT INTO {SCHEMA}.locks ({_LOCK_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (env, service) DO UPDATE SET deploy_id = excluded.deploy_id, "
    '"user" = excluded."user", host = excluded.host, pid = excluded.pid, '
    "since = excluded.since, ci_url = excluded.ci_url, session = excluded.session"
)


class PostgresStateStore(StateStore):
    """Deploy records, deploy locks and key/value state in a PostgreSQL database.

    ``url`` is a libpq URL; ``password`` (``ROLLSAFE_STATE_PASSWORD``, see
    ``spec.state_password``) is passed to the driver apart from it, never in a string
    that could be printed. Connects, migrates and takes its session lock now. Thread-safe.
    """

    kind = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        connect_timeout: int = 3,
        pool_timeout: float = 3.0,
        pool_max: int = 4,
    ) -> None:
        psycopg, psycopg_pool = import_driver()
        self._psycopg = psycopg
        self._pool_module = psycopg_pool
        self._pool_settings = {"max_size": max(1, pool_max), "timeout": pool_timeout}
        self._pool_lock = threading.Lock()  # guards replacing the pool
        self._pool_down = False  # a direct connection failed after the pool had none
        self._url = url
        self._location = redact_url(url)
        # every secret that could reach a message: the URL's own password and ours
        self._secrets = tuple(s for s in (password, *_url_passwords(url)) if s)
        self._kwargs: dict[str, Any] = {
            "connect_timeout": max(2, int(connect_timeout)),  # libpq's minimum is 2
            "application_name": "rollsafe",
            # TCP keepalives: an idle session (a long deploy holding its lock) stays open
            # through NAT and firewalls, and a peer that vanished is noticed
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
        if password:
            self._kwargs["password"] = password
        self._uuid = uuid.uuid4().hex
        self._session = SESSION_PREFIX + self._uuid
        self._lock = threading.RLock()  # guards the session connection
        #: (env, service) -> the deploy locks this store's session holds
        self._held: dict[tuple[str, str], LockInfo] = {}
        self._closed = False
        self._conn: Any = None
        self._pool: Any = None
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        try:
            with self._errors():
                self._conn = self._connect_session()
                migrate(self._conn)
                self._pool = self._new_pool()
        except BaseException:
            self._close_connections()
            raise
        self._keeper = threading.Thread(
            target=self._keep_session, name="rollsafe-state-session", daemon=True
        )
        self._keeper.start()

    # -- connections --
    def _connect_session(self) -> Any:
        conn = self._psycopg.connect(self._url, autocommit=True, **self._kwargs)
        try:
            conn.execute(
                f"SELECT pg_advisory_lock({_SESSION_KEY.format(uuid='%s')})", (self._uuid,)
            )
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        with pg_errors(self._location, self._secrets):
            yield

    def _live_session(self) -> Any:
        """The session connection; reopened (the session lock taken again) after the
        server dropped it. The deploy locks it held went with the old session."""
        if self._closed:
            raise StateError(f"the state store {self._location} is closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._conn = self._connect_session()
            self._retake_locks(self._conn)
        return self._conn

    def _retake_locks(self, conn: Any) -> None:
        """After the server dropped the session (a restart), take its deploy locks again:
        the deploys holding them are still running. One another process took meanwhile is
        lost, and said so."""
        for key, holder in sorted(self._held.items()):
            (got,) = conn.execute(
                f"SELECT pg_try_advisory_lock({_LOCK_KEY_PARAMS})", key
            ).fetchone()
            if got:
                conn.execute(_UPSERT_LOCK, _lock_values(holder))
                continue
            del self._held[key]
            _log.warning(
                "the state database %s dropped this session and another process took "
                "the deploy lock of %s/%s before it was taken again",
                self._location,
                *key,
            )

    def _keep_session(self) -> None:
        """While deploy locks are held, look at the session every few seconds and take it
        back (with its locks) as soon as a restarted server answers again: until then the
        running deploy would read as gone to every other machine."""
        while not self._stop.wait(_KEEPALIVE_SECONDS):
            if not self._held:
                continue
            with self._lock:
                if self._closed or not self._held:
                    continue
                try:
                    with self._errors():
                        conn = self._live_session()
                        try:
                            conn.execute("SELECT 1")
                        except self._psycopg.OperationalError:
                            if not conn.broken:
                                raise
                            self._live_session()
                except StateError as exc:
                    _log.debug("the state session is not back yet: %s", exc)

    def _with_session(self, work: Callable[[Any], _T]) -> _T:
        """``work(session connection)`` under the session lock. A session the server
        dropped (a restart) is only noticed when used: then it is reopened and ``work``
        runs once more, on the new session."""
        with self._lock, self._errors():
            conn = self._live_session()
            try:
                return work(conn)
            except self._psycopg.OperationalError:
                if not conn.broken:
                    raise
            return work(self._live_session())

    def _new_pool(self) -> Any:
        pool = self._pool_module.ConnectionPool(
            self._url,
            kwargs=dict(self._kwargs, autocommit=True),
            min_size=1,
            # a connection a restarted server dropped is replaced, not handed out
            check=self._pool_module.ConnectionPool.check_connection,
            name="rollsafe-state",
            open=False,
            **self._pool_settings,
        )
        pool.open(wait=False)
        return pool

    @contextlib.contextmanager
    def _pooled(self) -> Iterator[Any]:
        """A connection of the pool. When the pool has none to give (the server was down,
        and the pool waits longer and longer between its reconnect attempts), one direct
        connection answers at once: the server's own refusal, or, when it is back, the
        work done and a fresh pool for the next calls."""
        if self._closed:
            raise StateError(f"the state store {self._location} is closed")
        with self._errors():
            pool = self._pool
            conn = None
            if not self._pool_down:
                with contextlib.suppress(self._pool_module.PoolTimeout):
                    conn = pool.getconn()
            if conn is not None:
                try:
                    yield conn
                finally:
                    pool.putconn(conn)
                return
            try:
                direct = self._psycopg.connect(self._url, autocommit=True, **self._kwargs)
            except BaseException:
                # down: the next calls try directly at once rather than wait on the pool
                self._pool_down = True
                raise
            try:
                self._renew_pool(pool)
                yield direct
            finally:
                direct.close()

    def _renew_pool(self, stale: Any) -> None:
        """Replace the pool ``stale`` (the server is reachable again)."""
        with self._pool_lock:
            if self._pool is not stale or self._closed:
                return  # another thread renewed it already
            self._pool = self._new_pool()
            self._pool_down = False
        stale.close(timeout=5.0)

    @property
    def location(self) -> str:
        return self._location

    @property
    def session(self) -> str:
        return self._session

    def is_alive(self, session: str | None, host: str, pid: int) -> bool:
        if session is None or not session.startswith(SESSION_PREFIX):
            return session_alive(session, host, pid)
        if session == self._session:
            return not self._closed
        key = _SESSION_KEY.format(uuid="%s")
        with self._pooled() as conn:
            row = conn.execute(
                f"SELECT {_GRANTED.format(key=key)}", (session[len(SESSION_PREFIX) :],) * 2
            ).fetchone()
        return bool(row[0])

    # -- the journal --
    def save_record(self, record: DeployRecord) -> None:
        jsonb = self._psycopg.types.json.Jsonb
        row = record.to_row()
        for key in _JSON_FIELDS:
            row[key] = jsonb(row[key])
        columns = ", ".join(f'"{name}"' for name in row)
        marks = ", ".join("%s" for _ in row)
        updates = ", ".join(f'"{name}" = excluded."{name}"' for name in row if name != "id")
        with self._pooled() as conn:
            conn.execute(
                f"INSERT INTO {SCHEMA}.deploys ({columns}) VALUES ({marks}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                list(row.values()),
            )

    def get_record(self, deploy_id: str) -> DeployRecord | None:
        with self._pooled() as conn, conn.cursor(row_factory=_dict_row()) as cur:
            row = cur.execute(
                f"SELECT * FROM {SCHEMA}.deploys WHERE id = %s", (deploy_id,)
            ).fetchone()
        return DeployRecord.from_row(row) if row is not None else None

    def list_records(
        self, env: str, service: str | None = None, limit: int = 100
    ) -> list[DeployRecord]:
        sql = f"SELECT * FROM {SCHEMA}.deploys WHERE env = %s"
        params: list[Any] = [env]
        if service is not None:
            sql += " AND service = %s"
            params.append(service)
        sql += " ORDER BY started DESC LIMIT %s"
        params.append(limit)
        with self._pooled() as conn, conn.cursor(row_factory=_dict_row()) as cur:
            rows = cur.execute(sql, params).fetchall()
        return [DeployRecord.from_row(row) for row in rows]

    def environments(self) -> list[str]:
        with self._pooled() as conn:
            rows = conn.execute(
                f"SELECT env FROM (SELECT env FROM {SCHEMA}.deploys UNION "
                f'SELECT env FROM {SCHEMA}.locks) envs ORDER BY env COLLATE "C"'
            ).fetchall()
        return [row[0] for row in rows]

    # -- locks --
    def _lock_row(self, conn: Any, env: str, service: str) -> LockInfo | None:
        row = conn.execute(
            f"SELECT {_LOCK_COLUMNS} FROM {SCHEMA}.locks WHERE env = %s AND service = %s",
            (env, service),
        ).fetchone()
        return _lock_info(row) if row is not None else None

    def _held_by_other(self, conn: Any, env: str, service: str, *, breaking: bool) -> LockHeldError:
        """The refusal when another session holds the advisory lock of ``env``/``service``:
        naming the holder its row names, or an unknown session when the row is missing or
        is a dead holder's (a holder between its advisory lock and its row)."""
        current = self._lock_row(conn, env, service)
        if (
            current is not None
            and current.session
            and self.is_alive(current.session, current.host, current.pid)
        ):
            return (
                LockHeldError.unbreakable(current) if breaking else LockHeldError.refused(current)
            )
        unknown = LockInfo(
            env=env,
            service=service,
            deploy_id="(unknown)",
            user="(unknown)",
            host="(unknown)",
            pid=0,
            since=current.since if current is not None else 0.0,
        )
        return LockHeldError(
            f"the lock of {service} in {env} is held by an unknown session of the state "
            f"database {self._location} (it has not written its name)",
            unknown,
            hint="retry in a moment; `rollsafe locks` shows the holder once it has written it",
        )

    def acquire_lock(self, holder: LockInfo) -> None:
        key = (holder.env, holder.service)
        # the advisory lock is this store's session's, so the row names that session
        holder = replace(holder, session=self._session, held=True)

        def work(conn: Any) -> None:
            mine = self._held.get(key)
            if mine is not None and mine.deploy_id != holder.deploy_id:
                current = self._lock_row(conn, *key)
                raise LockHeldError.refused(current or mine)
            if mine is None:
                (got,) = conn.execute(
                    f"SELECT pg_try_advisory_lock({_LOCK_KEY_PARAMS})", key
                ).fetchone()
                if not got:
                    raise self._held_by_other(conn, *key, breaking=False)
            try:
                conn.execute(_UPSERT_LOCK, _lock_values(holder))
            except BaseException:
                if mine is None:
                    self._unlock(conn, *key)
                raise
            self._held[key] = holder

        self._with_session(work)

    def _unlock(self, conn: Any, env: str, service: str) -> None:
        # a dropped session has let go of it already
        with contextlib.suppress(self._psycopg.Error):
            conn.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY_PARAMS})", (env, service))

    def release_lock(self, env: str, service: str, deploy_id: str) -> None:
        key = (env, service)
        with self._lock:
            mine = self._held.get(key)
            if mine is not None and mine.deploy_id == deploy_id:

                def work(conn: Any) -> None:
                    conn.execute(
                        f"DELETE FROM {SCHEMA}.locks "
                        "WHERE env = %s AND service = %s AND deploy_id = %s",
                        (env, service, deploy_id),
                    )
                    if self._held.pop(key, None) is not None:  # not if the session was lost
                        self._unlock(conn, env, service)

                self._with_session(work)
                return
        # not this store's: its row goes only if it names ``deploy_id`` and no live session
        # holds the lock (a row its dead holder left)
        with self._pooled() as conn:
            conn.execute(
                f"DELETE FROM {SCHEMA}.locks WHERE env = %s AND service = %s "
                f"AND deploy_id = %s AND NOT {_GRANTED.format(key=_LOCK_KEY_PARAMS)}",
                (env, service, deploy_id, env, service, env, service),
            )

    def list_locks(self, env: str) -> list[LockInfo]:
        key = _LOCK_KEY.format(env="l.env", service="l.service")
        columns = ", ".join("l." + c.strip() for c in _LOCK_COLUMNS.split(","))
        with self._pooled() as conn:
            rows = conn.execute(
                f"SELECT {columns}, {_GRANTED.format(key=key)} FROM {SCHEMA}.locks l "
                "WHERE l.env = %s ORDER BY l.service",
                (env,),
            ).fetchall()
        return [replace(_lock_info(row[:-1]), held=bool(row[-1])) for row in rows]

    def break_lock(self, env: str, service: str) -> LockInfo | None:
        key = (env, service)

        def work(conn: Any) -> LockInfo | None:
            if key in self._held:
                current = self._lock_row(conn, env, service)
                if current is not None:
                    raise LockHeldError.unbreakable(current)
            (got,) = conn.execute(
                f"SELECT pg_try_advisory_lock({_LOCK_KEY_PARAMS})", key
            ).fetchone()
            if not got:
                raise self._held_by_other(conn, env, service, breaking=True)
            # holding the advisory lock now: nobody takes it while the row goes
            try:
                current = self._lock_row(conn, env, service)
                conn.execute(f"DELETE FROM {SCHEMA}.locks WHERE env = %s AND service = %s", key)
            finally:
                self._unlock(conn, env, service)
            return replace(current, held=False) if current is not None else None

        return self._with_session(work)

    # -- key/value --
    def kv_get(self, namespace: str, key: str) -> tuple[Any, int] | None:
        with self._pooled() as conn:
            row = conn.execute(
                f"SELECT value, version FROM {SCHEMA}.kv WHERE namespace = %s AND key = %s",
                (namespace, key),
            ).fetchone()
        return (row[0], int(row[1])) if row is not None else None

    def kv_put(
        self, namespace: str, key: str, value: Any, *, expect_version: int | None = None
    ) -> int:
        data = self._psycopg.types.json.Jsonb(value)
        table = f"{SCHEMA}.kv"
        with self._pooled() as conn:
            if expect_version is None:
                (version,) = conn.execute(
                    f"INSERT INTO {table} (namespace, key, value, version) "
                    "VALUES (%s, %s, %s, 1) ON CONFLICT (namespace, key) DO UPDATE SET "
                    f"value = excluded.value, version = {table}.version + 1, updated = now() "
                    "RETURNING version",
                    (namespace, key, data),
                ).fetchone()
                return int(version)
            if expect_version == 0:
                # the key must not exist: the primary key decides between racing writers
                row = conn.execute(
                    f"INSERT INTO {table} (namespace, key, value, version) "
                    "VALUES (%s, %s, %s, 1) ON CONFLICT (namespace, key) DO NOTHING "
                    "RETURNING version",
                    (namespace, key, data),
                ).fetchone()
            else:
                # one UPDATE with the version in its WHERE: the row lock decides
                row = conn.execute(
                    f"UPDATE {table} SET value = %s, version = version + 1, updated = now() "
                    "WHERE namespace = %s AND key = %s AND version = %s RETURNING version",
                    (data, namespace, key, expect_version),
                ).fetchone()
            if row is not None:
                return int(row[0])
            found = conn.execute(
                f"SELECT version FROM {table} WHERE namespace = %s AND key = %s",
                (namespace, key),
            ).fetchone()
        version = int(found[0]) if found is not None else 0
        raise StateConflictError(f"{namespace}/{key} is at version {version}, not {expect_version}")

    def kv_list(self, namespace: str, prefix: str = "") -> dict[str, tuple[Any, int]]:
        with self._pooled() as conn:
            rows = conn.execute(
                f"SELECT key, value, version FROM {SCHEMA}.kv WHERE namespace = %s "
                'AND left(key, %s) = %s ORDER BY key COLLATE "C"',
                (namespace, len(prefix), prefix),
            ).fetchall()
        return {row[0]: (row[1], int(row[2])) for row in rows}

    def kv_delete(self, namespace: str, key: str) -> None:
        with self._pooled() as conn:
            conn.execute(
                f"DELETE FROM {SCHEMA}.kv WHERE namespace = %s AND key = %s", (namespace, key)
            )

    def kv_namespaces(self) -> list[str]:
        with self._pooled() as conn:
            rows = conn.execute(
                f'SELECT DISTINCT namespace COLLATE "C" FROM {SCHEMA}.kv ORDER BY 1'
            ).fetchall()
        return [row[0] for row in rows]

    # -- lifetime --
    def close(self) -> None:
        """Delete this store's lock rows, end its session (its advisory locks go with it)
        and close the pool. A database that is gone by now changes nothing: the locks
        ended with the session, and the rows left read as not held."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conn = self._conn
            if self._held and conn is not None and not conn.closed and not conn.broken:
                try:
                    with self._errors():
                        for (env, service), lock in sorted(self._held.items()):
                            conn.execute(
                                f"DELETE FROM {SCHEMA}.locks WHERE env = %s AND service = %s "
                                "AND deploy_id = %s",
                                (env, service, lock.deploy_id),
                            )
                except StateError as exc:
                    _log.debug("lock rows left at close (%s): they read as not held", exc)
            self._held.clear()
            self._stop.set()
            self._close_connections()
        if self._keeper is not None and self._keeper is not threading.current_thread():
            self._keeper.join(timeout=10)

    def _close_connections(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._pool is not None:
            self._pool.close(timeout=5.0)
            self._pool = None


def _url_passwords(url: str) -> list[str]:
    """The password in ``url``, as written and decoded, to scrub from messages."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    try:
        parts = urlsplit(url)
        found = parts.password
    except ValueError:
        return []
    if found is not None:
        return [found, unquote(found)]
    return [v for k, v in parse_qsl(parts.query) if k.lower() == "password"]


def _lock_values(lock: LockInfo) -> tuple[Any, ...]:
    return (
        lock.env,
        lock.service,
        lock.deploy_id,
        lock.user,
        lock.host,
        lock.pid,
        lock.since,
        lock.ci_url,
        lock.session,
    )


def _dict_row() -> Any:
    from psycopg.rows import dict_row

    return dict_row


def _lock_info(row: Any) -> LockInfo:
    env, service, deploy_id, user, host, pid, since, ci_url, session = row
    return LockInfo(
        env=env,
        service=service,
        deploy_id=deploy_id,
        user=user,
        host=host,
        pid=int(pid),
        since=float(since),
        ci_url=ci_url,
        session=session,
    )
