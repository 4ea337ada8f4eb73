"""``AlertBook``: alerts as state, not messages.

Each (service, alert) pair goes inactive -> pending (first failing check) -> firing
(``failure_threshold`` failing checks in a row) -> inactive (``success_threshold``
passing checks in a row). ``observe`` turns one pass's observations into the events to
send: firing, resolved, and a reminder every ``repeat`` while an alert fires.

A firing ``ServiceDown`` of a service inhibits that service's ``High5xxRate`` and log
alerts: their firing events (and reminders) are withheld, and sent afterwards if they
still fire once ``ServiceDown`` has resolved. An alert that resolves while withheld was
never announced, so its resolve is not sent either.

The state lives in the ``StateStore`` (namespace ``monitor/alerts/{env}``, key
``{service}/{alertname}``) and is written on every change, so a restarted monitor (or a
standby that took over and called ``reload``) neither announces again nor forgets: a
firing alert stays firing and resolves once. A healthy alert with nothing to remember
has no key at all, so a healthy pass writes nothing.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from rollsafe.manifest._monitor_resolved import ResolvedMonitor
from rollsafe.monitor.model import (
    INHIBITED_BY_DOWN,
    AlertEvent,
    AlertName,
    AlertStatus,
    EventKind,
    Observation,
)
from rollsafe.state.base import StateError, StateStore

__all__ = ["AlertBook", "AlertState", "is_inhibited_by_down", "namespace"]

_log = logging.getLogger("rollsafe.monitor")
_BUILT_IN = frozenset(a.value for a in AlertName)


def namespace(env: str) -> str:
    """The kv namespace of ``env``'s alert states."""
    return f"monitor/alerts/{env}"


def is_inhibited_by_down(alertname: str) -> bool:
    """Whether a firing ``ServiceDown`` of the same service withholds this alert: the
    5xx alert and every log alert (any name that is not a built-in alert)."""
    return alertname in INHIBITED_BY_DOWN or alertname not in _BUILT_IN


@dataclass
class AlertState:
    """What is remembered of one (service, alert) pair; JSON in the kv store."""

    service: str
    alertname: str
    status: str = AlertStatus.INACTIVE.value
    failures: int = 0
    successes: int = 0
    #: when the current failure began (the first failing check): the alert's ``startsAt``
    since: float = 0.0
    #: when it fired (reached the failure threshold)
    fired_at: float | None = None
    #: when it was last announced (firing or reminder); None: not announced yet
    notified_at: float | None = None
    #: withheld by a firing ServiceDown of the same service (last pass)
    inhibited: bool = False
    severity: str = "critical"
    summary: str = ""
    description: str = ""
    revision: str | None = None
    evidence: list[str] = field(default_factory=list)
    value: float | None = None
    #: the revision and severity the alert was announced with: its resolve and reminders
    #: carry the same labels, so receivers pair them (Alertmanager keys alerts by labels)
    sent_revision: str | None = None
    sent_severity: str | None = None

    @property
    def key(self) -> str:
        return f"{self.service}/{self.alertname}"

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AlertState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def _signature(state: AlertState) -> tuple[object, ...]:
    """What must survive a restart. The counters only while they decide something (the
    failures of a pending alert, the successes of a firing one), so a firing alert that
    keeps failing, like a healthy one, costs no write per pass."""
    pending = state.status == AlertStatus.PENDING.value
    firing = state.status == AlertStatus.FIRING.value
    return (
        state.status,
        state.failures if pending else None,
        state.successes if firing else None,
        state.since,
        state.fired_at,
        state.notified_at,
        state.inhibited,
        state.sent_revision,
        state.sent_severity,
    )


