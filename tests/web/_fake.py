"""An in-memory stand-in for ``StatusData`` (the read model): the pages and the API are
tested against it without a state store. ``synthetic(n)`` makes ``n`` services with 90
days of buckets, as the overview shows at scale."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from rollsafe.incidents.model import Episode
from rollsafe.web.model import (
    ChartPoint,
    DayBucket,
    Marker,
    ServiceDetail,
    ServiceState,
    ServiceStatus,
    Staleness,
)

NOW = 1_796_550_000.0  # 2026-12-06T09:40:00Z
DAY = 86400


def status(
    name: str,
    state: ServiceState = ServiceState.OPERATIONAL,
    *,
    now: float = NOW,
    bad_days: int = 0,
    alerts: tuple[dict[str, Any], ...] = (),
) -> ServiceStatus:
    today = int(now // DAY) * DAY
    days = []
    for n in range(90):
        start = today - (89 - n) * DAY
        if n < 10:
            days.append(DayBucket(start, None))
        elif bad_days and n >= 90 - bad_days:
            days.append(DayBucket(start, 0.97, ServiceState.PARTIAL_OUTAGE))
        else:
            days.append(DayBucket(start, 0.9999, ServiceState.OPERATIONAL))
    hour = int(now // 3600) * 3600
    latency = tuple(
        ChartPoint(hour - (23 - n) * 3600, 0.08 + 0.01 * (n % 5), 0.0, 120) for n in range(24)
    )
    return ServiceStatus(
        name=name,
        state=state,
        uptime={"24h": 0.9995, "7d": 0.9998, "30d": 0.99991, "90d": None if n < 0 else 0.99},
        days=tuple(days),
        latency=latency,
        traffic=({"revision": f"{name}-00042-abc", "percent": 100, "tag": None},),
        last_deploy={
            "id": f"d-{name}-42",
            "user": "alice",
            "when": now - 3600,
            "checks": "passed",
            "forced": False,
            "reason": None,
            "outcome": "succeeded",
            "revision": f"{name}-00042-abc",
        },
        alerts=alerts,
        updated=now - 10,
    )


def detail(s: ServiceStatus, *, now: float = NOW) -> ServiceDetail:
    five = int(now // 300) * 300
    charts = {
        "24h": tuple(
            ChartPoint(five - (287 - n) * 300, 0.1, 0.5 if 200 <= n < 210 else 0.0, 10)
            for n in range(288)
        ),
        "7d": tuple(ChartPoint(int(now) - (167 - n) * 3600, 0.1, 0.0, 120) for n in range(168)),
        "30d": tuple(ChartPoint(int(now) - (119 - n) * 21600, 0.1, 0.0, 720) for n in range(120)),
    }
    markers = (
        Marker(now - 6 * 3600, "deploy", f"d-{s.name}-41", "deploy of rev 41", "rolled-back"),
        Marker(now - 5.9 * 3600, "rollback", f"d-{s.name}-41r", "rollback to rev 40", "succeeded"),
        Marker(now - 3600, "deploy", f"d-{s.name}-42", "deploy of rev 42", "succeeded"),
    )
    return ServiceDetail(
        status=s,
        charts=charts,
        markers=markers,
        revisions={f"{s.name}-00042-abc": {"total": 2880, "failed": 3, "error_rate": 3 / 2880}},
        journal=(
            {
                "id": f"d-{s.name}-42",
                "user": "alice",
                "started": now - 3600,
                "revision": f"{s.name}-00042-abc",
                "checks": "skipped",
                "forced": True,
                "reason": "hotfix <b>",
                "outcome": "succeeded",
                "message": None,
            },
        ),
        drift=(
            {
                "kind": "value_changed",
                "key": "LOG_LEVEL",
                "severity": "warning",
                "message": "LOG_LEVEL differs",
            },
        ),
        drift_at=now - 600,
        incidents=(),
    )


@dataclass
class FakeStatusData:
    """``StatusData``'s interface over lists held in memory; ``set_state`` changes a
    service and bumps the generation as a refresh that found a change would."""

    statuses: list[ServiceStatus]
    episodes: list[Episode] = field(default_factory=list)
    env_name: str = "staging"
    interval: float = 30.0
    stale: Staleness = field(default_factory=lambda: Staleness(False, NOW - 5, 30.0))
    generation: int = 1
    refreshes: int = 0
    pending: list[tuple[str, ServiceState]] = field(default_factory=list)

    def refresh(self) -> None:
        self.refreshes += 1
        if self.pending:
            changes = dict(self.pending)
            self.pending.clear()
            self.statuses = [
                replace(s, state=changes[s.name]) if s.name in changes else s for s in self.statuses
            ]
            self.generation += 1

    def services(self) -> list[ServiceStatus]:
        return list(self.statuses)

    def service(self, name: str) -> ServiceDetail | None:
        found = next((s for s in self.statuses if s.name == name), None)
        if found is None:
            return None
        d = detail(found)
        mine = tuple(i.to_dict() for i in self.episodes if name in i.services)
        return replace(d, incidents=mine)

    def incidents(self) -> list[Episode]:
        return list(self.episodes)

    def indicator(self) -> tuple[str, str]:
        states = {s.state for s in self.statuses}
        if ServiceState.MAJOR_OUTAGE in states:
            return "critical", "Major System Outage"
        if ServiceState.PARTIAL_OUTAGE in states:
            return "major", "Partial System Outage"
        if ServiceState.DEGRADED_PERFORMANCE in states:
            return "minor", "Minor Service Outage"
        return "none", "All Systems Operational"

    def staleness(self) -> Staleness:
        return self.stale

    def set_state(self, name: str, state: ServiceState) -> None:
        """The monitor wrote a new state: seen at the next ``refresh``."""
        self.pending.append((name, state))


def episode(service: str = "backend", *, ended: bool = True, start: float = NOW - 7200) -> Episode:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(start))
    return Episode(
        id=f"INC-{stamp}-{service}",
        kinds=("alert", "deploy"),
        start=start,
        end=start + 300 if ended else None,
        services=(service,),
        title=f"{service}: ServiceDown firing; deploy rolled-back",
        sources=("monitor:history",),
    )


def synthetic(n: int) -> FakeStatusData:
    """``n`` services, one in ten with a few bad days, three with open alerts."""
    statuses = []
    for i in range(n):
        name = f"svc-{i:04d}"
        state = ServiceState.OPERATIONAL
        alerts: tuple[dict[str, Any], ...] = ()
        if i in (7, 70, 700):
            state = ServiceState.MAJOR_OUTAGE
            alerts = (
                {
                    "alertname": "ServiceDown",
                    "severity": "critical",
                    "status": "firing",
                    "since": NOW - 120,
                    "summary": "down",
                },
            )
        statuses.append(status(name, state, bad_days=3 if i % 10 == 0 else 0, alerts=alerts))
    return FakeStatusData(statuses, [episode("svc-0007", ended=False)])
