"""How a service's row is made from what the monitor keeps: the state mapping, the
indicator, alerts, day states, deploy heads and chart points (``StatusData``'s parts; see
``rollsafe.web.data`` for the rules in words)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rollsafe.monitor.history import AlertRecord
from rollsafe.monitor.rollups import DAY
from rollsafe.state.records import DeployRecord
from rollsafe.web.model import ChartPoint, DayBucket, Marker, ServiceState

#: a day without an alert whose probes passed less than this is degraded
_DEGRADED_UPTIME = 0.95
_OK = ServiceState.OPERATIONAL
_SEVERITY_ORDER = {
    ServiceState.OPERATIONAL: 0,
    ServiceState.DEGRADED_PERFORMANCE: 1,
    ServiceState.PARTIAL_OUTAGE: 2,
    ServiceState.MAJOR_OUTAGE: 3,
}
_MAJOR_IF_CRITICAL = frozenset({"RevisionNotReady", "InstancesRestarting"})
_INDICATORS = {
    ServiceState.OPERATIONAL: ("none", "All Systems Operational"),
    ServiceState.DEGRADED_PERFORMANCE: ("minor", "Minor Service Outage"),
    ServiceState.PARTIAL_OUTAGE: ("major", "Partial System Outage"),
    ServiceState.MAJOR_OUTAGE: ("critical", "Major System Outage"),
}
Counts = Sequence[float]


def alert_state(alertname: str, severity: str, status: str) -> ServiceState:
    """The state one alert puts its service in (see the module's docstring)."""
    if status == "firing":
        if alertname == "ServiceDown":
            return ServiceState.MAJOR_OUTAGE
        if alertname in _MAJOR_IF_CRITICAL and severity == "critical":
            return ServiceState.MAJOR_OUTAGE
        if alertname == "High5xxRate":
            return ServiceState.PARTIAL_OUTAGE
        if severity != "info":
            return ServiceState.DEGRADED_PERFORMANCE
    elif status == "pending" and severity == "critical":
        return ServiceState.DEGRADED_PERFORMANCE
    return ServiceState.OPERATIONAL


def _worst(states: Iterable[ServiceState]) -> ServiceState:
    return max(states, key=_SEVERITY_ORDER.__getitem__, default=ServiceState.OPERATIONAL)


def indicator_of(states: Iterable[ServiceState]) -> tuple[str, str]:
    """Statuspage's ``(indicator, description)`` for services in ``states``."""
    return _INDICATORS[_worst(states)]


def _share(total: float, failed: float) -> float | None:
    return (total - failed) / total if total > 0 else None


def _point(start: int, counts: Counts | None) -> ChartPoint:
    if counts is None or counts[0] <= 0:
        return ChartPoint(start, None, None, 0)
    total, failed, latency_sum = int(counts[0]), counts[1], counts[2]
    return ChartPoint(start, latency_sum / total, failed / total, total)


def _sum(found: Iterable[Counts | None]) -> tuple[int, int, float, float]:
    total = failed = 0
    latency = peak = 0.0
    for counts in found:
        if counts is not None:
            total += int(counts[0])
            failed += int(counts[1])
            latency += counts[2]
            peak = max(peak, counts[3])
    return (total, failed, latency, peak)


@dataclass(frozen=True)
class _Alert:
    service: str
    alertname: str
    severity: str
    status: str
    since: float
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "alertname": self.alertname,
            "severity": self.severity,
            "status": self.status,
            "since": self.since,
            "summary": self.summary,
        }


def _alerts(found: Mapping[str, tuple[Any, int]]) -> dict[str, list[_Alert]]:
    by_service: dict[str, list[_Alert]] = {}
    for raw, _version in found.values():
        if not isinstance(raw, Mapping):
            continue
        status = str(raw.get("status") or "")
        if status not in ("pending", "firing"):
            continue
        try:
            alert = _Alert(
                service=str(raw["service"]),
                alertname=str(raw["alertname"]),
                severity=str(raw.get("severity") or ""),
                status=status,
                since=float(raw.get("since") or 0.0),
                summary=str(raw.get("summary") or ""),
            )
        except (KeyError, TypeError, ValueError):
            continue
        by_service.setdefault(alert.service, []).append(alert)
    for alerts in by_service.values():
        alerts.sort(key=lambda a: (a.status != "firing", a.since, a.alertname))
    return by_service


