"""The status page's JSON API, ``/api/v1/...``: the documents the pages are rendered from.

- ``/api/v1/summary``: the environment's indicator, staleness and every service's state
  (small: the page's script polls it every interval);
- ``/api/v1/services`` and ``/api/v1/services/{name}``: the read model's shapes
  (``ServiceStatus.to_dict``, ``ServiceDetail.to_dict``);
- ``/api/v1/incidents`` and ``/api/v1/incidents/{id}``: the episodes, and one with its report;
- ``/api/v1/summary.json``: Statuspage's ``/api/v2/summary.json`` shape (page, components,
  unresolved incidents, scheduled maintenances, status), for tools that read Statuspage.

Times are seconds since the epoch (``time.time()``) except in ``summary.json``, which
uses Statuspage's ISO 8601 strings. No secret value and no receiver URL is in any.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rollsafe.incidents.model import Episode
from rollsafe.web.model import ServiceDetail, ServiceState, ServiceStatus, Staleness

__all__ = [
    "API_VERSION",
    "IMPACT",
    "incident_doc",
    "incidents_doc",
    "service_doc",
    "services_doc",
    "statuspage_summary",
    "summary_doc",
]

API_VERSION = "v1"

#: a service's state -> Statuspage incident impact (the same scale as the indicator)
IMPACT = {
    ServiceState.OPERATIONAL: "none",
    ServiceState.DEGRADED_PERFORMANCE: "minor",
    ServiceState.PARTIAL_OUTAGE: "major",
    ServiceState.MAJOR_OUTAGE: "critical",
}
_ORDER = list(IMPACT)


def summary_doc(
    env: str,
    services: Sequence[ServiceStatus],
    indicator: tuple[str, str],
    staleness: Staleness,
    *,
    generation: int,
    interval: float,
    now: float,
) -> dict[str, Any]:
    """What the page's script polls: the indicator, staleness and each service's state."""
    counts = {state.value: 0 for state in ServiceState}
    for status in services:
        counts[status.state.value] += 1
    return {
        "env": env,
        "generated": now,
        "generation": generation,
        "interval": interval,
        "indicator": {"indicator": indicator[0], "description": indicator[1]},
        "staleness": staleness.to_dict(),
        "counts": counts,
        "services": [
            {
                "name": s.name,
                "state": s.state.value,
                "label": s.state.label,
                "alerts": len(s.alerts),
                "updated": s.updated,
            }
            for s in services
        ],
    }


def services_doc(env: str, services: Sequence[ServiceStatus], now: float) -> dict[str, Any]:
    return {"env": env, "generated": now, "services": [s.to_dict() for s in services]}


def service_doc(env: str, detail: ServiceDetail, now: float) -> dict[str, Any]:
    return {"env": env, "generated": now, **detail.to_dict()}


def _episode(episode: Episode) -> dict[str, Any]:
    return {**episode.to_dict(), "url": f"/incidents/{episode.id}"}


def incidents_doc(env: str, incidents: Sequence[Episode], now: float) -> dict[str, Any]:
    return {"env": env, "generated": now, "incidents": [_episode(i) for i in incidents]}


def incident_doc(
    env: str, episode: Episode, report: dict[str, Any] | None, problem: str | None
) -> dict[str, Any]:
    """One episode with its report (``IncidentReport.to_dict``), or None and the reason."""
    return {"env": env, "episode": _episode(episode), "report": report, "problem": problem}


# -- Statuspage's summary.json -----------------------------------------------------------


def _sp_time(moment: float | None) -> str | None:
    if moment is None:
        return None
    millis = round((moment % 1) * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{millis:03d}Z"


def _component(status: ServiceStatus, position: int, env: str, now: float) -> dict[str, Any]:
    first = next((d.start for d in status.days if d.uptime is not None), None)
    updated = status.updated if status.updated is not None else now
    return {
        "id": status.name,
        "name": status.name,
        "status": status.state.value,
        "created_at": _sp_time(first if first is not None else updated),
        "updated_at": _sp_time(updated),
        "position": position,
        "description": None,
        "showcase": True,
        "start_date": None,
        "group_id": None,
        "page_id": env,
        "group": False,
        "only_show_if_degraded": False,
    }


def _sp_incident(
    episode: Episode, components: dict[str, dict[str, Any]], env: str, base_url: str
) -> dict[str, Any]:
    mine = [components[s] for s in episode.services if s in components]
    worst = max(
        (ServiceState(c["status"]) for c in mine),
        key=_ORDER.index,
        default=ServiceState.OPERATIONAL,
    )
    started = _sp_time(episode.start)
    update = {
        "id": f"{episode.id}-1",
        "status": "investigating",
        "body": episode.title,
        "incident_id": episode.id,
        "created_at": started,
        "updated_at": started,
        "display_at": started,
        "affected_components": [
            {
                "code": c["id"],
                "name": c["name"],
                "old_status": "operational",
                "new_status": c["status"],
            }
            for c in mine
        ],
        "deliver_notifications": False,
        "custom_tweet": None,
        "tweet_id": None,
    }
    return {
        "id": episode.id,
        "name": episode.title,
        "status": "investigating",
        "created_at": started,
        "updated_at": started,
        "monitoring_at": None,
        "resolved_at": None,
        "impact": IMPACT[worst],
        "shortlink": f"{base_url}/incidents/{episode.id}",
        "started_at": started,
        "page_id": env,
        "incident_updates": [update],
        "components": mine,
    }


def statuspage_summary(
    env: str,
    services: Sequence[ServiceStatus],
    incidents: Sequence[Episode],
    indicator: tuple[str, str],
    *,
    base_url: str,
    now: float,
) -> dict[str, Any]:
    """Statuspage's ``summary.json``: every service a component (its state one of
    operational, degraded_performance, partial_outage, major_outage), the unresolved
    incidents (episodes going on) with their impact, no scheduled maintenance, and the
    indicator (none, minor, major, critical) with its description."""
    components = [_component(s, n, env, now) for n, s in enumerate(services, 1)]
    by_name = {c["id"]: c for c in components}
    updated = max((s.updated for s in services if s.updated is not None), default=now)
    return {
        "page": {
            "id": env,
            "name": f"rollsafe: {env}",
            "url": base_url,
            "time_zone": "Etc/UTC",
            "updated_at": _sp_time(updated),
        },
        "components": components,
        "incidents": [_sp_incident(i, by_name, env, base_url) for i in incidents if i.end is None],
        "scheduled_maintenances": [],
        "status": {"indicator": indicator[0], "description": indicator[1]},
    }
