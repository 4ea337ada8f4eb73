"""The SQLite journal's schema, as an ordered list of versioned migrations.

Version 1 is the journal as rollsafe wrote it before the ``StateStore`` (tables ``deploys``
and ``locks``); a file written then has no version table and gets every migration, each
written so it keeps the rows it finds. Migrations only add tables and columns.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

__all__ = ["MIGRATIONS", "SCHEMA_TABLE", "migrate"]

SCHEMA_TABLE = "rollsafe_schema"

_V1 = (
    """CREATE TABLE IF NOT EXISTS deploys (
        id TEXT PRIMARY KEY,
        env TEXT NOT NULL,
        service TEXT NOT NULL,
        user TEXT NOT NULL,
        git_commit TEXT,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        image TEXT,
        revision TEXT,
        previous_revision TEXT,
        previous_split TEXT NOT NULL DEFAULT '{}',
        checks TEXT NOT NULL,
        forced INTEGER NOT NULL DEFAULT 0,
        reason TEXT,
        findings TEXT NOT NULL DEFAULT '{}',
        stage TEXT NOT NULL,
        stages TEXT NOT NULL DEFAULT '[]',
        outcome TEXT,
        exit_code INTEGER,
        message TEXT,
        rollback TEXT,
        started REAL NOT NULL,
        finished REAL
    )""",
    "CREATE INDEX IF NOT EXISTS deploys_by_service ON deploys (env, service, started)",
    """CREATE TABLE IF NOT EXISTS locks (
        env TEXT NOT NULL,
        service TEXT NOT NULL,
        deploy_id TEXT NOT NULL,
        user TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        acquired REAL NOT NULL,
        PRIMARY KEY (env, service)
    )""",
)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _add_columns(conn: sqlite3.Connection, table: str, *columns: tuple[str, str]) -> None:
    # journals of the deploy-guarantees release already have ``compensation``, without a
    # version table: a column that is there is kept as it is
    have = _columns(conn, table)
    for name, kind in columns:
        if name not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def _v1(conn: sqlite3.Connection) -> None:
    for statement in _V1:
        conn.execute(statement)


def _v2(conn: sqlite3.Connection) -> None:
    _add_columns(conn, "deploys", ("compensation", "TEXT"))


def _v3(conn: sqlite3.Connection) -> None:
    _add_columns(conn, "deploys", ("ci_url", "TEXT"), ("session", "TEXT"))
    _add_columns(conn, "locks", ("ci_url", "TEXT"), ("session", "TEXT"))


def _v4(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS kv (
            namespace TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            version INTEGER NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (namespace, key)
        )"""
    )


#: (version, what it does, how); applied in order, each once
MIGRATIONS: tuple[tuple[int, str, Callable[[sqlite3.Connection], None]], ...] = (
    (1, "deploys and locks tables", _v1),
    (2, "deploys.compensation", _v2),
    (3, "ci_url and session on deploys and locks", _v3),
    (4, "kv table", _v4),
)


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations ``conn``'s file lacks, in one ``BEGIN IMMEDIATE`` transaction:
    a second process opening the file at the same time waits, then finds them applied.
    Returns the versions applied (``conn`` must be in autocommit mode)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied REAL NOT NULL)"
        )
        (current,) = conn.execute(
            f"SELECT coalesce(max(version), 0) FROM {SCHEMA_TABLE}"
        ).fetchone()
        applied = []
        for version, name, step in MIGRATIONS:
            if version > current:
                step(conn)
                conn.execute(
                    f"INSERT INTO {SCHEMA_TABLE} (version, name, applied) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
                applied.append(version)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return applied
