"""The receiver interface: where an environment's alerts go, and how sending fails.

A ``Receiver`` sends one ``Notification`` (one pass's events of one environment) and
either returns or raises ``ReceiverError``, saying whether a retry may help (429, 5xx, no
connection) and how long the receiver asked to wait (``Retry-After``). The ``Notifier``
owns retries, deduplication and reporting; receivers only speak their wire format.

A receiver's URL and key are secrets: they live in private attributes, and nothing a
receiver says (``repr``, messages, logs) carries them; it names itself by ``name`` and
``type`` only. ``HttpReceiver._post`` is the ONE place where httpx's errors (which carry
the URL) become ``ReceiverError``.
"""

from __future__ import annotations

import email.utils
import itertools
import logging
import threading
import time
import urllib.parse
from abc import ABC, abstractmethod
from typing import Any, Self

import httpx

from rollsafe.errors import RollsafeError
from rollsafe.monitor.model import AlertEvent, Notification

__all__ = [
    "LOGGERS_REDACTED",
    "HttpReceiver",
    "InMemoryReceiver",
    "Receiver",
    "ReceiverConfigError",
    "ReceiverError",
]

#: longest ``Retry-After`` honoured: a receiver asking for more is waited on this long
MAX_RETRY_AFTER = 300.0


#: the vendor loggers that name the URLs they call: httpx (INFO), Apprise and the urllib3
#: under its requests (DEBUG). A filter acts on its own logger's records only, so each is named.
LOGGERS_REDACTED = ("httpx", "apprise", "urllib3.connectionpool", "urllib3.util.retry")
_MIN_FRAGMENT = 8


