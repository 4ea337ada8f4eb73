"""The PostgreSQL state's schema: tables in the schema ``rollsafe``, versioned migrations.

A schema of its own rather than prefixed tables: the names stay short, nothing lands in
``public`` beside the team's own tables, and a DBA grants or drops it in one statement.

Migrations run on first use, in one transaction holding a transaction-level advisory lock:
when N processes start at once on a fresh database one applies them and the others wait,
then find them applied. A database already at the current version is not locked at all.
JSON fields are ``jsonb`` (queryable by the monitor and by hand); times are epoch seconds
(``double precision``), as the records hold them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LATEST", "MIGRATIONS", "SCHEMA", "migrate"]

SCHEMA = "rollsafe"
#: the advisory key the migrations serialise on (one bigint, the same for every release)
_MIGRATION_KEY = "hashtextextended('rollsafe-migrations', 0)"

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "deploys and locks",
        (
            f"""CREATE TABLE {SCHEMA}.deploys (
                id text PRIMARY KEY,
                env text NOT NULL,
                service text NOT NULL,
                "user" text NOT NULL,
                host text NOT NULL,
                pid integer NOT NULL,
                git_commit text,
                ci_url text,
                image text,
                revision text,
                previous_revision text,
                previous_split jsonb NOT NULL DEFAULT '{{}}',
                checks text NOT NULL,
                forced boolean NOT NULL DEFAULT false,
                reason text,
                findings jsonb NOT NULL DEFAULT '{{}}',
                stage text NOT NULL,
                stages jsonb NOT NULL DEFAULT '[]',
                outcome text,
                exit_code integer,
                message text,
                rollback jsonb,
                compensation jsonb,
                started double precision NOT NULL,
                finished double precision,
                session text
            )""",
            f"CREATE INDEX deploys_by_service ON {SCHEMA}.deploys (env, service, started DESC)",
            f"CREATE INDEX deploys_by_env ON {SCHEMA}.deploys (env, started DESC)",
            f"""CREATE TABLE {SCHEMA}.locks (
                env text NOT NULL,
                service text NOT NULL,
                deploy_id text NOT NULL,
                "user" text NOT NULL,
                host text NOT NULL,
                pid integer NOT NULL,
                since double precision NOT NULL,
                ci_url text,
                session text NOT NULL,
                PRIMARY KEY (env, service)
            )""",
        ),
    ),
    (
        2,
        "kv",
        (
            f"""CREATE TABLE {SCHEMA}.kv (
                namespace text NOT NULL,
                key text NOT NULL,
                value jsonb NOT NULL,
                version bigint NOT NULL,
                updated timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (namespace, key)
            )""",
        ),
    ),
)
LATEST = MIGRATIONS[-1][0]


def _current(conn: Any) -> int:
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.schema_migrations",)
    ).fetchone()
    if not row[0]:
        return 0
    (version,) = conn.execute(
        f"SELECT coalesce(max(version), 0) FROM {SCHEMA}.schema_migrations"
    ).fetchone()
    return int(version)


def migrate(conn: Any) -> list[int]:
    """Bring the database to ``LATEST``; returns the versions this call applied.

    ``conn`` is an autocommit psycopg connection.
    """
    if _current(conn) >= LATEST:
        return []
    applied: list[int] = []
    with conn.transaction():
        conn.execute(f"SELECT pg_advisory_xact_lock({_MIGRATION_KEY})")
        # CREATE SCHEMA needs the CREATE privilege even when the schema exists: skip it
        # where a DBA made the schema for us
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,)).fetchone()
        if exists is None:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations ("
            "version integer PRIMARY KEY, name text NOT NULL, "
            "applied timestamptz NOT NULL DEFAULT now())"
        )
        current = _current(conn)  # again, under the lock: another process may have won
        for version, name, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {SCHEMA}.schema_migrations (version, name) VALUES (%s, %s)",
                (version, name),
            )
            applied.append(version)
    return applied
