"""What the monitor's parts pass each other: observations, alert events, notifications.

Signals (probes, request logs, log lines, the service's own state) become
``Observation``s; the ``AlertBook`` turns them into ``AlertEvent``s (firing, resolved,
reminder) kept as state in the ``StateStore``; the ``Notifier`` groups one pass's events
per environment into ``Notification``s and hands them to the receivers, off the loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "AlertEvent",
    "AlertName",
    "AlertStatus",
    "EventKind",
    "Notification",
    "Observation",
]


class AlertName(StrEnum):
    """The monitor's built-in alerts (a log alert's ``alertname`` is its manifest name)."""

    #: the health probes fail (status, JSON fields, latency, no answer)
    SERVICE_DOWN = "ServiceDown"
    #: the request logs' 5xx share over ``monitor.window`` is above ``max_error_rate``
    HIGH_5XX = "High5xxRate"
    #: the latest created revision is not ready, or the service's terminal condition failed
    REVISION_NOT_READY = "RevisionNotReady"
    #: ``Container called exit(`` again and again in ``monitor.window``
    INSTANCES_RESTARTING = "InstancesRestarting"
    #: a serving revision has no ``rollsafe.dev/deploy-id``: traffic changed outside rollsafe
    TRAFFIC_OUTSIDE_ROLLSAFE = "TrafficChangedOutsideRollsafe"
    #: an error template Drain3 had not seen before, after a deploy (info)
    NEW_ERROR_TEMPLATE = "NewErrorTemplate"
    #: a receiver keeps failing (reported through the others, and in the output)
    RECEIVER_FAILING = "ReceiverFailing"


#: alerts a firing ServiceDown of the same service inhibits (log alerts too)
INHIBITED_BY_DOWN = frozenset({AlertName.HIGH_5XX.value})


class AlertStatus(StrEnum):
    """An alert's state machine: inactive -> pending -> firing -> inactive."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


class EventKind(StrEnum):
    """What an ``AlertEvent`` tells the receivers."""

    FIRING = "firing"
    RESOLVED = "resolved"
    REMINDER = "reminder"


@dataclass(frozen=True)
class Observation:
    """One check of one alert of one service at one time: failing (``ok`` False) or not.

    ``evidence`` holds ids as the incident report cites them: ``log://LOG_NAME/INSERT_ID``,
    ``run://SERVICE/REVISION#CONDITION``, ``monitor:ALERT/EVENT``. Never a secret value.
    """

    service: str
    alertname: str
    ok: bool
    severity: str = "critical"
    summary: str = ""
    description: str = ""
    revision: str | None = None
    evidence: tuple[str, ...] = ()
    at: float = field(default_factory=time.time)
    #: (failure, success) thresholds for this alert; None: the service's ``monitor:`` ones
    thresholds: tuple[int, int] | None = None
    #: a measured value (latency s, 5xx share, matching lines), for metrics and reports
    value: float | None = None


@dataclass(frozen=True)
class AlertEvent:
    """A transition (or reminder) of one alert, as sent: Alertmanager's labels and
    annotations, its start and (when resolved) end time, and a stable id."""

    kind: EventKind
    env: str
    service: str
    alertname: str
    severity: str
    summary: str
    description: str
    starts_at: float
    ends_at: float | None = None
    revision: str | None = None
    evidence: tuple[str, ...] = ()
    #: what the monitor did about it (an automatic rollback), appended to the description
    action: str | None = None

    @property
    def fingerprint(self) -> str:
        """The alert's identity across its events: ``ENV/SERVICE/ALERTNAME``."""
        return f"{self.env}/{self.service}/{self.alertname}"

    @property
    def event_id(self) -> str:
        """This event's identity: one send per receiver, across restarts and replicas."""
        stamp = f"{self.starts_at:.3f}"
        if self.kind is EventKind.REMINDER:
            return f"{self.fingerprint}/{stamp}/reminder/{self.ends_at or 0:.0f}"
        return f"{self.fingerprint}/{stamp}/{self.kind.value}"

    @property
    def labels(self) -> dict[str, str]:
        """``alertname``, ``env``, ``service``, ``revision`` (when known) and ``severity``."""
        labels = {
            "alertname": self.alertname,
            "env": self.env,
            "service": self.service,
            "severity": self.severity,
        }
        if self.revision:
            labels["revision"] = self.revision
        return labels

    @property
    def annotations(self) -> dict[str, str]:
        """``summary``, ``description`` (with the action taken) and ``evidence``."""
        description = self.description
        if self.action:
            description = f"{description} {self.action}".strip()
        return {
            "summary": self.summary,
            "description": description,
            "evidence": " ".join(self.evidence),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "event_id": self.event_id,
            "labels": self.labels,
            "annotations": self.annotations,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
        }


@dataclass(frozen=True)
class Notification:
    """One pass's events of one environment, sent together (grouping)."""

    env: str
    events: tuple[AlertEvent, ...]
    at: float = field(default_factory=time.time)

    @property
    def group_key(self) -> str:
        return f"rollsafe/{self.env}"