class AlertBook:
    """The alert state of one environment, kept in ``store``.

    ``settings(service)`` gives a service's ``ResolvedMonitor`` (thresholds, ``repeat``);
    an observation's own ``thresholds`` win over it. ``clock`` gives "now" for reminders.
    Thread-safe; one writer per environment at a time (the monitor's leader).
    """

    def __init__(
        self,
        store: StateStore,
        env: str,
        *,
        settings: Callable[[str], ResolvedMonitor],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.env = env
        self._settings = settings
        self._clock = clock
        self._lock = threading.RLock()
        self._states: dict[str, AlertState] = {}
        #: keys whose last write failed: written again next pass
        self._dirty: set[str] = set()
        #: the store's last refusal while it lasts (for ``--once`` and the status line)
        self.state_error: str | None = None
        self.reload()

    def reload(self) -> None:
        """Read the state again from the store (a standby that became the leader)."""
        found = self.store.kv_list(namespace(self.env))
        with self._lock:
            self._states = {}
            for key, (raw, _version) in found.items():
                if isinstance(raw, dict):
                    try:
                        self._states[key] = AlertState.from_json(raw)
                    except TypeError:
                        continue  # a state this version cannot read: start afresh
                        # (it is overwritten on the alert's next change)

    # -- one pass --
    def observe(self, observations: Iterable[Observation]) -> list[AlertEvent]:
        """Apply one pass's observations; return the events to send, in order."""
        now = self._clock()
        with self._lock:
            before = {key: _signature(state) for key, state in self._states.items()}
            ended: dict[str, float] = {}
            for obs in observations:
                state = self._states.get(f"{obs.service}/{obs.alertname}")
                if state is None:
                    if obs.ok:
                        continue  # healthy and nothing remembered: nothing to write
                    state = AlertState(service=obs.service, alertname=obs.alertname)
                    self._states[state.key] = state
                if self._apply(state, obs):
                    ended[state.key] = obs.at
            events = self._decide(now, ended)
            self._persist(before)
        return events

    def _apply(self, state: AlertState, obs: Observation) -> bool:
        """Count ``obs`` into ``state``; True if a firing alert just resolved."""
        failure, success = obs.thresholds or self._thresholds(obs.service)
        status = AlertStatus(state.status)
        if not obs.ok:
            state.failures += 1
            state.successes = 0
            state.severity = obs.severity
            state.summary = obs.summary or state.summary
            state.description = obs.description or state.description
            state.revision = obs.revision or state.revision
            state.evidence = list(obs.evidence) or state.evidence
            state.value = obs.value
            if status is AlertStatus.INACTIVE:
                state.status = AlertStatus.PENDING.value
                state.since = obs.at
            if status is not AlertStatus.FIRING and state.failures >= failure:
                state.status = AlertStatus.FIRING.value
                state.fired_at = obs.at
            return False
        state.successes += 1
        state.failures = 0
        if status is AlertStatus.PENDING:
            state.status = AlertStatus.INACTIVE.value
        elif status is AlertStatus.FIRING and state.successes >= success:
            state.status = AlertStatus.INACTIVE.value
            return True
        return False

    def _settings_of(self, service: str) -> ResolvedMonitor:
        """The service's settings; the defaults for a service the manifest no longer has
        (its alerts still resolve and remind)."""
        try:
            return self._settings(service)
        except (KeyError, LookupError):
            return ResolvedMonitor()

    def _thresholds(self, service: str) -> tuple[int, int]:
        settings = self._settings_of(service)
        return settings.failure_threshold, settings.success_threshold

    def _down(self, service: str) -> bool:
        down = self._states.get(f"{service}/{AlertName.SERVICE_DOWN.value}")
        return down is not None and down.status == AlertStatus.FIRING.value

    def _decide(self, now: float, ended: dict[str, float]) -> list[AlertEvent]:
        """The events of this pass, after every observation was counted (so a ServiceDown
        firing in the same pass as a 5xx alert inhibits it)."""
        events: list[AlertEvent] = []
        for key, state in list(self._states.items()):
            firing = state.status == AlertStatus.FIRING.value
            inhibited = (
                firing and is_inhibited_by_down(state.alertname) and self._down(state.service)
            )
            state.inhibited = inhibited
            if key in ended:
                if state.notified_at is not None:
                    events.append(self._event(state, EventKind.RESOLVED, ends_at=ended[key]))
                self._reset(state)
                continue
            if not firing or inhibited:
                continue
            if state.notified_at is None:
                state.sent_revision, state.sent_severity = state.revision, state.severity
                events.append(self._event(state, EventKind.FIRING))
                state.notified_at = now
            elif now - state.notified_at >= self._settings_of(state.service).repeat:
                due = state.notified_at + self._settings_of(state.service).repeat
                events.append(self._event(state, EventKind.REMINDER, ends_at=due))
                state.notified_at = now
        return events

    @staticmethod
    def _reset(state: AlertState) -> None:
        state.status = AlertStatus.INACTIVE.value
        state.failures = 0
        state.fired_at = None
        state.notified_at = None
        state.inhibited = False
        state.sent_revision = state.sent_severity = None

    def _event(
        self, state: AlertState, kind: EventKind, *, ends_at: float | None = None
    ) -> AlertEvent:
        return AlertEvent(
            kind=kind,
            env=self.env,
            service=state.service,
            alertname=state.alertname,
            severity=state.sent_severity or state.severity,
            summary=state.summary,
            description=state.description,
            starts_at=state.since,
            ends_at=ends_at,
            revision=state.sent_revision if state.notified_at is not None else state.revision,
            evidence=tuple(state.evidence),
        )

    def _persist(self, before: dict[str, tuple[object, ...]]) -> None:
        """Write the states whose signature changed this pass; forget the quiet ones.

        A write the store refuses (PostgreSQL gone for a moment) is retried next pass; the
        events of this pass are returned all the same, so nothing is lost to the outage
        but a restart during it.
        """
        ns = namespace(self.env)
        dirty, self._dirty = self._dirty, set()
        for key, state in list(self._states.items()):
            quiet = (
                state.status == AlertStatus.INACTIVE.value
                and state.failures == 0
                and state.notified_at is None
            )
            if quiet:
                # nothing to remember: healthy alerts have no key
                del self._states[key]
                if key in before or key in dirty:
                    self._write(key, functools.partial(self.store.kv_delete, ns, key))
            elif key in dirty or before.get(key) != _signature(state):
                put = functools.partial(self.store.kv_put, ns, key, state.to_json())
                self._write(key, put)
        for key in dirty - set(self._states):
            self._write(key, functools.partial(self.store.kv_delete, ns, key))

    def _write(self, key: str, action: Callable[[], object]) -> None:
        try:
            action()
        except StateError as exc:
            self._dirty.add(key)
            if self.state_error is None:  # once per outage, not once per alert and pass
                _log.warning("alert state not saved (retried each pass): %s", exc)
            self.state_error = exc.message
        else:
            if not self._dirty:
                self.state_error = None

    # -- reading --
    def active(self) -> list[dict[str, Any]]:
        """Every pending or firing alert, for metrics and ``--once``: labels, status,
        since, inhibited, notified, summary, value."""
        with self._lock:
            states = sorted(self._states.values(), key=lambda s: s.key)
            result = []
            for state in states:
                if state.status == AlertStatus.INACTIVE.value:
                    continue
                event = self._event(state, EventKind.FIRING)
                result.append(
                    {
                        "service": state.service,
                        "alertname": state.alertname,
                        "status": state.status,
                        "since": state.since,
                        "fired_at": state.fired_at,
                        "inhibited": state.inhibited,
                        "notified": state.notified_at is not None,
                        "labels": event.labels,
                        "annotations": event.annotations,
                        "summary": state.summary,
                        "value": state.value,
                    }
                )
            return result

    def firing_events(self) -> list[AlertEvent]:
        """A FIRING event of every announced alert that still fires (withheld or not, as
        Prometheus keeps sending inhibited alerts): what Alertmanager must keep hearing
        about, e.g. ``Notifier(..., firing=book.firing_events())`` after a restart."""
        with self._lock:
            return [
                self._event(s, EventKind.FIRING)
                for s in sorted(self._states.values(), key=lambda s: s.key)
                if s.status == AlertStatus.FIRING.value and s.notified_at is not None
            ]
