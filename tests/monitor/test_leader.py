"""The monitors' leader election: the ``@monitor`` deploy lock of the environment.

On PostgreSQL a standby takes over once the leader's session is gone; on SQLite a second
monitor is refused, naming the first. Real stores: SQLite files and a real PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from rollsafe.monitor.leader import (
    LEADER_SERVICE,
    Leader,
    LeadershipLostError,
    MonitorRunningError,
)
from rollsafe.state.memory import MemoryStateStore
from rollsafe.state.postgresql import PostgresStateStore
from rollsafe.state.sqlite import SQLiteStateStore
from tests._postgres import PostgresCluster

ENV = "staging"

# a process that leads on the database given, says so, and waits to be killed
_LEADER_CHILD = """
import sys, time
from rollsafe.monitor.leader import Leader
from rollsafe.state.postgresql import PostgresStateStore
store = PostgresStateStore(sys.argv[1])
assert Leader(store, "staging").acquire()
print("leading", flush=True)
time.sleep(600)
"""


def test_the_first_monitor_leads_and_releases(tmp_path: Path) -> None:
    with SQLiteStateStore(tmp_path / "journal.sqlite3") as store:
        leader = Leader(store, ENV)
        assert leader.acquire()
        assert leader.is_leader
        locks = {lock.service: lock for lock in store.list_locks(ENV)}
        assert locks[LEADER_SERVICE].deploy_id == leader.me.deploy_id
        leader.release()
        assert not leader.is_leader
        assert LEADER_SERVICE not in {lock.service for lock in store.list_locks(ENV)}


def test_sqlite_refuses_a_second_monitor_naming_the_first(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with SQLiteStateStore(path) as first_store, SQLiteStateStore(path) as second_store:
        first = Leader(first_store, ENV)
        assert first.acquire()
        with pytest.raises(MonitorRunningError) as caught:
            Leader(second_store, ENV).acquire()
        assert first.me.deploy_id in caught.value.message
        assert caught.value.exit_code == 1
        assert caught.value.hint


def test_environments_have_leaders_of_their_own(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with SQLiteStateStore(path) as one, SQLiteStateStore(path) as two:
        assert Leader(one, "staging").acquire()
        assert Leader(two, "production").acquire()


def test_memory_store_always_leads() -> None:
    store = MemoryStateStore()
    assert Leader(store, ENV).acquire()


def test_postgres_standby_takes_over_when_the_leader_dies(
    postgres_url: str, postgres_password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", postgres_password)
    child = subprocess.Popen(
        [sys.executable, "-c", _LEADER_CHILD, postgres_url],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "leading"
        with PostgresStateStore(postgres_url) as store:
            standby = Leader(store, ENV)
            assert not standby.acquire(), "the leader is alive: this one waits"
            assert standby.holder is not None
            assert standby.holder.pid == child.pid
            assert not standby.poll()
            child.kill()  # kill -9: its session, and its advisory lock, go with it
            child.wait(timeout=10)
            deadline = time.monotonic() + 30
            while not standby.poll():
                assert time.monotonic() < deadline, "the standby never took over"
                time.sleep(0.2)
            assert standby.is_leader
            assert standby.holder is None
            standby.release()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


def test_a_leader_whose_session_was_taken_over_stops_instead_of_leading_twice(
    postgres_cluster: PostgresCluster, postgres_url: str, postgres_password: str
) -> None:
    with (
        PostgresStateStore(postgres_url, password=postgres_password) as first_store,
        PostgresStateStore(postgres_url, password=postgres_password) as second_store,
    ):
        first = Leader(first_store, ENV)
        second = Leader(second_store, ENV)
        assert first.acquire()
        first.confirm()  # still its own: nothing happens
        assert not second.poll()
        # the database drops the leader's session (a failover, a killed backend) and the
        # standby takes the lock before the leader's store takes it back
        dbname = postgres_url.rsplit("/", 1)[1]
        with postgres_cluster.superuser() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
                "JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = %s "
                "AND l.pid <> ALL(%s)",
                (dbname, [_session_pid(second_store)]),
            )
        deadline = time.monotonic() + 30
        while not second.poll() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert second.is_leader
        with pytest.raises(LeadershipLostError) as lost:
            first.confirm()
        assert second.me.deploy_id in lost.value.message
        assert not first.is_leader


def _session_pid(store: PostgresStateStore) -> int:
    """The backend pid of ``store``'s session connection (its advisory locks' holder)."""
    conn = store._conn  # the session the advisory locks belong to
    assert conn is not None
    return int(conn.info.backend_pid)
