"""The baseline of ``status_page.py``: a status page recomputed from raw probe samples on
every request, as Uptime Kuma computes its uptimes from its heartbeat table.

``write_samples`` expands the synthetic environment's hourly rollups into one row per
probe (``probes(service, at, ok, latency)`` in SQLite, primary key ``(service, at)``), one
probe every ``interval`` seconds over ``days`` days, with each hour's share of failures and
its mean latency, so the baseline shows the same figures as the real page (to rounding).
``NaiveSource`` is the read model the pages render, with ``services()`` recomputed from
those rows on each call (per service: uptime over 24 h / 7 d / 30 d / 90 d, the daily
buckets of the 90-day bar and the 24 hourly latency points, one indexed SQL query each);
its generation changes on every refresh, so the pages' cache never serves it twice. What
the samples do not hold (state, traffic, last deploy, alerts) it takes from the real read
model, uncounted: the baseline pays for the samples alone.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from rollsafe.monitor.rollups import read_hours  # noqa: E402
from rollsafe.state.base import StateStore  # noqa: E402
from rollsafe.web.model import ChartPoint, DayBucket, ServiceStatus  # noqa: E402

HOUR = 3600
DAY = 86400
_WINDOWS = {"24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "90d": 90 * DAY}


def write_samples(
    db: Path, store: StateStore, env: str, services: list[str], now: float, days: int, interval: int
) -> int:
    """One row per probe for every service (see the module); the number of rows."""
    per_hour = max(1, HOUR // interval)
    since = int(now) - days * DAY
    conn = sqlite3.connect(db)
    conn.executescript(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
        "CREATE TABLE probes (service INTEGER, at INTEGER, ok INTEGER, latency REAL,"
        " PRIMARY KEY (service, at)) WITHOUT ROWID;"
    )
    rows = 0
    for index, name in enumerate(services):
        batch: list[tuple[int, int, int, float]] = []
        for hour, (total, failed, latency_sum, _max) in sorted(
            read_hours(store, env, name).items()
        ):
            if hour < since or hour >= now or total <= 0:
                continue
            bad = round(failed * per_hour / total)
            mean = latency_sum / total
            for i in range(per_hour):
                # the hour's mean, spread +-20 % so the points are not all equal
                spread = 0.8 + 0.4 * ((i * 0.618034) % 1.0)
                batch.append((index, hour + i * interval, int(i >= bad), mean * spread))
        conn.executemany("INSERT INTO probes VALUES (?, ?, ?, ?)", batch)
        rows += len(batch)
    conn.commit()
    conn.close()
    return rows


class NaiveSource:
    """The real read model (``StatusData``) with its samples recomputed from raw rows on
    every ``services()`` call (see the module)."""

    def __init__(self, real: Any, db: Path, clock: Any) -> None:
        self._real = real
        self._conn = sqlite3.connect(db, check_same_thread=False)
        self._clock = clock
        self._generation = 0
        self._index = {s.name: i for i, s in enumerate(real.services())}

    def close(self) -> None:
        self._conn.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    @property
    def generation(self) -> int:
        return self._generation

    def refresh(self) -> None:
        self._real.refresh()
        self._generation += 1  # never the same page twice: recomputed on each request

    def services(self) -> list[ServiceStatus]:
        now = int(self._clock())
        return [self._recomputed(status, now) for status in self._real.services()]

    def _recomputed(self, status: ServiceStatus, now: int) -> ServiceStatus:
        index = self._index[status.name]
        q = self._conn.execute
        uptime: dict[str, float | None] = {}
        for window, seconds in _WINDOWS.items():
            total, passed = q(
                "SELECT count(*), sum(ok) FROM probes WHERE service = ? AND at >= ?",
                (index, now - seconds),
            ).fetchone()
            uptime[window] = passed / total if total else None
        today = now - now % DAY
        first = today - 89 * DAY
        by_day = {
            int(day): (total, passed)
            for day, total, passed in q(
                "SELECT (at - ?) / 86400, count(*), sum(ok) FROM probes"
                " WHERE service = ? AND at >= ? GROUP BY 1",
                (first, index, first),
            )
        }
        worst = {day.start: day.state for day in status.days}  # from alerts, not samples
        days = []
        for d in range(90):
            total, passed = by_day.get(d, (0, 0))
            start = first + d * DAY
            days.append(
                DayBucket(start, passed / total if total else None, worst.get(start, status.state))
            )
        hour0 = now - now % HOUR - 23 * HOUR
        by_hour = {
            int(h): (total, failed, mean)
            for h, total, failed, mean in q(
                "SELECT (at - ?) / 3600, count(*), count(*) - sum(ok), avg(latency) FROM probes"
                " WHERE service = ? AND at >= ? GROUP BY 1",
                (hour0, index, hour0),
            )
        }
        latency = []
        for h in range(24):
            total, failed, mean = by_hour.get(h, (0, 0, None))
            latency.append(
                ChartPoint(hour0 + h * HOUR, mean, failed / total if total else None, total)
            )
        return dataclasses.replace(status, uptime=uptime, days=tuple(days), latency=tuple(latency))
