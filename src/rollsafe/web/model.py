"""What the status page shows: the read model ``StatusData`` builds and the pages render.

Plain frozen dataclasses with JSON shapes (``to_dict``), so the HTML pages and the
``/api/v1/...`` JSON are rendered from the same values. Times are ``time.time()`` seconds.
Nothing here holds a secret value or a receiver URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ChartPoint",
    "DayBucket",
    "Marker",
    "ServiceDetail",
    "ServiceState",
    "ServiceStatus",
    "Staleness",
]


class ServiceState(StrEnum):
    """A service's state in Statuspage's component terms."""

    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"

    @property
    def label(self) -> str:
        """``Operational``, ``Degraded performance``, ``Partial outage``, ``Major outage``."""
        return self.value.replace("_", " ").capitalize()


@dataclass(frozen=True)
class DayBucket:
    """One day of the 90-day bar: its UTC start, the share of probes that passed (None: no
    probes that day) and the worst state seen."""

    start: int
    uptime: float | None
    state: ServiceState = ServiceState.OPERATIONAL

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "uptime": self.uptime, "state": self.state.value}


@dataclass(frozen=True)
class ChartPoint:
    """One point of a chart: bucket start, mean response time (s), error rate (0..1),
    probes counted (0: no data)."""

    start: int
    latency: float | None
    error_rate: float | None
    total: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "latency": self.latency,
            "error_rate": self.error_rate,
            "total": self.total,
        }


@dataclass(frozen=True)
class Marker:
    """A deploy or rollback on a chart: when, what kind, its id and a short label."""

    at: float
    kind: str  # "deploy" | "rollback"
    deploy_id: str
    label: str
    outcome: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "kind": self.kind,
            "deploy_id": self.deploy_id,
            "label": self.label,
            "outcome": self.outcome,
        }


@dataclass(frozen=True)
class ServiceStatus:
    """One row of the overview."""

    name: str
    state: ServiceState
    #: "24h", "7d", "30d", "90d" -> share of probes that passed; None: no data
    uptime: dict[str, float | None]
    #: 90 daily buckets, oldest first
    days: tuple[DayBucket, ...]
    #: the response-time sparkline: 24 hourly points, oldest first
    latency: tuple[ChartPoint, ...]
    #: serving revisions: {"revision", "percent", "tag"}
    traffic: tuple[dict[str, Any], ...] = ()
    #: the last deploy: {"id", "user", "when", "checks" (passed|skipped|forced|...),
    #: "forced", "reason", "outcome", "revision"}; None: none recorded
    last_deploy: dict[str, Any] | None = None
    #: open alerts: {"alertname", "severity", "status", "since", "summary"}
    alerts: tuple[dict[str, Any], ...] = ()
    #: when the last probe result was recorded (None: never probed)
    updated: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "uptime": dict(self.uptime),
            "days": [d.to_dict() for d in self.days],
            "latency": [p.to_dict() for p in self.latency],
            "traffic": [dict(t) for t in self.traffic],
            "last_deploy": self.last_deploy,
            "alerts": [dict(a) for a in self.alerts],
            "updated": self.updated,
        }


@dataclass(frozen=True)
class ServiceDetail:
    """The service page: the overview row plus charts, journal, drift and incidents."""

    status: ServiceStatus
    #: "24h" (5-minute points), "7d" (hourly), "30d" (6-hourly) -> points, oldest first
    charts: dict[str, tuple[ChartPoint, ...]]
    markers: tuple[Marker, ...] = ()
    #: revision -> {"total", "failed", "error_rate"} over the last 24 h (probes)
    revisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: DeployRecord.to_dict() of the service, newest first (at most 50)
    journal: tuple[dict[str, Any], ...] = ()
    #: DriftFinding.to_dict() of the last drift run, and when it ran (None: never)
    drift: tuple[dict[str, Any], ...] = ()
    drift_at: float | None = None
    #: Episode.to_dict() of the service's incidents, newest first
    incidents: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.status.to_dict(),
            "charts": {k: [p.to_dict() for p in v] for k, v in self.charts.items()},
            "markers": [m.to_dict() for m in self.markers],
            "revisions": self.revisions,
            "journal": list(self.journal),
            "drift": {"at": self.drift_at, "findings": list(self.drift)},
            "incidents": list(self.incidents),
        }


@dataclass(frozen=True)
class Staleness:
    """Whether the monitor's data is current: its last write and interval."""

    stale: bool
    last_write: float | None
    interval: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"stale": self.stale, "last_write": self.last_write, "interval": self.interval}
