"""Apprise URLs for everything else: email, Teams, Discord, ntfy, a JSON endpoint...

apprise is imported lazily (``pip install 'rollsafe[monitor]'``). Apprise logs the URLs
it posts to (at DEBUG, and in some warnings): the ``apprise`` logger's records have every
part of this receiver's URL blanked (``Receiver._keep_out_of_logs``).
"""

from __future__ import annotations

import urllib.parse
import warnings
from typing import Any

from rollsafe.monitor.model import EventKind, Notification
from rollsafe.monitor.receivers._render import event_line, title
from rollsafe.monitor.receivers.base import Receiver, ReceiverConfigError, ReceiverError

__all__ = ["AppriseReceiver"]

_HINT = "pip install 'rollsafe[monitor]'"


def _import_apprise() -> Any:
    try:
        with warnings.catch_warnings():
            # apprise's plugins import the deprecated imghdr (Python 3.11+)
            warnings.simplefilter("ignore", DeprecationWarning)
            import apprise
    except ImportError:
        raise ReceiverConfigError(
            "an apprise receiver needs the apprise library, which is not installed",
            hint=_HINT,
        ) from None
    return apprise


class AppriseReceiver(Receiver):
    """One message (title and body) per notification to an Apprise URL."""

    type = "apprise"

    def __init__(self, name: str, url: str, *, timeout: float = 10.0) -> None:
        super().__init__(name)
        apprise = _import_apprise()
        self._apprise_mod = apprise
        self._keep_out_of_logs(url)
        self._apprise = apprise.Apprise()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            added = self._apprise.add(url)
        if not added:
            self._forget_secrets()
            scheme = urllib.parse.urlsplit(url).scheme or "(none)"
            raise ReceiverConfigError(
                f"receiver {self.label}: its URL (scheme {scheme!r}) is not one Apprise supports",
                hint="see https://github.com/caronc/apprise/wiki for Apprise URLs",
            )
        self.timeout = timeout

    def send(self, notification: Notification) -> None:
        resolved_only = all(e.kind is EventKind.RESOLVED for e in notification.events)
        kind = self._apprise_mod.NotifyType
        body = "\n".join(event_line(e) for e in notification.events)
        try:
            ok = self._apprise.notify(
                body=body,
                title=title(notification),
                notify_type=kind.SUCCESS if resolved_only else kind.FAILURE,
            )
        except Exception as exc:  # apprise's own errors may carry the URL: only the class
            raise ReceiverError(
                f"receiver {self.label} failed ({type(exc).__name__})", retryable=True
            ) from None
        if not ok:
            # Apprise says only that it failed (no status): retried, as a connection error
            raise ReceiverError(
                f"receiver {self.label}: Apprise could not deliver the notification",
                retryable=True,
                hint="check the receiver's Apprise URL in the secret store",
            )

    def close(self) -> None:
        self._apprise.clear()
        super().close()