class _Redactor(logging.Filter):
    """Blanks every registered secret (a receiver's URL, its parts, its key) in the
    records of ``LOGGERS_REDACTED`` before any handler sees them."""

    def __init__(self) -> None:
        super().__init__("rollsafe-receivers")
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._secrets: dict[int, tuple[str, ...]] = {}
        self._sorted: tuple[str, ...] = ()

    def register(self, secrets: tuple[str, ...]) -> int:
        with self._lock:
            token = next(self._ids)
            self._secrets[token] = secrets
            self._resort()
            return token

    def unregister(self, token: int) -> None:
        with self._lock:
            self._secrets.pop(token, None)
            self._resort()

    def _resort(self) -> None:
        # longest first, so a URL is blanked whole before its parts
        found = {s for group in self._secrets.values() for s in group}
        self._sorted = tuple(sorted(found, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._sorted
        if not secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot be formatted is not shown at all
            return False
        for secret in secrets:
            text = text.replace(secret, "<redacted>")
        record.msg, record.args = text, ()
        return True


_REDACTOR = _Redactor()
for _name in LOGGERS_REDACTED:
    logging.getLogger(_name).addFilter(_REDACTOR)


def secret_parts(*values: str) -> tuple[str, ...]:
    """Each value, and for a URL every part of it that may be a token: its path, each
    path segment and query value, its user and password."""
    found: set[str] = set()
    for value in values:
        found.add(value)
        parts = urllib.parse.urlsplit(value)
        found.update({parts.netloc + parts.path, parts.path, parts.query})
        found.update(parts.path.split("/"))
        found.update(v for _, v in urllib.parse.parse_qsl(parts.query))
        found.update(p for p in (parts.username, parts.password) if p)
    return tuple(f for f in found if len(f) >= _MIN_FRAGMENT or f in values)


class ReceiverError(RollsafeError):
    """Sending to a receiver failed. Never carries the receiver's URL or key.

    ``retryable``: 429, 5xx, a timeout or no connection (another 4xx is not);
    ``status``: the HTTP status if there was an answer; ``retry_after``: seconds the
    receiver asked to wait; ``sent``: ids of the events delivered before the failure
    (receivers that send one request per event), so they are not sent twice.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        sent: tuple[str, ...] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.sent = sent

    def __repr__(self) -> str:
        return f"ReceiverError({self.message!r}, retryable={self.retryable}, status={self.status})"


class ReceiverConfigError(RollsafeError):
    """A receiver of ``alerts:`` cannot be set up: its secret is missing, its URL is not
    one it can use, its library is not installed. Names the receiver, never its URL."""

    exit_code = 2


class Receiver(ABC):
    """Where alerts go. Subclasses set ``type`` and implement ``send``.

    ``send`` is called from the receiver's own worker thread, one call at a time.
    """

    #: the manifest's ``type`` (``webhook``, ``alertmanager``, ``pagerduty``, ...)
    type: str = ""
    #: seconds between re-sends of the firing alerts (Alertmanager); None: never
    resend_interval: float | None = None

    def __init__(self, name: str) -> None:
        self.name = name
        self._redactions: list[int] = []

    def _keep_out_of_logs(self, *secrets: str) -> None:
        """Blank ``secrets`` (URLs, keys) in the vendor loggers' records until ``close``."""
        self._redactions.append(_REDACTOR.register(secret_parts(*secrets)))

    def _forget_secrets(self) -> None:
        for token in self._redactions:
            _REDACTOR.unregister(token)
        self._redactions.clear()

    @property
    def label(self) -> str:
        """How messages name it: ``NAME (TYPE)``, or ``TYPE`` when they are the same."""
        return self.type if self.name == self.type else f"{self.name} ({self.type})"

    @abstractmethod
    def send(self, notification: Notification) -> None:
        """Deliver ``notification``; raise ``ReceiverError`` on failure."""

    def close(self) -> None:
        """Release connections. Safe to call twice."""
        self._forget_secrets()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), bounded; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class HttpReceiver(Receiver):
    """A receiver that POSTs JSON to one secret URL with httpx."""

    def __init__(self, name: str, url: str, *, timeout: float = 10.0) -> None:
        super().__init__(name)
        self.__url = url
        self._keep_out_of_logs(url)
        self.timeout = timeout
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def _post(self, body: Any) -> httpx.Response:
        """POST ``body`` as JSON; a non-2xx answer or a transport error is ``ReceiverError``.

        The one place httpx's errors are mapped: their text names the URL, so none of it
        is kept (``from None``), only the error's class.
        """
        try:
            response = self._client.post(self.__url, json=body)
        except httpx.TimeoutException:
            raise ReceiverError(
                f"receiver {self.label} did not answer within {self.timeout:g} s",
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            raise ReceiverError(
                f"receiver {self.label} cannot be reached ({type(exc).__name__})",
                retryable=True,
                hint="check that the receiver's URL (kept in the secret store) is right",
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return response
        retryable = status == 429 or status >= 500
        hint = None
        if status in (401, 403, 404):
            hint = "check the receiver's URL or key in the secret store"
        raise ReceiverError(
            f"receiver {self.label} answered HTTP {status}",
            retryable=retryable,
            status=status,
            retry_after=parse_retry_after(response.headers.get("retry-after"))
            if retryable
            else None,
            hint=hint,
        )

    def close(self) -> None:
        self._client.close()
        super().close()


class InMemoryReceiver(Receiver):
    """The in-memory twin: records what it is sent; can be told to fail or to be slow.

    ``fail`` is a list of ``ReceiverError``s raised by the next calls, one each, before
    calls succeed again; ``delay`` seconds are waited in each call (``close`` cuts the
    wait short, and the call then fails, as a connection cut would).
    """

    type = "memory"

    def __init__(
        self,
        name: str = "memory",
        *,
        fail: list[ReceiverError] | None = None,
        delay: float = 0.0,
        resend_interval: float | None = None,
    ) -> None:
        super().__init__(name)
        self.fail = list(fail or [])
        self.delay = delay
        self.resend_interval = resend_interval
        self.notifications: list[Notification] = []
        self.calls = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.received = threading.Event()

    def send(self, notification: Notification) -> None:
        with self._lock:
            self.calls += 1
            error = self.fail.pop(0) if self.fail else None
        if self.delay and self._closed.wait(self.delay):
            raise ReceiverError(f"receiver {self.label} was closed", retryable=True)
        if error is not None:
            raise error
        with self._lock:
            self.notifications.append(notification)
        self.received.set()

    def close(self) -> None:
        self._closed.set()
        super().close()

    @property
    def events(self) -> list[AlertEvent]:
        """Every event received, in order."""
        with self._lock:
            return [e for n in self.notifications for e in n.events]
