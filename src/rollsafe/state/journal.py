"""The deploy journal: one record per deploy attempt, written before each stage.

SQLite in the state directory. A crash at any point leaves a record whose ``outcome`` is
empty and whose ``pid`` is gone; the next command on that service reconciles it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollsafe.errors import RollsafeError
from rollsafe.state.paths import ensure_state_dir

__all__ = ["DeployJournal", "DeployLockedError", "DeployRecord", "who_am_i"]

JOURNAL_FILE = "journal.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deploys (
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
    compensation TEXT,
    started REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS deploys_by_service ON deploys (env, service, started);
CREATE TABLE IF NOT EXISTS locks (
    env TEXT NOT NULL,
    service TEXT NOT NULL,
    deploy_id TEXT NOT NULL,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired REAL NOT NULL,
    PRIMARY KEY (env, service)
);
"""


class DeployLockedError(RollsafeError):
    """Another deploy of the same service and environment is running."""

    exit_code = 1


def _git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def who_am_i(cwd: Path | None = None) -> tuple[str, str | None]:
    """(OS user, git commit of ``cwd`` if it is a checkout)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid-{os.getuid()}"
    return user, _git_commit(cwd or Path.cwd())


def _pid_alive(pid: int, host: str) -> bool:
    if host != socket.gethostname():
        return True  # cannot tell for another machine: assume it is alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class DeployRecord:
    """One deploy attempt, as the journal holds it."""

    id: str
    env: str
    service: str
    user: str
    host: str
    pid: int
    checks: str
    stage: str
    started: float
    git_commit: str | None = None
    image: str | None = None
    revision: str | None = None
    previous_revision: str | None = None
    previous_split: dict[str, int] = field(default_factory=dict)
    forced: bool = False
    reason: str | None = None
    findings: dict[str, Any] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)
    outcome: str | None = None
    exit_code: int | None = None
    message: str | None = None
    rollback: dict[str, Any] | None = None
    finished: float | None = None
    #: what undoes this attempt's changes (``deploy.stages.Compensation.to_dict``), written
    #: before the stage that makes them; None while nothing was changed
    compensation: dict[str, Any] | None = None

    @property
    def in_progress(self) -> bool:
        return self.outcome is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``history --format json``."""
        return {
            "id": self.id,
            "env": self.env,
            "service": self.service,
            "user": self.user,
            "git_commit": self.git_commit,
            "image": self.image,
            "revision": self.revision,
            "previous_revision": self.previous_revision,
            "previous_split": self.previous_split,
            "checks": self.checks,
            # --force was given (past failing checks, skipped checks or an unhealthy service)
            "forced": self.forced or self.checks == "forced",
            "reason": self.reason,
            "findings": self.findings,
            "stage": self.stage,
            "stages": self.stages,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "message": self.message,
            "rollback": self.rollback,
            "compensation": self.compensation,
            "started": self.started,
            "finished": self.finished,
        }


_JSON_FIELDS = {"findings", "stages", "rollback", "previous_split", "compensation"}

#: columns added after the first release: (name, SQL type); older journals gain them on open
_MIGRATIONS = (("compensation", "TEXT"),)


class DeployJournal:
    """Deploy records and per-service locks in ``journal.sqlite3``."""

    def __init__(self, state_dir: Path) -> None:
        ensure_state_dir(state_dir)  # with its .gitignore
        self.path = state_dir / JOURNAL_FILE
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Add the columns a journal written by an older rollsafe lacks (its rows keep
        every field they had; the new ones read as empty)."""
        have = {row["name"] for row in self._conn.execute("PRAGMA table_info(deploys)")}
        for name, kind in _MIGRATIONS:
            if name not in have:
                self._conn.execute(f"ALTER TABLE deploys ADD COLUMN {name} {kind}")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> DeployJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        )
        self._insert(record)
        return record

    def _insert(self, record: DeployRecord) -> None:
        data = record.to_dict()
        data["forced"] = int(record.forced)
        data |= {"host": record.host, "pid": record.pid}
        for key in _JSON_FIELDS:
            data[key] = json.dumps(data[key])
        columns = ", ".join(data)
        marks = ", ".join("?" for _ in data)
        with self._lock:
            self._conn.execute(
                f"INSERT INTO deploys ({columns}) VALUES ({marks})", list(data.values())
            )

    def update(self, record: DeployRecord, **changes: Any) -> DeployRecord:
        """Change fields of ``record`` and write them at once (before the stage runs)."""
        for key, value in changes.items():
            setattr(record, key, value)
        sets = ", ".join(f"{key} = ?" for key in changes)
        values = [json.dumps(v) if k in _JSON_FIELDS else v for k, v in changes.items()]
        with self._lock:
            self._conn.execute(f"UPDATE deploys SET {sets} WHERE id = ?", [*values, record.id])
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
        return self.update(
            record,
            outcome=outcome,
            exit_code=exit_code,
            message=message,
            rollback=rollback,
            finished=time.time(),
        )

    def _record(self, row: sqlite3.Row) -> DeployRecord:
        data = dict(row)
        for key in _JSON_FIELDS:
            data[key] = json.loads(data[key]) if data[key] else None
        data["findings"] = data["findings"] or {}
        data["stages"] = data["stages"] or []
        data["previous_split"] = data["previous_split"] or {}
        data["forced"] = bool(data["forced"])
        return DeployRecord(**data)

    def history(self, env: str, service: str | None = None, limit: int = 100) -> list[DeployRecord]:
        """Newest first."""
        sql = "SELECT * FROM deploys WHERE env = ?"
        params: list[Any] = [env]
        if service:
            sql += " AND service = ?"
            params.append(service)
        sql += " ORDER BY started DESC LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [self._record(row) for row in rows]

    def get(self, deploy_id: str) -> DeployRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM deploys WHERE id = ?", (deploy_id,)).fetchone()
        return self._record(row) if row else None

    def interrupted(self, env: str, service: str) -> list[DeployRecord]:
        """Attempts with no outcome whose process is gone: they need reconciling."""
        return [
            r for r in self.history(env, service) if r.in_progress and not _pid_alive(r.pid, r.host)
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
        """Hold the deploy lock of ``env``/``service``; a stale lock (dead pid) is taken over.

        An attempt refused because another holds it is closed at once as ``refused``: left
        open, it would look like a running deploy for as long as its process lives.
        """
        try:
            self.acquire(env, service, record)
        except DeployLockedError as exc:
            self.finish(record, "refused", exc.exit_code, exc.message)
            raise
        try:
            yield
        finally:
            self.release(env, service, record.id)

    def acquire(self, env: str, service: str, record: DeployRecord) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    "SELECT * FROM locks WHERE env = ? AND service = ?", (env, service)
                ).fetchone()
                if row is not None and _pid_alive(row["pid"], row["host"]):
                    held = time.strftime("%H:%M:%S", time.localtime(row["acquired"]))
                    raise DeployLockedError(
                        f"another deploy of {service} to {env} is running: deploy "
                        f"{row['deploy_id']} by {row['user']} on {row['host']} "
                        f"(pid {row['pid']}, since {held})",
                        hint="wait for it to finish; if that process is gone, the next "
                        "command takes the lock over",
                    )
                self._conn.execute(
                    "INSERT OR REPLACE INTO locks VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (env, service, record.id, record.user, record.host, record.pid, time.time()),
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def release(self, env: str, service: str, deploy_id: str) -> None:
        with self._lock:
            self._conn.execute(
                "DELETE FROM locks WHERE env = ? AND service = ? AND deploy_id = ?",
                (env, service, deploy_id),
            )
