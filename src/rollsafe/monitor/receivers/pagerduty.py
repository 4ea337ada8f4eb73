"""PagerDuty Events API v2: ``trigger`` when an alert fires, ``resolve`` when it resolves,
with one stable ``dedup_key`` per alert episode so PagerDuty pairs them.

One request per event (the API takes one event per call). Reminders are not sent:
PagerDuty escalates by itself while the incident is open.
"""

from __future__ import annotations

import hashlib
from typing import Any

from rollsafe.monitor.model import AlertEvent, EventKind, Notification
from rollsafe.monitor.receivers._render import rfc3339
from rollsafe.monitor.receivers.base import HttpReceiver, ReceiverError

__all__ = ["EVENTS_URL", "PagerDutyReceiver", "dedup_key", "pagerduty_event"]

#: the Events API v2 endpoint (a receiver's ``url`` overrides it, e.g. a local test server)
EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

_SEVERITIES = {"critical", "error", "warning", "info"}
_SUMMARY_MAX = 1024
_DEDUP_MAX = 255


def dedup_key(event: AlertEvent) -> str:
    """The alert episode's key: its fingerprint and start, the same for trigger and resolve."""
    key = f"rollsafe/{event.fingerprint}/{event.starts_at:.3f}"
    if len(key) > _DEDUP_MAX:
        key = "rollsafe/" + hashlib.sha256(key.encode()).hexdigest()
    return key


def pagerduty_event(event: AlertEvent, routing_key: str) -> dict[str, Any]:
    """The Events API v2 body for one event."""
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "dedup_key": dedup_key(event),
        "event_action": "resolve" if event.kind is EventKind.RESOLVED else "trigger",
    }
    if event.kind is EventKind.RESOLVED:
        return body
    where = event.service + (f" ({event.revision})" if event.revision else "")
    summary = event.summary or f"{event.alertname} on {where}"
    body["payload"] = {
        "summary": f"[{event.env}] {summary}"[:_SUMMARY_MAX],
        "source": f"{event.env}/{event.service}",
        "severity": event.severity if event.severity in _SEVERITIES else "error",
        "timestamp": rfc3339(event.starts_at),
        "component": event.service,
        "group": event.env,
        "class": event.alertname,
        "custom_details": {**event.labels, **event.annotations},
    }
    body["client"] = "rollsafe monitor"
    return body


class PagerDutyReceiver(HttpReceiver):
    """Events to PagerDuty's Events API v2 with the receiver's routing key."""

    type = "pagerduty"

    def __init__(
        self, name: str, routing_key: str, *, url: str | None = None, timeout: float = 10.0
    ) -> None:
        super().__init__(name, url or EVENTS_URL, timeout=timeout)
        self.__routing_key = routing_key
        self._keep_out_of_logs(routing_key)

    def send(self, notification: Notification) -> None:
        sent: list[str] = []
        for event in notification.events:
            if event.kind is EventKind.REMINDER:
                continue
            try:
                self._post(pagerduty_event(event, self.__routing_key))
            except ReceiverError as err:
                # what went through is not sent again on retry
                err.sent = tuple(sent)
                raise
            sent.append(event.event_id)
