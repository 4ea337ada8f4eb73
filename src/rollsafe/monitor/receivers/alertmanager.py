"""Alertmanager: ``POST {url}/api/v2/alerts`` with a JSON list of postable alerts.

Firing alerts carry no ``endsAt`` (Alertmanager resolves an alert not re-sent within its
``resolve_timeout``), so the ``Notifier`` re-sends them every ``resend_interval`` while
they fire; a resolved alert carries ``endsAt``.
"""

from __future__ import annotations

from typing import Any

from rollsafe.monitor.model import AlertEvent, EventKind, Notification
from rollsafe.monitor.receivers._render import generator_url, rfc3339
from rollsafe.monitor.receivers.base import HttpReceiver

__all__ = ["DEFAULT_RESEND_INTERVAL", "AlertmanagerReceiver", "postable_alert"]

#: seconds between re-sends of firing alerts (Prometheus re-sends every minute too)
DEFAULT_RESEND_INTERVAL = 60.0


def postable_alert(event: AlertEvent, external_url: str = "") -> dict[str, Any]:
    """One alert of ``POST /api/v2/alerts``."""
    alert: dict[str, Any] = {
        "labels": event.labels,
        "annotations": event.annotations,
        "startsAt": rfc3339(event.starts_at),
        "generatorURL": generator_url(event, external_url),
    }
    if event.kind is EventKind.RESOLVED:
        alert["endsAt"] = rfc3339(event.ends_at if event.ends_at is not None else event.starts_at)
    return alert


class AlertmanagerReceiver(HttpReceiver):
    """Alerts posted to an Alertmanager (``url`` is its base URL)."""

    type = "alertmanager"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        timeout: float = 10.0,
        resend_interval: float = DEFAULT_RESEND_INTERVAL,
        external_url: str = "",
    ) -> None:
        super().__init__(name, url.rstrip("/") + "/api/v2/alerts", timeout=timeout)
        self.resend_interval = resend_interval
        self.external_url = external_url

    def send(self, notification: Notification) -> None:
        self._post([postable_alert(e, self.external_url) for e in notification.events])
