"""A generic webhook carrying Alertmanager's webhook payload (version 4), so receivers
written for Alertmanager (``webhook_config``) work unchanged."""

from __future__ import annotations

from typing import Any

from rollsafe.monitor.model import EventKind, Notification
from rollsafe.monitor.receivers._render import (
    ZERO_TIME,
    fingerprint,
    generator_url,
    rfc3339,
    status_of,
)
from rollsafe.monitor.receivers.base import HttpReceiver

__all__ = ["MAX_ALERTS", "WebhookReceiver", "webhook_payload"]

#: alerts per payload; the rest are counted in ``truncatedAlerts`` (Alertmanager's max_alerts)
MAX_ALERTS = 500


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    """The key/value pairs every map has."""
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


def webhook_payload(
    notification: Notification, *, receiver: str, external_url: str = ""
) -> dict[str, Any]:
    """Alertmanager's webhook payload, version 4, for one notification (grouped by env)."""
    events = list(notification.events)
    kept = events[:MAX_ALERTS]
    alerts = [
        {
            "status": status_of(e),
            "labels": e.labels,
            "annotations": e.annotations,
            "startsAt": rfc3339(e.starts_at),
            "endsAt": rfc3339(e.ends_at)
            if e.kind is EventKind.RESOLVED and e.ends_at is not None
            else ZERO_TIME,
            "generatorURL": generator_url(e, external_url),
            "fingerprint": fingerprint(e),
        }
        for e in kept
    ]
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": f'{{}}:{{env="{notification.env}"}}',
        "truncatedAlerts": len(events) - len(kept),
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": {"env": notification.env},
        "commonLabels": _common([e.labels for e in kept]),
        "commonAnnotations": _common([e.annotations for e in kept]),
        "externalURL": external_url,
        "alerts": alerts,
    }


class WebhookReceiver(HttpReceiver):
    """One POST per notification with Alertmanager's webhook payload v4."""

    type = "webhook"

    def __init__(
        self, name: str, url: str, *, timeout: float = 10.0, external_url: str = ""
    ) -> None:
        super().__init__(name, url, timeout=timeout)
        self.external_url = external_url

    def send(self, notification: Notification) -> None:
        self._post(
            webhook_payload(notification, receiver=self.name, external_url=self.external_url)
        )
