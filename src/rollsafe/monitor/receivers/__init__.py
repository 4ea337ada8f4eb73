"""Where an environment's alerts go (``alerts:``): Alertmanager, PagerDuty, Slack, a
generic webhook (Alertmanager's payload v4) and Apprise URLs.

``open_receivers`` builds them from the manifest, reading URLs and keys from the
environment's secret store (latest version) when they are ``{secret: NAME}``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

from rollsafe.errors import RollsafeError
from rollsafe.manifest._monitor_resolved import ResolvedReceiver
from rollsafe.manifest.resolved import ResolvedEnvironment
from rollsafe.monitor.receivers.alertmanager import AlertmanagerReceiver
from rollsafe.monitor.receivers.base import (
    HttpReceiver,
    InMemoryReceiver,
    Receiver,
    ReceiverConfigError,
    ReceiverError,
)
from rollsafe.monitor.receivers.pagerduty import PagerDutyReceiver
from rollsafe.monitor.receivers.slack import SlackReceiver
from rollsafe.monitor.receivers.webhook import WebhookReceiver
from rollsafe.stores.base import SecretStore

__all__ = [
    "AlertmanagerReceiver",
    "HttpReceiver",
    "InMemoryReceiver",
    "PagerDutyReceiver",
    "Receiver",
    "ReceiverConfigError",
    "ReceiverError",
    "SlackReceiver",
    "WebhookReceiver",
    "open_receiver",
    "open_receivers",
]


def _label(spec: ResolvedReceiver) -> str:
    return spec.type if spec.name == spec.type else f"{spec.name} ({spec.type})"


def _value(
    spec: ResolvedReceiver,
    literal: str | None,
    secret: str | None,
    what: str,
    secrets: SecretStore | None,
) -> str | None:
    """A receiver's URL or key: the literal, or the latest version of its secret."""
    if secret is None:
        return literal
    if secrets is None:
        raise ReceiverConfigError(
            f"receiver {_label(spec)}: its {what} is the secret {secret!r}, but the "
            "environment has no secret store",
            hint="give the environment a `store:`, or the receiver a literal value",
        )
    try:
        value = secrets.access(secret, "latest").reveal().strip()
    except RollsafeError as exc:
        # the store's errors name the secret, never its value
        raise ReceiverConfigError(
            f"receiver {_label(spec)}: its {what} (secret {secret!r}) cannot be read: "
            f"{exc.message}",
            hint=exc.hint or f"add it: rollsafe secret set {secret}",
        ) from exc
    if not value:
        raise ReceiverConfigError(
            f"receiver {_label(spec)}: its {what} (secret {secret!r}) is empty",
            hint=f"set it: rollsafe secret set {secret}",
        )
    return value


def _http_url(spec: ResolvedReceiver, url: str | None) -> str:
    """``url`` if it is an http(s) URL with a host; the error never shows it."""
    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        where = f"secret {spec.url_secret!r}" if spec.url_secret else "`url`"
        raise ReceiverConfigError(
            f"receiver {_label(spec)}: its URL ({where}) is not an http(s) URL",
            hint="the value should look like https://host/path",
        )
    return url or ""


def open_receiver(spec: ResolvedReceiver, secrets: SecretStore | None) -> Receiver:
    """One receiver of ``alerts:``, its secrets read. Raises ``ReceiverConfigError``."""
    url = _value(spec, spec.url, spec.url_secret, "URL", secrets)
    if spec.type == "alertmanager":
        return AlertmanagerReceiver(spec.name, _http_url(spec, url), timeout=spec.timeout)
    if spec.type == "webhook":
        return WebhookReceiver(spec.name, _http_url(spec, url), timeout=spec.timeout)
    if spec.type == "slack":
        return SlackReceiver(spec.name, _http_url(spec, url), timeout=spec.timeout)
    if spec.type == "pagerduty":
        key = _value(spec, spec.routing_key, spec.routing_key_secret, "routing key", secrets)
        if not key:
            raise ReceiverConfigError(
                f"receiver {_label(spec)} needs a routing key",
                hint="set `routing_key: {secret: pd-key-{env}}`",
            )
        target = _http_url(spec, url) if url else None
        return PagerDutyReceiver(spec.name, key, url=target, timeout=spec.timeout)
    if spec.type == "apprise":
        from rollsafe.monitor.receivers.apprise_ import AppriseReceiver

        if not url:
            raise ReceiverConfigError(f"receiver {_label(spec)} needs a `url`")
        return AppriseReceiver(spec.name, url, timeout=spec.timeout)
    raise ReceiverConfigError(
        f"receiver {_label(spec)}: unknown type {spec.type!r}",
        hint="use webhook, alertmanager, pagerduty, slack or apprise",
    )


def open_receivers(env: ResolvedEnvironment, secrets: SecretStore | None) -> list[Receiver]:
    """Every receiver of ``env.alerts``, in manifest order. On an error the receivers
    already opened are closed before ``ReceiverConfigError`` propagates."""
    opened: list[Receiver] = []
    try:
        for spec in env.alerts:
            opened.append(open_receiver(spec, secrets))
    except BaseException:
        close_all(opened)
        raise
    return opened


def close_all(receivers: Sequence[Receiver]) -> None:
    """Close every receiver (one failing to close does not keep the others open)."""
    for receiver in receivers:
        try:
            receiver.close()
        except Exception:  # closing is best effort
            continue
