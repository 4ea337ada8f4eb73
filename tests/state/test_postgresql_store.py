"""PostgresStateStore beyond the contract, on a real throwaway cluster (tests/_postgres.py):
concurrent migrations, a SIGKILLed holder, a server that stops, the password kept out of
every message and log line."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rollsafe.state._pg_schema import LATEST, MIGRATIONS, SCHEMA
from rollsafe.state.base import LockHeldError, StateError, StateUnavailableError
from rollsafe.state.postgresql import PostgresStateStore
from rollsafe.state.records import DeployRecord, LockInfo
from rollsafe.state.spec import open_state_store, parse_state_spec
from tests._postgres import PostgresCluster
from tests.state._contract import REPO, Backend, acquire_soon

ENV = "staging"


def _holder(deploy_id: str) -> LockInfo:
    return LockInfo(ENV, "api", deploy_id, "ana", socket.gethostname(), os.getpid(), time.time())


def _record(deploy_id: str) -> DeployRecord:
    return DeployRecord(deploy_id, ENV, "api", "ana", "h", 1, "passed", "plan", time.time())


def _dbname(url: str) -> str:
    return url.rsplit("/", 1)[1]


_OPEN_AT_ONCE = """
import os, sys, time
from pathlib import Path
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
from rollsafe.state.postgresql import PostgresStateStore
store = PostgresStateStore(sys.argv[1])
store.kv_put("opens", sys.argv[3], os.getpid())
store.close()
"""


def test_migrations_run_once_when_processes_start_at_once(
    postgres_cluster: PostgresCluster, postgres_url: str, postgres_password: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PGPASSWORD": postgres_password}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT_ONCE, postgres_url, str(go), f"p{i}"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    time.sleep(0.5)  # let them all reach the start line (not a timing assertion)
    go.touch()
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 6, errors
    with postgres_cluster.superuser(_dbname(postgres_url)) as conn:
        versions = [
            row[0]
            for row in conn.execute(f"SELECT version FROM {SCHEMA}.schema_migrations ORDER BY 1")
        ]
        opens = conn.execute(
            f"SELECT count(*) FROM {SCHEMA}.kv WHERE namespace = 'opens'"
        ).fetchone()
    assert versions == [v for v, _, _ in MIGRATIONS] == list(range(1, LATEST + 1))
    assert opens == (6,)


def test_tables_live_in_their_own_schema_with_jsonb(
    postgres_cluster: PostgresCluster, postgres_url: str, postgres_password: str
) -> None:
    with PostgresStateStore(postgres_url, password=postgres_password):
        pass
    with postgres_cluster.superuser(_dbname(postgres_url)) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (SCHEMA,),
            )
        }
        public = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        kinds = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'deploys'",
                (SCHEMA,),
            ).fetchall()
        )
    assert tables == {"deploys", "locks", "kv", "schema_migrations"}
    assert public == (0,)
    assert kinds["stages"] == kinds["compensation"] == "jsonb"


def test_a_sigkilled_holder_frees_the_lock_at_once(
    postgres_url: str, postgres_password: str
) -> None:
    backend = Backend(
        "postgresql",
        postgres_url,
        lambda: PostgresStateStore(postgres_url, password=postgres_password),
        child_env={"PGPASSWORD": postgres_password},
    )
    store = backend.open()
    try:
        with backend.holder(ENV, "api", "killed-deploy") as (proc, session):
            with pytest.raises(LockHeldError) as refused:
                store.acquire_lock(_holder("mine"))
            assert refused.value.holder.deploy_id == "killed-deploy"
            assert refused.value.holder.session == session
            assert store.is_alive(session, "any-host", 1)
            proc.kill()  # SIGKILL: no close, no release
            proc.wait()
        # its backend ends with its socket: no timeout, no unlock needed
        acquire_soon(store, _holder("mine"))
        assert not store.is_alive(session, "any-host", 1)
        (lock,) = store.list_locks(ENV)
        assert (lock.deploy_id, lock.held, lock.session) == ("mine", True, store.session)
    finally:
        backend.close_all()


def _no_password(password: str, *texts: object) -> None:
    for text in texts:
        assert password not in str(text), f"the password leaked into: {str(text)[:200]}"


def test_a_stopped_server_is_unavailable_and_nothing_shows_the_password(
    postgres_cluster: PostgresCluster,
    postgres_url: str,
    postgres_password: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # a URL with the password in it (allowed outside the manifest), and one without
    with_password = postgres_url.replace("rollsafe@", f"rollsafe:{postgres_password}@")
    inline = PostgresStateStore(with_password)
    apart = PostgresStateStore(postgres_url, password=postgres_password)
    try:
        inline.acquire_lock(_holder("d1"))
        redacted = postgres_url.replace("rollsafe@", "rollsafe:***@")
        assert inline.location == redacted
        postgres_cluster.stop()
        failures: list[BaseException] = []
        for store in (inline, apart):
            for call in (
                lambda s=store: s.save_record(_record("d2")),
                lambda s=store: s.list_records(ENV),
                lambda s=store: s.kv_put("n", "k", 1),
                lambda s=store: s.acquire_lock(_holder("d3")),
                lambda s=store: s.list_locks(ENV),
            ):
                with pytest.raises(StateUnavailableError) as down:
                    call()
                failures.append(down.value)
                assert store.location in str(down.value)
        with pytest.raises(StateUnavailableError) as opening:
            PostgresStateStore(postgres_url, password=postgres_password)
        failures.append(opening.value)
        for failure in failures:
            _no_password(postgres_password, failure, repr(failure), failure.hint)
            assert isinstance(failure, StateUnavailableError)
        _no_password(postgres_password, repr(inline), inline.location, repr(apart))
        postgres_cluster.start()
        # back: the stores reconnect (the pool, and the session with its lock)
        apart.save_record(_record("d4"))
        assert [r.id for r in inline.list_records(ENV)] == ["d4"]
        inline.release_lock(ENV, "api", "d1")  # its lock went with the old session
        acquire_soon(apart, _holder("d5"))
    finally:
        inline.close()
        apart.close()
    assert "rollsafe" in caplog.text  # the store and the pool did log: none of it leaks
    _no_password(postgres_password, caplog.text)


def test_a_wrong_password_is_an_error_not_an_outage(
    postgres_url: str, postgres_password: str
) -> None:
    wrong = postgres_password[::-1]
    with pytest.raises(StateError) as refused:
        PostgresStateStore(postgres_url, password=wrong)
    assert not isinstance(refused.value, StateUnavailableError)
    assert "password authentication failed" in str(refused.value)
    _no_password(wrong, refused.value, refused.value.hint)


@pytest.mark.parametrize("variable", ["ROLLSAFE_STATE_PASSWORD", "PGPASSWORD"])
def test_the_password_comes_from_the_environment(
    postgres_url: str,
    postgres_password: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.delenv("ROLLSAFE_STATE_PASSWORD", raising=False)
    monkeypatch.setenv(variable, postgres_password)
    spec = parse_state_spec(postgres_url, base_dir=tmp_path, state_dir=tmp_path, source="--state")
    with open_state_store(spec) as store:
        assert store.kind == "postgresql"
        store.save_record(_record("d1"))
        assert store.get_record("d1") is not None


def test_a_session_dropped_by_a_restart_is_taken_again_with_its_locks(
    postgres_cluster: PostgresCluster, postgres_url: str, postgres_password: str
) -> None:
    with (
        PostgresStateStore(postgres_url, password=postgres_password) as store,
        PostgresStateStore(postgres_url, password=postgres_password) as other,
    ):
        store.acquire_lock(_holder("d1"))
        postgres_cluster.stop()
        postgres_cluster.start()
        # the holder's deploy is still running: its store takes its session and its lock
        # back on its own, without being used, so no other machine reconciles that deploy
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                locks = other.list_locks(ENV)
                if locks and locks[0].held and other.is_alive(store.session, "any", 1):
                    break
            except StateError:
                pass  # the other store's own connections come back too
            time.sleep(0.2)
        (lock,) = other.list_locks(ENV)
        assert (lock.deploy_id, lock.held) == ("d1", True)
        with pytest.raises(LockHeldError):
            other.acquire_lock(_holder("d3"))
        store.release_lock(ENV, "api", "d1")
        other.acquire_lock(_holder("d3"))


def test_without_the_driver_the_hint_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StateError) as missing:
        PostgresStateStore("postgresql://rollsafe@127.0.0.1:1/db")
    assert missing.value.hint == "pip install 'rollsafe[postgresql]'"


def test_a_holder_that_wrote_no_row_is_an_unknown_session(
    postgres_cluster: PostgresCluster, postgres_url: str, postgres_password: str
) -> None:
    with (
        postgres_cluster.superuser(_dbname(postgres_url)) as other,
        PostgresStateStore(postgres_url, password=postgres_password) as store,
    ):
        # another session holds the advisory lock, between taking it and writing its row
        other.execute("SELECT pg_advisory_lock(hashtextextended('rollsafe-lock:staging/api', 0))")
        with pytest.raises(LockHeldError, match="unknown session") as refused:
            store.acquire_lock(_holder("d1"))
        assert refused.value.holder.deploy_id == "(unknown)"
        with pytest.raises(LockHeldError, match="unknown session"):
            store.break_lock(ENV, "api")
        other.execute("SELECT pg_advisory_unlock_all()")
        store.acquire_lock(_holder("d1"))
