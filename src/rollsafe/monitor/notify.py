"""``Notifier``: alert events to every receiver, off the monitor's loop.

- Grouping: one ``submit`` (one pass's events of one environment) is one
  ``Notification`` per receiver: ten services failing at once make one notification.
  A receiver that fell behind gets what queued up merged into one notification.
- Off the loop: each receiver has its own worker thread and queue, so ``submit`` never
  waits, and a slow receiver delays neither the monitor nor the other receivers.
- Retries: 429, 5xx, timeouts and connection errors are retried with exponential
  backoff (``Retry-After`` honoured, bounded); other 4xx are not. Events a receiver
  could not take after the retries are carried over to its next notification.
- A failing receiver is itself reported, once per failure episode: through
  ``on_report`` (a text naming it by name and type, never its URL or key) and as a
  ``ReceiverFailing`` alert through the other receivers, resolved when it delivers again.
  It never stops the monitoring.
- Deduplication: after a receiver took an event, the marker ``{receiver}|{event_id}``
  is written to the kv namespace ``monitor/sent/{env}``; an event whose marker exists is
  not sent again, so a restarted monitor or a standby taking over sends nothing twice.
- Nothing lost to a crash: each submitted event waits in the kv namespace
  ``monitor/outbox/{env}`` until every receiver has taken it (or refused it for good); a
  Notifier starting on the same store (a restart, a standby that took over) sends what
  is left there, and the sent markers keep that from sending anything twice.
- Re-sending: receivers with a ``resend_interval`` (Alertmanager) hear about every
  firing alert again each interval while it fires, as Prometheus does.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rollsafe.errors import RollsafeError
from rollsafe.monitor.model import AlertEvent, AlertName, EventKind, Notification
from rollsafe.monitor.receivers.base import Receiver, ReceiverConfigError, ReceiverError
from rollsafe.state.base import StateStore

__all__ = ["MARKER_TTL", "OUTBOX_TTL", "Notifier", "outbox_namespace", "sent_namespace"]

_log = logging.getLogger("rollsafe.monitor")

#: sent markers older than this are pruned when a Notifier starts
MARKER_TTL = 14 * 24 * 3600.0
#: outbox entries older than this are dropped when a Notifier starts, not sent
OUTBOX_TTL = 24 * 3600.0
#: events kept for a receiver that could not take them (the newest are kept)
MAX_BACKLOG = 1000
_FAILING = "@failing"


def sent_namespace(env: str) -> str:
    """The kv namespace of ``env``'s sent markers."""
    return f"monitor/sent/{env}"


def outbox_namespace(env: str) -> str:
    """The kv namespace of ``env``'s events not yet taken by every receiver."""
    return f"monitor/outbox/{env}"


def _event_to_json(event: AlertEvent) -> dict[str, Any]:
    return {
        "kind": event.kind.value,
        "env": event.env,
        "service": event.service,
        "alertname": event.alertname,
        "severity": event.severity,
        "summary": event.summary,
        "description": event.description,
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "revision": event.revision,
        "evidence": list(event.evidence),
        "action": event.action,
    }


def _event_from_json(raw: dict[str, Any]) -> AlertEvent:
    return AlertEvent(
        kind=EventKind(raw["kind"]),
        env=str(raw["env"]),
        service=str(raw["service"]),
        alertname=str(raw["alertname"]),
        severity=str(raw["severity"]),
        summary=str(raw.get("summary", "")),
        description=str(raw.get("description", "")),
        starts_at=float(raw["starts_at"]),
        ends_at=None if raw.get("ends_at") is None else float(raw["ends_at"]),
        revision=raw.get("revision"),
        evidence=tuple(raw.get("evidence") or ()),
        action=raw.get("action"),
    )


def _report_to_log(text: str) -> None:
    _log.warning("%s", text)