def _day_states(
    found: Mapping[str, tuple[Any, int]], now: float, first_day: int
) -> dict[str, dict[int, ServiceState]]:
    """Service -> day start -> the worst state an alert that fired that day put it in."""
    out: dict[str, dict[int, ServiceState]] = {}
    for raw, _version in found.values():
        try:
            record = AlertRecord.from_json(raw)
        except ValueError:
            continue
        state = alert_state(record.alertname, record.severity, "firing")
        if state is ServiceState.OPERATIONAL:
            continue
        end = record.ends_at if record.ends_at is not None else now
        start = max(record.fired_at or record.starts_at, float(first_day))
        if end < start:
            continue
        days = out.setdefault(record.service, {})
        day = int(start) // DAY * DAY
        while day <= end:
            if _SEVERITY_ORDER[state] > _SEVERITY_ORDER[days.get(day, ServiceState.OPERATIONAL)]:
                days[day] = state
            day += DAY
    return out


def _eligible(record: DeployRecord) -> bool:
    """A deploy or rollback worth showing (not a dry run, not a broken lock)."""
    return record.outcome != "dry-run" and record.checks != "unlock"


def _last_deploy(record: DeployRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "id": record.id,
        "user": record.user,
        "when": record.started,
        "finished": record.finished,
        "checks": record.checks,
        "forced": record.forced or record.checks == "forced",
        "reason": record.reason,
        "outcome": record.outcome,
        "revision": record.revision,
    }


def _traffic(raw: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, Mapping):
        return ()
    out = []
    for entry in raw.get("traffic") or ():
        if isinstance(entry, Mapping):
            out.append(
                {
                    "revision": str(entry.get("revision") or ""),
                    "percent": int(entry.get("percent") or 0),
                    "tag": entry.get("tag"),
                }
            )
    return tuple(out)


def _moved_days(raw: Any) -> Mapping[str, Counts]:
    """The ``days`` of a moved-days document, as stored (looked up by decimal key)."""
    days = raw.get("days") if isinstance(raw, Mapping) else None
    return days if isinstance(days, Mapping) else {}


def _day_counts(
    moved: Counts | None, recent: Counts | None, start: int, archived: int
) -> tuple[int, int] | None:
    """A day's (total, failed): the moved entry plus a recent one that came late (at or
    before ``archived``), else the recent one (see ``rollups.merge_moved``)."""
    if recent is None:
        return (int(moved[0]), int(moved[1])) if moved is not None else None
    if moved is not None and start <= archived:
        return (int(moved[0]) + int(recent[0]), int(moved[1]) + int(recent[1]))
    return (int(recent[0]), int(recent[1]))


@functools.lru_cache(maxsize=4096)
def _no_point(start: int) -> ChartPoint:
    """An empty chart point (shared: a thousand services without data cost nothing)."""
    return ChartPoint(start, None, None, 0)


@functools.lru_cache(maxsize=65536)
def _day(start: int, share: float | None, state: ServiceState) -> DayBucket:
    """A day of the bar (shared: most days of most services are alike)."""
    return DayBucket(start, share, state)


def _int(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        return -1


@functools.lru_cache(maxsize=4096)
def _no_day(start: int) -> DayBucket:
    """An operational day without probes (shared)."""
    return DayBucket(start, None, ServiceState.OPERATIONAL)


def _as_counts(slot: list[float] | None) -> Counts | None:
    if slot is None:
        return None
    return (int(slot[0]), int(slot[1]), slot[2], slot[3])


def _marker(record: DeployRecord) -> Marker:
    kind = "rollback" if record.checks == "rollback" else "deploy"
    checks = "forced" if record.forced or record.checks == "forced" else record.checks
    label = f"{kind} {record.id} by {record.user}"
    if kind == "deploy":
        label += f" (checks {checks})"
    return Marker(
        at=record.started, kind=kind, deploy_id=record.id, label=label, outcome=record.outcome
    )


def _firing_state(alert: _Alert) -> ServiceState:
    if alert.status != "firing":
        return ServiceState.OPERATIONAL
    return alert_state(alert.alertname, alert.severity, alert.status)
