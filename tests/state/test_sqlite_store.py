"""SQLiteStateStore beyond the contract: journals of earlier releases, concurrent opens,
liveness tokens, errors."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rollsafe.state._sqlite_schema import MIGRATIONS, SCHEMA_TABLE, migrate
from rollsafe.state.base import StateError
from rollsafe.state.records import DeployRecord, LockInfo
from rollsafe.state.sqlite import SQLiteStateStore

REPO = Path(__file__).resolve().parents[2]
LATEST = MIGRATIONS[-1][0]

# the journal as the first releases wrote it (journal.py before the StateStore); the
# deploy-guarantees release added ``compensation`` without any version table
_OLD_DEPLOYS = """
CREATE TABLE deploys (
    id TEXT PRIMARY KEY, env TEXT NOT NULL, service TEXT NOT NULL, user TEXT NOT NULL,
    git_commit TEXT, host TEXT NOT NULL, pid INTEGER NOT NULL, image TEXT, revision TEXT,
    previous_revision TEXT, previous_split TEXT NOT NULL DEFAULT '{}', checks TEXT NOT NULL,
    forced INTEGER NOT NULL DEFAULT 0, reason TEXT, findings TEXT NOT NULL DEFAULT '{}',
    stage TEXT NOT NULL, stages TEXT NOT NULL DEFAULT '[]', outcome TEXT, exit_code INTEGER,
    message TEXT, rollback TEXT, {extra} started REAL NOT NULL, finished REAL
);
CREATE INDEX deploys_by_service ON deploys (env, service, started);
CREATE TABLE locks (
    env TEXT NOT NULL, service TEXT NOT NULL, deploy_id TEXT NOT NULL, user TEXT NOT NULL,
    host TEXT NOT NULL, pid INTEGER NOT NULL, acquired REAL NOT NULL,
    PRIMARY KEY (env, service)
);
"""


def _old_journal(path: Path, *, compensation: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(
        _OLD_DEPLOYS.replace("{extra}", "compensation TEXT," if compensation else "")
    )
    columns = (
        "id, env, service, user, git_commit, host, pid, image, previous_split, checks, forced, "
        "findings, stage, stages, outcome, exit_code, message, started, finished"
    )
    for i in range(3):
        conn.execute(
            f"INSERT INTO deploys ({columns}) VALUES "
            "(?, 'staging', 'api', 'ana', 'abc', 'old-host', 77, 'img:1', ?, 'passed', 1, "
            "'{\"n\": 1}', 'done', ?, 'succeeded', 0, 'ok', ?, ?)",
            (
                f"old-{i}",
                json.dumps({"rev-0": 100}),
                json.dumps([{"stage": "verify", "started": 10.0 + i, "seconds": 1.5, "ok": True}]),
                1000.0 + i,
                1001.0 + i,
            ),
        )
    conn.execute(
        "INSERT INTO locks VALUES ('staging', 'web', 'old-lock', 'bo', 'old-host', 78, 999.0)"
    )
    if compensation:
        conn.execute("UPDATE deploys SET compensation = ? WHERE id = 'old-2'", ('{"kind": "tag"}',))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("compensation", [False, True], ids=["first-release", "with-compensation"])
def test_an_old_journal_is_migrated_with_its_rows(tmp_path: Path, compensation: bool) -> None:
    path = tmp_path / ".rollsafe" / "journal.sqlite3"
    _old_journal(path, compensation=compensation)
    with SQLiteStateStore(path) as store:
        records = store.list_records("staging")
        assert [r.id for r in records] == ["old-2", "old-1", "old-0"]
        newest = records[0]
        assert (newest.user, newest.host, newest.pid, newest.image) == (
            "ana",
            "old-host",
            77,
            "img:1",
        )
        assert newest.forced is True
        assert newest.previous_split == {"rev-0": 100}
        assert newest.findings == {"n": 1}
        assert newest.stages[0]["seconds"] == 1.5
        assert newest.compensation == ({"kind": "tag"} if compensation else None)
        assert (newest.ci_url, newest.session) == (None, None)
        (lock,) = store.list_locks("staging")
        assert (lock.deploy_id, lock.user, lock.since, lock.session) == (
            "old-lock",
            "bo",
            999.0,
            None,
        )
        # another host: it cannot be seen, so it counts as held
        assert lock.held
        # the new columns and the kv table work on the migrated file
        newest.ci_url, newest.session = "https://ci.example/1", store.session
        store.save_record(newest)
        assert store.get_record("old-2") == newest
        assert store.kv_put("monitor", "k", [1]) == 1
    conn = sqlite3.connect(path)
    try:
        versions = [row[0] for row in conn.execute(f"SELECT version FROM {SCHEMA_TABLE}")]
    finally:
        conn.close()
    assert versions == [v for v, _, _ in MIGRATIONS]


def test_reopening_applies_nothing_again(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    SQLiteStateStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(conn) == []
    finally:
        conn.close()


_OPEN = """
import sys
from pathlib import Path
from rollsafe.state.sqlite import SQLiteStateStore
store = SQLiteStateStore(Path(sys.argv[1]))
store.kv_put("opens", sys.argv[2], 1)
store.close()
"""


def test_concurrent_opens_of_a_fresh_file_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "state" / "journal.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    procs = [
        subprocess.Popen([sys.executable, "-c", _OPEN, str(path), f"p{i}"], env=env)
        for i in range(6)
    ]
    assert [proc.wait(timeout=120) for proc in procs] == [0] * 6
    with SQLiteStateStore(path) as store:
        assert sorted(store.kv_list("opens")) == [f"p{i}" for i in range(6)]
    conn = sqlite3.connect(path)
    try:
        versions = [row[0] for row in conn.execute(f"SELECT version FROM {SCHEMA_TABLE}")]
    finally:
        conn.close()
    assert versions == list(range(1, LATEST + 1))


def test_a_reused_pid_is_not_the_holder(tmp_path: Path) -> None:
    host = socket.gethostname()
    with SQLiteStateStore(tmp_path / "journal.sqlite3") as store:
        me = store.session
        assert me.startswith(f"pid:{host}:{os.getpid()}:")
        assert store.is_alive(me, host, 1)
        # this very pid, but a process started at another time: not the writer
        assert not store.is_alive(f"pid:{host}:{os.getpid()}:1", host, os.getpid())
        assert store.is_alive(f"pid:elsewhere:{os.getpid()}:1", "elsewhere", 1)
        # no start time known (no /proc where it was written): the pid decides
        assert store.is_alive(f"pid:{host}:{os.getpid()}:", host, 1)


def test_a_taken_over_lock_names_its_new_holder(tmp_path: Path) -> None:
    with SQLiteStateStore(tmp_path / "journal.sqlite3") as store:
        dead = f"pid:{socket.gethostname()}:{os.getpid()}:1"  # a reused pid
        store.acquire_lock(
            LockInfo(
                "staging", "api", "old", "bo", socket.gethostname(), os.getpid(), 1.0, session=dead
            )
        )
        (stale,) = store.list_locks("staging")
        assert not stale.held
        store.acquire_lock(
            LockInfo("staging", "api", "new", "ana", socket.gethostname(), os.getpid(), 2.0)
        )
        (lock,) = store.list_locks("staging")
        assert (lock.deploy_id, lock.session, lock.held) == ("new", store.session, True)


def test_writes_from_many_threads(tmp_path: Path) -> None:
    with SQLiteStateStore(tmp_path / "journal.sqlite3") as store:

        def write(n: int) -> None:
            for i in range(20):
                store.save_record(
                    DeployRecord(
                        f"t{n}-{i}", "staging", "api", "ana", "h", 1, "passed", "plan", float(i)
                    )
                )
                store.kv_put("threads", f"{n}", i)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(store.list_records("staging", limit=1000)) == 80
        assert store.kv_list("threads") == {str(n): (19, 20) for n in range(4)}


def test_a_file_that_is_not_a_journal_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"not a database, just text" * 100)
    with pytest.raises(StateError) as failed:
        SQLiteStateStore(path)
    assert str(path) in str(failed.value)
    assert failed.value.hint


def test_a_closed_store_refuses_use(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "journal.sqlite3")
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.list_records("staging")


def test_the_state_dir_gets_its_gitignore(tmp_path: Path) -> None:
    with SQLiteStateStore(tmp_path / "new" / "journal.sqlite3"):
        pass
    assert (tmp_path / "new" / ".gitignore").read_text() == "*\n"
