"""A throwaway PostgreSQL cluster from Debian's ``postgresql`` package, for tests and benchmarks.

``initdb`` and ``pg_ctl`` on a fresh directory under ``/tmp``; the server listens on
127.0.0.1 (a free port, scram-sha-256 passwords) and on a Unix socket in that directory
(trust, for the superuser only the tests use). ``initdb`` refuses to run as root, so as
root every server command runs as the package's ``postgres`` user through ``runuser``, and
the directory is handed to it.

The role ``rollsafe`` gets a random password per cluster, a canary the tests search every
output for. The durability settings are off: nothing here must survive a crash.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["ROLE", "PostgresCluster", "PostgresMissing", "find_bindir"]

#: the role the code under test connects as; it owns every test database
ROLE = "rollsafe"
#: the superuser initdb creates; reached over the Unix socket only
SUPERUSER = "postgres"
_RUN_AS = "postgres"  # the Debian package's system user, when we are root

_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
    "log_connections": "off",
}


class PostgresMissing(RuntimeError):
    """Debian's PostgreSQL server binaries are not installed."""


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/VERSION/bin`` holding ``initdb`` and ``pg_ctl``."""
    found: list[tuple[tuple[int, ...], Path]] = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        if not ((bindir / "initdb").exists() and (bindir / "pg_ctl").exists()):
            continue
        version = tuple(int(p) for p in re.findall(r"\d+", bindir.parent.name))
        found.append((version, bindir))
    return max(found)[1] if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One running cluster. ``start()``/``stop()`` may be called again (a test stops the
    server in the middle of a deploy); ``destroy()`` stops it for good and removes it."""

    host = "127.0.0.1"
    role = ROLE

    def __init__(self, bindir: Path | None = None, *, durable: bool = False) -> None:
        """``durable``: keep fsync and synchronous commits on (the benchmark compares
        against SQLite, which syncs every commit)."""
        found = bindir or find_bindir()
        if found is None:
            raise PostgresMissing(
                "PostgreSQL's server binaries are not installed (no "
                "/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql"
            )
        self.bindir = found
        self.password = "PgCanary" + secrets.token_hex(16)
        self.port = _free_port()
        # not under pytest's tmp dirs: those are 0700 and root's, and the server runs as
        # the postgres user, which must reach its data directory and socket
        self.root = Path(tempfile.mkdtemp(prefix="rollsafe-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.socket_dir = self.root  # the Unix socket .s.PGSQL.PORT lives here
        self.logfile = self.root / "server.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            entry = pwd.getpwnam(_RUN_AS)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._as_user = ["runuser", "-u", _RUN_AS, "--"]
        os.chmod(self.root, 0o700)
        self.running = False
        self._durable = durable
        try:
            self._initdb()
            self._first_start()
            self._create_role()
        except BaseException:
            self.destroy()
            raise

    # -- server commands --
    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [*self._as_user, *args],
            cwd=self.root,  # the postgres user cannot read root's cwd
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if out.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-3000:] if self.logfile.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}\n{log}")
        return out

    def _initdb(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        )
        settings = dict(_SETTINGS, unix_socket_directories=f"'{self.socket_dir}'")
        if self._durable:
            settings |= {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")
        # the superuser only over the socket; every TCP connection needs a password
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n", encoding="utf-8"
        )

    def start(self) -> None:
        """Start the server (again) on the same port and wait until it accepts connections."""
        if self.running:
            return
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.logfile),
            "-o",
            f"-p {self.port}",
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True

    def _first_start(self, tries: int = 3) -> None:
        # under pytest-xdist several workers start clusters at once: another process may
        # take the free port between _free_port() and the server's bind; take another then
        for attempt in range(tries):
            try:
                self.start()
                return
            except RuntimeError:
                log = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
                if attempt == tries - 1 or "Address already in use" not in log:
                    raise
                self.logfile.unlink()
                self.port = _free_port()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends every session (clients see an admin shutdown),
        ``immediate`` kills them."""
        if not self.running:
            return
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    def destroy(self) -> None:
        """Stop the server and remove its directory."""
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- connections --
    def superuser_connect(self, dbname: str = "postgres", **kwargs: Any) -> Any:
        """A psycopg connection as the superuser over the Unix socket (autocommit)."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname=dbname,
            autocommit=True,
            connect_timeout=10,
            **kwargs,
        )

    @contextlib.contextmanager
    def superuser(self, dbname: str = "postgres") -> Iterator[Any]:
        """``with cluster.superuser() as conn:``, closed after."""
        conn = self.superuser_connect(dbname)
        try:
            yield conn
        finally:
            conn.close()

    def _create_role(self) -> None:
        from psycopg import sql

        with self.superuser() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(self.password)
                )
            )

    def create_database(self, name: str | None = None) -> str:
        """A new database owned by ``rollsafe``; returns its name."""
        from psycopg import sql

        name = name or f"t_{secrets.token_hex(6)}"
        with self.superuser() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(ROLE)
                )
            )
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending its sessions first."""
        from psycopg import sql

        with self.superuser() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def url(self, dbname: str) -> str:
        """``postgresql://rollsafe@127.0.0.1:PORT/DBNAME``: no password in it."""
        return f"postgresql://{ROLE}@{self.host}:{self.port}/{dbname}"

    def wait_until_gone(self, dbname: str, pid: int, timeout: float = 30) -> bool:
        """Whether backend ``pid`` of ``dbname`` ended within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self.superuser() as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND pid = %s",
                    (dbname, pid),
                ).fetchone()
                if row is None:
                    return True
                time.sleep(0.05)
        return False
