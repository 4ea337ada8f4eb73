"""One contract, three backends: memory, SQLite and a real PostgreSQL (tests/_postgres.py).

Every test runs against each backend (ids ``memory``, ``sqlite``, ``postgresql``); what
only some backends can show (a second store on the same state, a process that holds a
lock) is skipped where it cannot exist.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollsafe.state.base import LockHeldError, StateConflictError, StateStore
from rollsafe.state.memory import MemoryStateStore
from rollsafe.state.records import DeployRecord, LockInfo
from rollsafe.state.sqlite import SQLiteStateStore
from tests.state._contract import Backend, acquire_soon

ENV = "staging"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        found = Backend("memory", "memory", MemoryStateStore)
    elif request.param == "sqlite":
        path = tmp_path / "state" / "journal.sqlite3"
        found = Backend("sqlite", str(path), lambda: SQLiteStateStore(path))
    else:
        from rollsafe.state.postgresql import PostgresStateStore

        url: str = request.getfixturevalue("postgres_url")
        password: str = request.getfixturevalue("postgres_password")
        found = Backend(
            "postgresql",
            url,
            lambda: PostgresStateStore(url, password=password),
            child_env={"PGPASSWORD": password},
        )
    try:
        yield found
    finally:
        found.close_all()


@pytest.fixture
def store(backend: Backend) -> StateStore:
    return backend.open()


def _record(deploy_id: str, started: float, service: str = "api", **extra: object) -> DeployRecord:
    return DeployRecord(
        id=deploy_id,
        env=ENV,
        service=service,
        user="ana",
        host=socket.gethostname(),
        pid=4242,
        checks="passed",
        stage="plan",
        started=started,
        **extra,  # type: ignore[arg-type]
    )


def _holder(deploy_id: str, service: str = "api", **extra: object) -> LockInfo:
    return LockInfo(
        env=ENV,
        service=service,
        deploy_id=deploy_id,
        user="ana",
        host=socket.gethostname(),
        pid=4242,
        since=1_800_000_000.0,
        **extra,  # type: ignore[arg-type]
    )


# -- the journal --


def test_a_record_reads_back_whole(store: StateStore) -> None:
    record = _record(
        "d1",
        1000.5,
        image="img:1",
        git_commit="abc123",
        previous_split={"rev-1": 100},
        forced=True,
        reason="INC-7",
        findings={"errors": 0, "list": [1, "two", None]},
        stages=[{"stage": "plan", "started": 1000.6, "seconds": 0.25, "ok": True}],
        compensation={"kind": "traffic", "split": {"rev-1": 100}},
        ci_url="https://ci.example/runs/7",
        session=store.session,
    )
    store.save_record(record)
    assert store.get_record("d1") == record
    assert store.get_record("missing") is None


def test_save_record_upserts_and_replays(store: StateStore) -> None:
    record = _record("d1", 1000.0)
    store.save_record(record)
    record.stage = "verify"
    record.stages = [{"stage": "verify", "started": 1001.0, "seconds": None}]
    store.save_record(record)
    store.save_record(record)  # a replayed write changes nothing
    record.outcome, record.exit_code, record.finished = "succeeded", 0, 1002.0
    store.save_record(record)
    (found,) = store.list_records(ENV)
    assert found == record
    assert not found.in_progress


def test_records_are_listed_newest_first_by_env_and_service(store: StateStore) -> None:
    for i, service in enumerate(["api", "web", "api", "web", "api"]):
        store.save_record(_record(f"d{i}", 1000.0 + i, service=service))
    other = _record("other-env", 2000.0)
    other.env = "prod"
    store.save_record(other)
    assert [r.id for r in store.list_records(ENV)] == ["d4", "d3", "d2", "d1", "d0"]
    assert [r.id for r in store.list_records(ENV, "api")] == ["d4", "d2", "d0"]
    assert [r.id for r in store.list_records(ENV, "api", limit=2)] == ["d4", "d2"]
    assert store.list_records("nowhere") == []
    assert store.environments() == ["prod", ENV]


# -- locks --


def test_a_lock_is_listed_with_its_holder(store: StateStore) -> None:
    store.acquire_lock(_holder("d1", ci_url="https://ci.example/runs/7"))
    store.acquire_lock(_holder("d1", ci_url="https://ci.example/runs/7"))  # again: its own
    (lock,) = store.list_locks(ENV)
    assert (lock.service, lock.deploy_id, lock.user, lock.held) == ("api", "d1", "ana", True)
    assert lock.ci_url == "https://ci.example/runs/7"
    assert lock.since == 1_800_000_000.0
    assert lock.session == store.session
    assert store.list_locks("prod") == []


def test_a_second_deploy_is_refused_naming_the_holder(store: StateStore) -> None:
    store.acquire_lock(_holder("d1"))
    with pytest.raises(LockHeldError) as refused:
        store.acquire_lock(_holder("d2"))
    assert refused.value.holder.deploy_id == "d1"
    assert "deploy d1 by ana" in str(refused.value)
    assert refused.value.hint
    store.acquire_lock(_holder("d3", service="web"))  # another service is free


def test_release_frees_only_for_its_deploy(store: StateStore) -> None:
    store.acquire_lock(_holder("d1"))
    store.release_lock(ENV, "api", "someone-else")
    assert [lock.deploy_id for lock in store.list_locks(ENV)] == ["d1"]
    store.release_lock(ENV, "api", "d1")
    assert store.list_locks(ENV) == []
    store.release_lock(ENV, "api", "d1")  # twice: nothing to do
    store.acquire_lock(_holder("d2"))
    assert [lock.deploy_id for lock in store.list_locks(ENV)] == ["d2"]


def test_a_live_holder_in_another_process_refuses(backend: Backend, store: StateStore) -> None:
    if not backend.shared:
        pytest.skip("a memory store cannot be shared with another process")
    with backend.holder(ENV, "api", "child-deploy") as (_proc, session):
        with pytest.raises(LockHeldError) as refused:
            store.acquire_lock(_holder("d2"))
        assert refused.value.holder.deploy_id == "child-deploy"
        assert "by child on" in str(refused.value)
        assert store.is_alive(session, socket.gethostname(), _proc.pid)
        (lock,) = store.list_locks(ENV)
        assert lock.held
        with pytest.raises(LockHeldError, match="live holder"):
            store.break_lock(ENV, "api")


def test_a_dead_holders_lock_is_stale_and_taken_over(backend: Backend, store: StateStore) -> None:
    session = backend.dead_holder(store, ENV, "api", "crashed")
    acquire_soon(store, _holder("d2"))
    assert not store.is_alive(session, socket.gethostname(), 1)
    (lock,) = store.list_locks(ENV)
    assert (lock.deploy_id, lock.held) == ("d2", True)


def test_a_stale_lock_is_listed_not_held_and_broken(backend: Backend, store: StateStore) -> None:
    backend.dead_holder(store, ENV, "api", "crashed")
    deadline = time.monotonic() + 20
    while True:  # the killed backend of PostgreSQL ends a moment after the kill
        (lock,) = store.list_locks(ENV)
        if not lock.held or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert (lock.deploy_id, lock.held) == ("crashed", False)
    broken = store.break_lock(ENV, "api")
    assert broken is not None
    assert (broken.deploy_id, broken.held) == ("crashed", False)
    assert store.list_locks(ENV) == []
    assert store.break_lock(ENV, "api") is None


def test_break_refuses_a_lock_held_by_this_store(store: StateStore) -> None:
    store.acquire_lock(_holder("d1"))
    with pytest.raises(LockHeldError) as refused:
        store.break_lock(ENV, "api")
    assert refused.value.holder.deploy_id == "d1"
    assert [lock.deploy_id for lock in store.list_locks(ENV)] == ["d1"]


# -- key/value --


@pytest.mark.parametrize(
    "value",
    [{"a": 1, "b": [1, 2.5, None, "x"]}, [1, "two"], "text", 42, None, True],
    ids=["object", "array", "string", "number", "null", "bool"],
)
def test_kv_values_read_back(store: StateStore, value: object) -> None:
    assert store.kv_put("monitor", "k", value) == 1
    assert store.kv_get("monitor", "k") == (value, 1)


def test_kv_versions_and_compare_and_swap(store: StateStore) -> None:
    assert store.kv_get("monitor", "leader") is None
    assert store.kv_put("monitor", "leader", {"who": "a"}, expect_version=0) == 1
    with pytest.raises(StateConflictError, match="version 1, not 0"):
        store.kv_put("monitor", "leader", {"who": "b"}, expect_version=0)
    assert store.kv_put("monitor", "leader", {"who": "b"}, expect_version=1) == 2
    with pytest.raises(StateConflictError):
        store.kv_put("monitor", "leader", {"who": "c"}, expect_version=1)
    with pytest.raises(StateConflictError, match="version 0, not 3"):
        store.kv_put("monitor", "nobody", 1, expect_version=3)
    assert store.kv_put("monitor", "leader", {"who": "d"}) == 3
    assert store.kv_get("monitor", "leader") == ({"who": "d"}, 3)


def test_kv_list_by_prefix_and_delete(store: StateStore) -> None:
    for key in ["alert/b", "alert/a", "alerts", "probe/x"]:
        store.kv_put("monitor", key, key.upper())
    store.kv_put("other", "alert/z", 1)
    assert store.kv_list("monitor", "alert/") == {
        "alert/a": ("ALERT/A", 1),
        "alert/b": ("ALERT/B", 1),
    }
    assert list(store.kv_list("monitor")) == ["alert/a", "alert/b", "alerts", "probe/x"]
    assert store.kv_list("monitor", "zzz") == {}
    store.kv_delete("monitor", "alert/a")
    store.kv_delete("monitor", "alert/a")  # gone already: nothing to do
    assert store.kv_get("monitor", "alert/a") is None
    assert store.kv_put("monitor", "alert/a", 0) == 1  # a new key starts again at 1
    assert store.kv_namespaces() == ["monitor", "other"]


def test_compare_and_swap_is_atomic_under_concurrency(backend: Backend, store: StateStore) -> None:
    """Threads (each with a store of its own where the backend allows it) increment one
    counter by compare-and-swap: no increment is lost, none is counted twice."""
    store.kv_put("monitor", "counter", 0)
    stores = [backend.open() if backend.shared else store for _ in range(4)]
    wins = [0] * len(stores)

    def work(index: int) -> None:
        mine = stores[index]
        for _ in range(15):
            while True:
                found = mine.kv_get("monitor", "counter")
                assert found is not None
                value, version = found
                try:
                    mine.kv_put("monitor", "counter", value + 1, expect_version=version)
                except StateConflictError:
                    continue
                wins[index] += 1
                break

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(wins) == 60
    assert store.kv_get("monitor", "counter") == (60, 61)


# -- sessions and closing --


def test_this_stores_session_is_alive(store: StateStore) -> None:
    assert store.session
    assert store.is_alive(store.session, socket.gethostname(), 1)


def test_records_without_a_session_fall_back_to_host_and_pid(store: StateStore) -> None:
    import os

    assert store.is_alive(None, socket.gethostname(), os.getpid())
    assert store.is_alive(None, "another-host.example", 1)  # cannot tell: alive


def test_closing_releases_the_locks(backend: Backend) -> None:
    first = backend.open()
    first.acquire_lock(_holder("d1"))
    if not backend.shared:
        other = MemoryStateStore()
        session = first.session
        first.close()
        assert not other.is_alive(session, socket.gethostname(), 1)
        other.close()
        return
    second = backend.open()
    with pytest.raises(LockHeldError):
        second.acquire_lock(_holder("d2"))
    first.close()
    first.close()  # twice: harmless
    acquire_soon(second, _holder("d2"))
    assert [lock.deploy_id for lock in second.list_locks(ENV)] == ["d2"]
