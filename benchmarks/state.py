"""What the state backends cost a deploy: SQLite against PostgreSQL, in the same run.

SQLite is a temp ``journal.sqlite3`` (WAL, synchronous FULL: every commit synced). PostgreSQL
is a throwaway cluster of Debian's server (``tests/_postgres.py``) on loopback TCP with a
password, started with fsync and synchronous commits ON so both backends sync each write.
Three figures per backend:

- journal writes per second: ``save_record`` of records each going through a deploy's
  writes (begin, 10 stages opened and closed, finish: 22 writes);
- the added time per deploy: those 22 writes plus the lock's acquire and release;
- lock acquire and release latency, median and p95.

Run: ``.venv/bin/python benchmarks/state.py`` (as root too: the cluster runs as
``postgres``). Needs ``apt-get install postgresql`` and ``pip install 'rollsafe[postgresql]'``.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests._postgres import PostgresCluster  # noqa: E402

from rollsafe.state.base import StateStore  # noqa: E402
from rollsafe.state.postgresql import PostgresStateStore  # noqa: E402
from rollsafe.state.records import DeployRecord, LockInfo  # noqa: E402
from rollsafe.state.sqlite import SQLiteStateStore  # noqa: E402

DEPLOYS = 40  # records through a whole deploy each, per backend
STAGES = 10
LOCK_RUNS = 300
WARMUP = 5


def _deploy_writes(store: StateStore, deploy_id: str, *, lock: bool) -> int:
    """The writes of one deploy, as DeployJournal makes them; returns how many."""
    now = time.time()
    record = DeployRecord(
        id=deploy_id,
        env="staging",
        service="api",
        user="bench",
        host=socket.gethostname(),
        pid=os.getpid(),
        checks="passed",
        stage="plan",
        started=now,
        image="us-docker.pkg.dev/p/app/api:1.0.0",
        session=store.session,
    )
    holder = LockInfo("staging", "api", deploy_id, "bench", record.host, record.pid, now)
    if lock:
        store.acquire_lock(holder)
    store.save_record(record)  # begin
    writes = 1
    for i in range(STAGES):
        record.stage = f"stage-{i}"
        record.stages = [
            *record.stages,
            {"stage": record.stage, "started": time.time(), "seconds": None},
        ]
        if i == 3:
            record.compensation = {"kind": "traffic", "split": {"api-0001": 100}}
        store.save_record(record)  # stage
        record.stages[-1] = {**record.stages[-1], "seconds": 0.01, "ok": True}
        store.save_record(record)  # stage_done
        writes += 2
    record.outcome, record.exit_code, record.finished = "succeeded", 0, time.time()
    store.save_record(record)  # finish
    writes += 1
    if lock:
        store.release_lock("staging", "api", deploy_id)
    return writes


def _time(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def _measure(name: str, store: StateStore) -> dict[str, float]:
    for i in range(WARMUP):
        _deploy_writes(store, f"{name}-warm-{i}", lock=True)
    writes = 0
    started = time.perf_counter()
    for i in range(DEPLOYS):
        writes += _deploy_writes(store, f"{name}-w-{i}", lock=False)
    writes_per_s = writes / (time.perf_counter() - started)
    per_deploy = [
        _time(lambda i=i: _deploy_writes(store, f"{name}-d-{i}", lock=True)) for i in range(DEPLOYS)
    ]
    acquire: list[float] = []
    release: list[float] = []
    for i in range(LOCK_RUNS):
        holder = LockInfo(
            "staging",
            "lock-bench",
            f"l{i}",
            "bench",
            socket.gethostname(),
            os.getpid(),
            time.time(),
        )
        acquire.append(_time(lambda h=holder: store.acquire_lock(h)))
        release.append(_time(lambda i=i: store.release_lock("staging", "lock-bench", f"l{i}")))
    return {
        "writes_per_s": writes_per_s,
        "deploy_ms": statistics.median(per_deploy) * 1000,
        "deploy_p95_ms": _p95(per_deploy) * 1000,
        "acquire_ms": statistics.median(acquire) * 1000,
        "acquire_p95_ms": _p95(acquire) * 1000,
        "release_ms": statistics.median(release) * 1000,
        "release_p95_ms": _p95(release) * 1000,
    }


def main() -> None:
    results: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="rollsafe-bench-") as tmp,
        SQLiteStateStore(Path(tmp) / ".rollsafe" / "journal.sqlite3") as store,
    ):
        results["sqlite"] = _measure("sqlite", store)
    cluster = PostgresCluster(durable=True)
    try:
        url = cluster.url(cluster.create_database("bench"))
        with PostgresStateStore(url, password=cluster.password) as store:
            results["postgresql"] = _measure("postgresql", store)
    finally:
        cluster.destroy()

    sq, pg = results["sqlite"], results["postgresql"]
    writes = 2 + 2 * STAGES
    print(
        f"state backends: {DEPLOYS} deploys of {writes} journal writes each, {LOCK_RUNS} lock cycles"
    )
    print(
        f"PostgreSQL {cluster.bindir.parent.name} on 127.0.0.1 (scram-sha-256, fsync on); SQLite WAL"
    )
    print()
    print(f"{'':32}{'SQLite':>12}{'PostgreSQL':>14}{'PG / SQLite':>14}")
    rows = [
        ("journal writes per second", "writes_per_s", "{:.0f}"),
        ("added time per deploy, median ms", "deploy_ms", "{:.1f}"),
        ("added time per deploy, p95 ms", "deploy_p95_ms", "{:.1f}"),
        ("lock acquire, median ms", "acquire_ms", "{:.2f}"),
        ("lock acquire, p95 ms", "acquire_p95_ms", "{:.2f}"),
        ("lock release, median ms", "release_ms", "{:.2f}"),
        ("lock release, p95 ms", "release_p95_ms", "{:.2f}"),
    ]
    for label, key, fmt in rows:
        ratio = pg[key] / sq[key] if sq[key] else float("nan")
        print(f"{label:32}{fmt.format(sq[key]):>12}{fmt.format(pg[key]):>14}{ratio:>13.2f}x")


if __name__ == "__main__":
    main()
