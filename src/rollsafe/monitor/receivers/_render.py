"""What the receivers share: times as RFC 3339, an alert's status, generator URL and
fingerprint, and a one-notification text for chat-like receivers (Slack, Apprise)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from rollsafe.monitor.model import AlertEvent, EventKind, Notification

__all__ = [
    "ZERO_TIME",
    "counts",
    "event_line",
    "fingerprint",
    "generator_url",
    "rfc3339",
    "status_of",
    "title",
]

#: Alertmanager's ``endsAt`` for an alert that has not ended (Go's zero time)
ZERO_TIME = "0001-01-01T00:00:00Z"

_MARK = {"firing": "\U0001f534", "resolved": "\u2705"}


def rfc3339(seconds: float) -> str:
    """``2026-12-06T07:01:22.123Z``."""
    stamp = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def status_of(event: AlertEvent) -> str:
    """``firing`` (a firing or reminder event) or ``resolved``."""
    return "resolved" if event.kind is EventKind.RESOLVED else "firing"


def generator_url(event: AlertEvent, external_url: str = "") -> str:
    """Where the alert comes from: the monitor's page for it when ``external_url`` is
    known, else a ``rollsafe:`` URI naming the alert."""
    path = f"{event.env}/{event.service}/{event.alertname}"
    if external_url:
        return f"{external_url.rstrip('/')}/alerts/{path}"
    return f"rollsafe://monitor/{path}"


def fingerprint(event: AlertEvent) -> str:
    """16 hex digits identifying the alert across its events (as Alertmanager's)."""
    return hashlib.sha256(event.fingerprint.encode()).hexdigest()[:16]


def counts(notification: Notification) -> tuple[int, int]:
    """(firing, resolved) events in ``notification``."""
    resolved = sum(1 for e in notification.events if e.kind is EventKind.RESOLVED)
    return len(notification.events) - resolved, resolved


def title(notification: Notification) -> str:
    """``[rollsafe qa] 3 firing, 1 resolved``."""
    firing, resolved = counts(notification)
    parts = [f"{firing} firing"] if firing else []
    if resolved:
        parts.append(f"{resolved} resolved")
    return f"[rollsafe {notification.env}] {', '.join(parts) or 'no alerts'}"


def event_line(event: AlertEvent, *, markdown: bool = False) -> str:
    """One line naming the alert, the service (and revision), and its summary."""
    status = status_of(event)
    kind = "reminder" if event.kind is EventKind.REMINDER else status
    name = f"*{event.alertname}*" if markdown else event.alertname
    where = event.service + (f" ({event.revision})" if event.revision else "")
    head = f"{_MARK[status]} {name} {kind} on {where} [{event.severity}]"
    return f"{head}: {event.summary}" if event.summary else head
