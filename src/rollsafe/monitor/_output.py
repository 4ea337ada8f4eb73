"""What the monitor tells its caller: one ``MonitorLine`` per state change, a ``PassResult``
per pass."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rollsafe.monitor.model import AlertEvent, EventKind, Observation

__all__ = ["LineState", "MonitorLine", "PassResult"]


class LineState:
    """The ``state`` of a ``MonitorLine``: an alert's transition, or a report."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    REMINDER = "reminder"
    #: something to know that is not an alert: a service not deployed, the leadership
    INFO = "info"
    #: a receiver failed (from the Notifier), or a signal could not be read
    ERROR = "error"


@dataclass(frozen=True)
class MonitorLine:
    """One line of ``rollsafe monitor``'s output. Never holds a secret or receiver URL."""

    at: float
    service: str
    alert: str
    state: str
    summary: str
    severity: str = ""
    revision: str | None = None
    evidence: tuple[str, ...] = ()
    #: what the monitor did (an automatic rollback)
    action: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": _iso(self.at),
            "service": self.service,
            "alert": self.alert,
            "state": self.state,
            "severity": self.severity or None,
            "revision": self.revision,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "action": self.action,
        }

    def text(self) -> str:
        """``TIME SERVICE ALERT STATE: SUMMARY [-> ACTION]``."""
        revision = f" ({self.revision})" if self.revision else ""
        line = f"{_iso(self.at)} {self.service}{revision} {self.alert} {self.state}: {self.summary}"
        if self.evidence:
            line += f" [{' '.join(self.evidence)}]"
        if self.action:
            line += f" -> {self.action}"
        return line

    @classmethod
    def of_event(cls, event: AlertEvent, at: float) -> MonitorLine:
        summary = event.summary
        if event.kind is EventKind.RESOLVED:
            # a resolve carries its trigger's summary: say that it is over
            summary = f"passes again (it was: {summary})" if summary else "passes again"
        return cls(
            at=at,
            service=event.service,
            alert=event.alertname,
            state=event.kind.value,
            summary=summary,
            severity=event.severity,
            revision=event.revision,
            evidence=event.evidence,
            action=event.action,
        )


@dataclass
class PassResult:
    """One pass: what was observed, the events it raised, the lines it printed."""

    at: float
    observations: list[Observation] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)
    lines: list[MonitorLine] = field(default_factory=list)
    #: ``SERVICE/ALERT`` of every failing check of this pass and every firing alert
    failing: list[str] = field(default_factory=list)
    #: False on a standby: it did not evaluate (``failing`` then holds the firing alerts)
    leader: bool = True
    seconds: float = 0.0

    @property
    def healthy(self) -> bool:
        return not self.failing


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
