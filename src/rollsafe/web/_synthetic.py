"""Fill a state store with a synthetic environment for the status page's tests, benchmark
and screenshots: rollups, heartbeat, service snapshots, alert states and deploy records,
written as the monitor and the deploys would write them, fast.

``fill_synthetic(store, "staging", 1000, 90, now)`` writes 1,000 services x 90 days in a
few seconds on SQLite (one transaction, not one per key). The data is deterministic for a
``seed``: each service probed every ``interval`` seconds, a few failures here and there,
latency between 20 and 400 ms. Services listed in ``down`` have a firing ``ServiceDown``
(and failing probes in the last hour), in ``degraded`` a firing ``High5xxRate``.
``raw_hours`` also writes that many hours of one-minute probe buckets per service (the
24 h chart and a naive recompute read them; 0: none). Not part of the CLI.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from rollsafe.monitor.alerts import namespace as alerts_namespace
from rollsafe.monitor.history import history_namespace
from rollsafe.monitor.rollups import (
    DAY,
    HOUR,
    RECENT_KEEP,
    daily_namespace,
    hourly_namespace,
    rollups_namespace,
)
from rollsafe.monitor.samples import probes_namespace
from rollsafe.monitor.snapshots import HEARTBEAT_KEY, heartbeat_namespace, services_namespace
from rollsafe.state.base import StateStore
from rollsafe.state.records import DeployRecord

__all__ = ["fill_synthetic", "synthetic_names"]


def synthetic_names(count: int) -> list[str]:
    """``svc-0001`` ... : the names ``fill_synthetic`` gives ``count`` services."""
    return [f"svc-{i:04d}" for i in range(1, count + 1)]


def fill_synthetic(
    store: StateStore,
    env_name: str,
    services: int | Sequence[str],
    days: int,
    now: float,
    *,
    interval: float = 30.0,
    seed: int = 0,
    down: Sequence[str] = (),
    degraded: Sequence[str] = (),
    raw_hours: int = 0,
    deploys: bool = True,
) -> list[str]:
    """Write ``days`` days of rollups (hourly ones for at most 30 of them) for
    ``services`` (a count, named by ``synthetic_names``, or names) of ``env_name`` into
    ``store``, with the heartbeat at ``now``; return the service names. See the module's
    docstring."""
    names = synthetic_names(services) if isinstance(services, int) else list(services)
    rng = random.Random(seed)
    per_hour = max(1, int(HOUR / interval))
    hour_now = int(now) // HOUR * HOUR
    first_hour = hour_now - min(days, 30) * 24 * HOUR + HOUR
    day_now = int(now) // DAY * DAY
    failing = set(down) | set(degraded)
    rows: list[tuple[str, str, Any]] = []
    for name in names:
        base = rng.uniform(0.02, 0.4)
        recent: dict[str, list[float]] = {}
        older: dict[str, list[float]] = {}
        day_counts: dict[int, list[float]] = {}
        for start in range(first_hour, hour_now + 1, HOUR):
            failed = per_hour if name in down and start == hour_now else _failures(rng, per_hour)
            if name in degraded and start == hour_now:
                failed = per_hour // 4
            latency = base * rng.uniform(0.8, 1.3)
            counts = [per_hour, failed, round(latency * per_hour, 4), round(latency * 2.5, 4)]
            (recent if start > now - RECENT_KEEP else older)[str(start)] = counts
            _add(day_counts, start // DAY * DAY, counts)
        for day in range(day_now - (days - 1) * DAY, first_hour - first_hour % DAY, DAY):
            per_day = per_hour * 24
            latency = base * rng.uniform(0.8, 1.3)
            counts = [per_day, _failures(rng, per_day), latency * per_day, latency * 2.5]
            _add(day_counts, day, counts)
        revision = f"{name}-00001-syn"
        today = {str(d): _rounded(c) for d, c in day_counts.items() if d >= day_now}
        closed = {str(d): _rounded(c) for d, c in day_counts.items() if d < day_now}
        rows.append(
            (
                rollups_namespace(env_name),
                name,
                {
                    "hours": recent,
                    "days": today,
                    "archived_hour": max(map(int, older), default=0),
                    "archived_day": day_now - DAY if closed else 0,
                    "updated": float(now),
                },
            )
        )
        if closed:
            rows.append((daily_namespace(env_name), name, {"days": closed}))
        if older:
            rows.append((hourly_namespace(env_name), name, {"hours": older}))
        rows.append(
            (
                services_namespace(env_name),
                name,
                {
                    "url": f"http://127.0.0.1/{name}",
                    "traffic": [{"revision": revision, "percent": 100, "tag": None}],
                    "latest_ready": revision,
                    "updated": float(now),
                },
            )
        )
        if name in failing:
            alertname = "ServiceDown" if name in down else "High5xxRate"
            rows.append(
                (alerts_namespace(env_name), f"{name}/{alertname}", _alert(name, alertname, now))
            )
            rows.append(
                (
                    history_namespace(env_name),
                    f"{name}/{alertname}/{now - 600:.3f}",
                    _history(name, alertname, now),
                )
            )
        for minute in range(hour_now - raw_hours * HOUR, hour_now if raw_hours else 0, 60):
            failed = _failures(rng, 2)
            rows.append(
                (
                    probes_namespace(env_name),
                    f"{name}/{minute}",
                    {
                        "service": name,
                        "start": minute,
                        "total": 2,
                        "failed": failed,
                        "statuses": {"200": 2 - failed, "503": failed} if failed else {"200": 2},
                        "latency_sum": round(base * 2, 6),
                        "latency_max": round(base * 1.5, 6),
                        "seconds": 60,
                        "revisions": {revision: [2, failed]},
                    },
                )
            )
    rows.append(
        (
            heartbeat_namespace(env_name),
            HEARTBEAT_KEY,
            {"at": float(now), "interval": interval, "holder": "synthetic"},
        )
    )
    records = (
        [
            _deploy(env_name, name, i, now, revision=f"{name}-00001-syn")
            for i, name in enumerate(names)
        ]
        if deploys
        else []
    )
    _write(store, rows, records, now)
    return names


def _rounded(counts: list[float]) -> list[float]:
    return [counts[0], counts[1], round(counts[2], 4), round(counts[3], 4)]


def _failures(rng: random.Random, total: int) -> int:
    roll = rng.random()
    if roll < 0.97:
        return 0
    return min(total, rng.randint(1, max(1, total // 20)))


def _add(into: dict[int, list[float]], key: int, counts: list[float]) -> None:
    old = into.get(key)
    if old is None:
        into[key] = list(counts)
    else:
        into[key] = [
            old[0] + counts[0],
            old[1] + counts[1],
            old[2] + counts[2],
            max(old[3], counts[3]),
        ]


def _alert(service: str, alertname: str, now: float) -> dict[str, Any]:
    return {
        "service": service,
        "alertname": alertname,
        "status": "firing",
        "failures": 3,
        "successes": 0,
        "since": now - 600,
        "fired_at": now - 540,
        "notified_at": now - 540,
        "inhibited": False,
        "severity": "critical",
        "summary": f"{service} fails its health probe"
        if alertname == "ServiceDown"
        else f"{service} answers 5xx",
        "description": "",
        "revision": f"{service}-00001-syn",
        "evidence": [],
        "value": None,
    }


def _history(service: str, alertname: str, now: float) -> dict[str, Any]:
    return {
        "service": service,
        "alertname": alertname,
        "severity": "critical",
        "summary": f"{alertname} of {service}",
        "description": "",
        "revision": f"{service}-00001-syn",
        "evidence": [],
        "starts_at": now - 600,
        "fired_at": now - 540,
        "ends_at": None,
        "action": None,
    }


def _deploy(env: str, service: str, index: int, now: float, *, revision: str) -> DeployRecord:
    started = now - 3 * DAY + index
    return DeployRecord(
        id=f"d-syn-{index:05d}",
        env=env,
        service=service,
        user="synthetic",
        host="localhost",
        pid=1,
        checks="passed",
        stage="done",
        started=started,
        revision=revision,
        outcome="succeeded",
        exit_code=0,
        finished=started + 40,
    )


def _write(
    store: StateStore, rows: list[tuple[str, str, Any]], records: list[DeployRecord], now: float
) -> None:
    """One transaction on SQLite (a write each costs a sync); the plain API elsewhere."""
    from rollsafe.state.sqlite import SQLiteStateStore

    if isinstance(store, SQLiteStateStore):
        with store._transaction() as conn:  # a bulk load, for benchmarks
            conn.executemany(
                "INSERT OR REPLACE INTO kv (namespace, key, value, version, updated) "
                "VALUES (?, ?, ?, 1, ?)",
                [(ns, key, json.dumps(value), now) for ns, key, value in rows],
            )
            for record in records:
                store.save_record(record)
        return
    for ns, key, value in rows:
        store.kv_put(ns, key, value)
    for record in records:
        store.save_record(record)