class Notifier:
    """Sends alert events of environment ``env`` to ``receivers`` (which it owns and
    closes). ``firing``: the alerts firing when it starts (``AlertBook.firing_events()``),
    for the receivers that re-send them. ``sleep`` waits between retries (default: a wait
    that ``close`` interrupts); ``resend_interval`` overrides the receivers' own. With
    ``recover`` (the default) what a previous Notifier left in the outbox is sent first:
    create it once this monitor is the one that sends (the leader)."""

    def __init__(
        self,
        receivers: Sequence[Receiver],
        store: StateStore,
        env: str,
        *,
        on_report: Callable[[str], None] = _report_to_log,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        resend_interval: float | None = None,
        firing: Iterable[AlertEvent] = (),
        recover: bool = True,
    ) -> None:
        self.store = store
        self.env = env
        self.on_report = on_report
        self.clock = clock
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._lock = threading.Lock()
        self._firing: dict[str, AlertEvent] = {}
        #: event id -> names of the receivers that have not finished with it yet
        self._outstanding: dict[str, set[str]] = {}
        #: events to keep in the outbox (its thread writes them), and those it holds
        self._outbox: queue.SimpleQueue[Notification | None] = queue.SimpleQueue()
        self._outbox_lock = threading.Lock()
        self._written: set[str] = set()
        names = [r.name for r in receivers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            for receiver in receivers:  # they are ours: closed even when refused
                receiver.close()
            raise ReceiverConfigError(
                f"two receivers of {env} are named {twice[0]!r}",
                hint="give each receiver of `alerts:` its own `name`",
            )
        self._track(firing)
        self._prune()
        self._workers = [_Worker(self, r, resend_interval) for r in receivers]
        left = self._recover() if recover and self._workers else []
        if left:
            self._written.update(e.event_id for e in left)
            self._track(left)
            self._queue(Notification(self.env, tuple(left), at=self.clock()), persist=False)
        self._outbox_thread = threading.Thread(
            target=self._write_outbox, name=f"rollsafe-outbox-{env}", daemon=True
        )
        self._outbox_thread.start()
        for worker in self._workers:
            worker.thread.start()

    @property
    def receivers(self) -> list[Receiver]:
        return [w.receiver for w in self._workers]

    def submit(self, events: Sequence[AlertEvent]) -> None:
        """Queue one pass's events for every receiver and return at once."""
        events = tuple(events)
        if not events or self._stop.is_set():
            return
        self._track(events)
        self._queue(Notification(self.env, events, at=self.clock()), persist=True)

    def _queue(self, notification: Notification, *, persist: bool) -> None:
        """Hand ``notification`` to every worker; its events wait in the outbox (written by
        the outbox thread, never by the caller) until every receiver is done with them."""
        if not self._workers:
            return
        names = {w.receiver.name for w in self._workers}
        with self._lock:
            for event in notification.events:
                self._outstanding.setdefault(event.event_id, set()).update(names)
        if persist:
            self._outbox.put(notification)
        for worker in self._workers:
            worker.put(notification)

    def _write_outbox(self) -> None:
        """The outbox thread: a store that is slow or down delays no caller and no send."""
        ns = outbox_namespace(self.env)
        while True:
            notification = self._outbox.get()
            if notification is None:
                return
            try:
                self._keep(ns, notification)
            except Exception as exc:  # never end the thread; the text may not be ours
                self._report(f"monitor state: the outbox failed ({type(exc).__name__})")

    def _keep(self, ns: str, notification: Notification) -> None:
        for event in notification.events:
            with self._outbox_lock:
                with self._lock:
                    waiting = event.event_id in self._outstanding
                if not waiting:
                    continue  # every receiver was quicker: nothing to keep
                entry = {"at": notification.at, "event": _event_to_json(event)}
                put = functools.partial(self.store.kv_put, ns, event.event_id, entry)
                if self._kv(put, "write the outbox") is not None:
                    self._written.add(event.event_id)

    def flush(self, timeout: float) -> bool:
        """Wait until every receiver has handled what was submitted (sent, or given up
        after its retries); False if ``timeout`` seconds passed first."""
        deadline = time.monotonic() + timeout
        return all(w.wait_idle(deadline) for w in self._workers)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the workers (what is still queued is dropped: ``flush`` first) and close
        the receivers. Safe to call twice."""
        if self._stop.is_set():
            return
        self._stop.set()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.wake()
        self._outbox.put(None)
        # the outbox first: what is still being sent must be found by the next start
        self._outbox_thread.join(max(deadline - time.monotonic(), 0.0))
        for worker in self._workers:
            worker.thread.join(max(deadline - time.monotonic(), 0.0))
        for worker in self._workers:
            try:
                worker.receiver.close()
            except Exception:  # closing is best effort; a receiver's text may name its URL
                _log.warning("receiver %s did not close cleanly", worker.receiver.label)

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Notifier(env={self.env!r}, receivers={[r.name for r in self.receivers]!r})"

    # -- shared by the workers --
    def _track(self, events: Iterable[AlertEvent]) -> None:
        """Keep the firing alerts for the receivers that re-send them."""
        with self._lock:
            for event in events:
                if event.kind is EventKind.RESOLVED:
                    self._firing.pop(event.fingerprint, None)
                else:
                    plain = dataclasses.replace(event, kind=EventKind.FIRING, ends_at=None)
                    self._firing[event.fingerprint] = plain

    def _finished(self, receiver: str, event_ids: Iterable[str]) -> None:
        """``receiver`` is done with these events (sent, or refused for good): once every
        receiver is, they leave the outbox."""
        gone = []
        with self._lock:
            for event_id in event_ids:
                waiting = self._outstanding.get(event_id)
                if waiting is None:
                    continue
                waiting.discard(receiver)
                if not waiting:
                    del self._outstanding[event_id]
                    gone.append(event_id)
        ns = outbox_namespace(self.env)
        with self._outbox_lock:
            for event_id in gone:
                if event_id in self._written:
                    self._written.discard(event_id)
                    delete = functools.partial(self.store.kv_delete, ns, event_id)
                    self._kv(delete, "clear the outbox")

    def _recover(self) -> list[AlertEvent]:
        """The events a previous Notifier left in the outbox (oldest first); stale or
        unreadable entries are dropped."""
        ns = outbox_namespace(self.env)
        found = self._kv(functools.partial(self.store.kv_list, ns), "read the outbox")
        if not isinstance(found, dict):
            return []
        oldest = self.clock() - OUTBOX_TTL
        kept: list[tuple[float, AlertEvent]] = []
        for key, (entry, _version) in found.items():
            try:
                at = float(entry["at"])
                event = _event_from_json(entry["event"])
            except (KeyError, TypeError, ValueError):
                at, event = 0.0, None
            if event is None or at < oldest or event.env != self.env:
                self._kv(functools.partial(self.store.kv_delete, ns, key), "clear the outbox")
                continue
            kept.append((at, event))
        kept.sort(key=lambda pair: pair[0])
        return [event for _, event in kept]

    def _firing_now(self) -> list[AlertEvent]:
        with self._lock:
            return list(self._firing.values())

    def _broadcast(self, event: AlertEvent, *, exclude: _Worker) -> None:
        """A ``ReceiverFailing`` event to every receiver but the failing one."""
        if self._stop.is_set():
            return
        self._track([event])
        notification = Notification(self.env, (event,), at=self.clock())
        for worker in self._workers:
            if worker is not exclude:
                worker.put(notification)

    def _report(self, text: str) -> None:
        try:
            self.on_report(text)
        except Exception:  # a broken callback never stops the sending
            _log.warning("%s", text)

    def _kv(self, action: Callable[[], object], what: str) -> object:
        """A kv operation whose failure is reported, never raised (sending goes on)."""
        try:
            return action()
        except RollsafeError as exc:
            self._report(f"monitor state: cannot {what}: {exc.message}")
            return None

    def _prune(self) -> None:
        ns = sent_namespace(self.env)
        found = self._kv(lambda: self.store.kv_list(ns), "read the sent markers")
        if not isinstance(found, dict):
            return
        oldest = self.clock() - MARKER_TTL
        for key, (value, _version) in found.items():
            at = value.get("at") if isinstance(value, dict) else None
            if not key.endswith(_FAILING) and isinstance(at, int | float) and at < oldest:
                self._kv(functools.partial(self.store.kv_delete, ns, key), "prune a marker")


class _Worker:
    """One receiver's queue and thread."""

    def __init__(self, notifier: Notifier, receiver: Receiver, resend: float | None) -> None:
        self.notifier = notifier
        self.receiver = receiver
        self.resend_interval = resend if resend is not None else receiver.resend_interval
        self.queue: collections.deque[Notification] = collections.deque()
        self.cond = threading.Condition()
        self.busy = False
        self.backlog: list[AlertEvent] = []
        self.last_sent = time.monotonic()
        self.ns = sent_namespace(notifier.env)
        failing = notifier._kv(
            lambda: notifier.store.kv_get(self.ns, self._key(_FAILING)), "read a receiver's state"
        )
        self.failing: dict[str, object] | None = None
        if isinstance(failing, tuple) and isinstance(failing[0], dict):
            self.failing = failing[0]
        self.thread = threading.Thread(
            target=self._run, name=f"rollsafe-notify-{receiver.name}", daemon=True
        )

    def _key(self, event_id: str) -> str:
        return f"{self.receiver.name}|{event_id}"

    # -- the queue --
    def put(self, notification: Notification) -> None:
        with self.cond:
            self.queue.append(notification)
            self.cond.notify_all()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def wait_idle(self, deadline: float) -> bool:
        with self.cond:
            while self.queue or self.busy:
                left = deadline - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    return False
                self.cond.wait(left)
            return True

    def _resend_due(self) -> float | None:
        """Seconds until the next re-send (<= 0: now); None: nothing to re-send."""
        if self.resend_interval is None or not self._resendable():
            return None
        return self.last_sent + self.resend_interval - time.monotonic()

    def _resendable(self) -> list[AlertEvent]:
        own = f"receiver:{self.receiver.name}"
        return [e for e in self.notifier._firing_now() if e.service != own]

    def _run(self) -> None:
        stop = self.notifier._stop
        while True:
            with self.cond:
                while not self.queue and not stop.is_set():
                    due = self._resend_due()
                    if due is not None and due <= 0:
                        break
                    self.cond.wait(due)
                if stop.is_set():
                    self.queue.clear()
                    self.cond.notify_all()
                    return
                items = list(self.queue)
                self.queue.clear()
                self.busy = True
            try:
                if items:
                    self._deliver(items)
                else:
                    self._resend()
            except Exception as exc:  # a bug must not end the worker; no text: it may hold a URL
                self.notifier._report(
                    f"receiver {self.receiver.label}: internal error ({type(exc).__name__})"
                )
            finally:
                with self.cond:
                    self.busy = False
                    self.cond.notify_all()

    # -- sending --
    def _deliver(self, items: list[Notification]) -> None:
        seen: set[str] = set()
        pending: list[AlertEvent] = []
        for event in [*self.backlog, *(e for n in items for e in n.events)]:
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
            if not self._was_sent(event):
                pending.append(event)
        self.backlog = []
        if pending and not self._attempt(
            Notification(self.notifier.env, tuple(pending), at=items[-1].at), True
        ):
            return  # stopping: what was not sent stays in the outbox for the next start
        kept = {e.event_id for e in self.backlog}
        self.notifier._finished(self.receiver.name, seen - kept)

    def _resend(self) -> None:
        firing = self._resendable()
        self.last_sent = time.monotonic()  # also after a failure: wait a full interval
        if firing:
            self._attempt(Notification(self.notifier.env, tuple(firing)), False)

    def _was_sent(self, event: AlertEvent) -> bool:
        store = self.notifier.store
        found = self.notifier._kv(
            lambda: store.kv_get(self.ns, self._key(event.event_id)), "read a sent marker"
        )
        return found is not None

    def _mark(self, event_ids: Iterable[str]) -> None:
        store = self.notifier.store
        at = self.notifier.clock()
        for event_id in event_ids:
            put = functools.partial(store.kv_put, self.ns, self._key(event_id), {"at": at})
            self.notifier._kv(put, "write a sent marker")

    def _attempt(self, notification: Notification, mark: bool) -> bool:
        """Send with retries; then mark, or report the failure (events a retry may still
        deliver go to ``backlog``). False if the Notifier stopped meanwhile."""
        notifier = self.notifier
        attempt = 0
        while True:
            try:
                self.receiver.send(notification)
            except ReceiverError as err:
                if mark and err.sent:
                    self._mark(err.sent)
                if notifier._stop.is_set():
                    return False
                if err.retryable and attempt < notifier.retries:
                    delay = err.retry_after
                    if delay is None:
                        delay = min(notifier.backoff * 2**attempt, notifier.max_backoff)
                    attempt += 1
                    notifier._sleep(delay)
                    continue
                if mark and err.retryable:
                    done = set(err.sent)
                    left = [e for e in notification.events if e.event_id not in done]
                    self.backlog = left[-MAX_BACKLOG:]
                self._failed(err)
                return True
            except Exception as exc:  # a receiver's bug, or its library's: only the class
                if notifier._stop.is_set():
                    return False
                self._failed(
                    ReceiverError(
                        f"receiver {self.receiver.label} failed ({type(exc).__name__})",
                        retryable=False,
                    )
                )
                return True
            if mark:
                self._mark(e.event_id for e in notification.events)
            self.last_sent = time.monotonic()
            self._recovered()
            return True

    # -- failure episodes --
    def _failing_event(self, kind: EventKind, since: float, message: str) -> AlertEvent:
        return AlertEvent(
            kind=kind,
            env=self.notifier.env,
            service=f"receiver:{self.receiver.name}",
            alertname=AlertName.RECEIVER_FAILING.value,
            severity="warning",
            summary=f"alert receiver {self.receiver.label} is failing",
            description=message,
            starts_at=since,
            ends_at=self.notifier.clock() if kind is EventKind.RESOLVED else None,
            evidence=(f"monitor:{AlertName.RECEIVER_FAILING.value}/{self.receiver.name}",),
        )

    def _failed(self, err: ReceiverError) -> None:
        if self.failing is not None:
            return  # reported once per episode
        since = self.notifier.clock()
        self.failing = {"since": since, "message": err.message}
        store = self.notifier.store
        self.notifier._kv(
            lambda: store.kv_put(self.ns, self._key(_FAILING), self.failing),
            "record a failing receiver",
        )
        text = err.message + (f" ({err.hint})" if err.hint else "")
        self.notifier._report(f"{text}; the monitoring goes on")
        self.notifier._broadcast(
            self._failing_event(EventKind.FIRING, since, err.message), exclude=self
        )

    def _recovered(self) -> None:
        if self.failing is None:
            return
        since = self.failing.get("since")
        message = str(self.failing.get("message", ""))
        self.failing = None
        store = self.notifier.store
        self.notifier._kv(
            lambda: store.kv_delete(self.ns, self._key(_FAILING)), "clear a failing receiver"
        )
        self.notifier._report(f"receiver {self.receiver.label} delivers again")
        if isinstance(since, int | float):
            self.notifier._broadcast(
                self._failing_event(EventKind.RESOLVED, float(since), message), exclude=self
            )
