"""The monitor's alert history: every alert it announced, from firing to resolve.

``AlertBook`` keeps only what still matters for the next pass (a healthy alert has no key);
the incident report (``rollsafe why``) and ``rollsafe incidents`` need what happened: when
each alert started, fired and ended, on which revision, with which evidence, and what the
monitor did about it (an automatic rollback). ``AlertHistory`` writes one ``AlertRecord``
per announced alert, in the kv namespace ``monitor/history/{env}`` under the key
``{service}/{alertname}/{starts_at:.3f}``: a put when it fires, a second put when it
resolves (``ends_at``, and the action if the resolve carries one). Reminders write
nothing, so an alert costs two writes whatever it lasts.

A write the store refuses is logged (once per outage) and tried again with the next
``record`` call; it never stops the monitor. Records older than 90 days are pruned when
the monitor starts (``AlertHistory.prune``); issue 14's retention policy will refine this.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from rollsafe.monitor.model import AlertEvent, EventKind
from rollsafe.state.base import StateError, StateStore

__all__ = [
    "RETENTION_SECONDS",
    "AlertHistory",
    "AlertRecord",
    "history_namespace",
    "read_alert_history",
]

_log = logging.getLogger("rollsafe.monitor")

#: how long records are kept (pruned when the monitor starts; issue 14 refines retention)
RETENTION_SECONDS = 90 * 86400.0


def history_namespace(env: str) -> str:
    """The kv namespace of ``env``'s alert history."""
    return f"monitor/history/{env}"


def _key(service: str, alertname: str, starts_at: float) -> str:
    return f"{service}/{alertname}/{starts_at:.3f}"


@dataclass(frozen=True)
class AlertRecord:
    """One announced alert: from ``starts_at`` (its first failing check) through
    ``fired_at`` (the failure threshold) to ``ends_at`` (None while it fires).

    ``evidence`` holds ids as the report cites them (``monitor:ALERT/SERVICE/TIME``,
    ``log://...``, ``run://...``); ``action`` is what the monitor did about the alert
    (the automatic rollback's sentence), None when it did nothing. Never a secret value:
    the fields are the event's own labels and annotations.
    """

    service: str
    alertname: str
    severity: str
    summary: str
    description: str
    revision: str | None
    evidence: tuple[str, ...]
    starts_at: float
    fired_at: float
    ends_at: float | None
    action: str | None

    @property
    def key(self) -> str:
        """The record's kv key: ``{service}/{alertname}/{starts_at:.3f}``."""
        return _key(self.service, self.alertname, self.starts_at)

    def to_json(self) -> dict[str, Any]:
        """The record as stored (JSON types only)."""
        raw = {f.name: getattr(self, f.name) for f in fields(self)}
        raw["evidence"] = list(self.evidence)
        return raw

    @classmethod
    def from_json(cls, raw: Any) -> AlertRecord:
        """A record as stored; ``ValueError`` when ``raw`` is not one (unknown keys, from
        a newer version, are ignored)."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"an alert record is an object, not {type(raw).__name__}")
        try:
            ends_at = raw.get("ends_at")
            starts_at = float(raw["starts_at"])
            return cls(
                service=str(raw["service"]),
                alertname=str(raw["alertname"]),
                severity=str(raw.get("severity") or ""),
                summary=str(raw.get("summary") or ""),
                description=str(raw.get("description") or ""),
                revision=_text_or_none(raw.get("revision")),
                evidence=tuple(str(e) for e in raw.get("evidence") or ()),
                starts_at=starts_at,
                fired_at=float(raw.get("fired_at") or starts_at),
                ends_at=float(ends_at) if ends_at is not None else None,
                action=_text_or_none(raw.get("action")),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an alert record: {exc}") from exc

    @classmethod
    def of_event(cls, event: AlertEvent, *, fired_at: float) -> AlertRecord:
        """The record of a firing (or, with nothing recorded before, resolved) event."""
        return cls(
            service=event.service,
            alertname=event.alertname,
            severity=event.severity,
            summary=event.summary,
            description=event.description,
            revision=event.revision,
            evidence=tuple(event.evidence),
            starts_at=event.starts_at,
            fired_at=fired_at,
            ends_at=event.ends_at if event.kind is EventKind.RESOLVED else None,
            action=event.action,
        )


def _text_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None


class AlertHistory:
    """Writes ``env``'s alert history into ``store``, for every event the engine emits.

    ``clock`` gives ``fired_at`` when the caller does not know it. Not thread-safe: the
    monitor's loop (its leader) is its only writer.
    """

    def __init__(
        self, store: StateStore, env: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.env = env
        self._clock = clock
        self._ns = history_namespace(env)
        #: records written while they fire: their resolve needs no read
        self._open: dict[str, AlertRecord] = {}
        #: records whose write failed: written again with the next ``record``
        self._unsaved: dict[str, AlertRecord] = {}
        #: resolves whose record could not be read: applied again with the next ``record``
        self._unresolved: list[AlertEvent] = []
        #: the store's last refusal while it lasts
        self.state_error: str | None = None

    def record(
        self, events: Iterable[AlertEvent], *, fired_at: Mapping[str, float] | None = None
    ) -> None:
        """Record one pass's events: a firing event puts its record, a resolved one sets
        ``ends_at`` (and its ``action``, if any) on it; reminders are ignored.

        ``fired_at`` maps ``SERVICE/ALERTNAME`` to when the alert fired (the
        ``AlertBook``'s ``fired_at``); without it the record says the clock's now. Records
        whose write failed before are written again first.
        """
        changed: dict[str, AlertRecord] = dict(self._unsaved)
        unresolved, self._unresolved = self._unresolved, []
        for event in [*unresolved, *events]:
            if event.kind is EventKind.FIRING:
                when = (fired_at or {}).get(f"{event.service}/{event.alertname}")
                made = AlertRecord.of_event(event, fired_at=when or self._clock())
                self._open[made.key] = made
                changed[made.key] = made
            elif event.kind is EventKind.RESOLVED:
                try:
                    resolved = self._resolved(event, changed)
                except StateError as exc:
                    # not overwritten with less than it holds: tried again next time
                    self._unresolved.append(event)
                    self._refused(exc)
                    continue
                self._open.pop(resolved.key, None)
                changed[resolved.key] = resolved
        if changed:
            self._save(changed)

    def _resolved(self, event: AlertEvent, pending: Mapping[str, AlertRecord]) -> AlertRecord:
        """The record with the resolve's end (and action); ``StateError`` when the
        stored record was needed and could not be read."""
        key = _key(event.service, event.alertname, event.starts_at)
        before = pending.get(key) or self._open.get(key) or self._stored(key)
        if before is None:
            # fired before this history existed (or its write was lost): what the resolve
            # says is all there is
            return AlertRecord.of_event(event, fired_at=event.starts_at)
        return replace(before, ends_at=event.ends_at, action=event.action or before.action)

    def _stored(self, key: str) -> AlertRecord | None:
        found = self.store.kv_get(self._ns, key)
        if found is None:
            return None
        try:
            return AlertRecord.from_json(found[0])
        except ValueError:
            return None

    def _save(self, records: Mapping[str, AlertRecord]) -> None:
        self._unsaved = {}
        for key, record in records.items():
            try:
                self.store.kv_put(self._ns, key, record.to_json())
            except StateError as exc:
                self._unsaved[key] = record
                self._refused(exc)
        if not self._unsaved and not self._unresolved:
            self.state_error = None

    def _refused(self, exc: StateError) -> None:
        if self.state_error is None:  # once per outage, not once per record
            _log.warning("alert history not saved (retried with the next event): %s", exc)
        self.state_error = exc.message

    def prune(self, older_than: float) -> int:
        """Delete the records of alerts that ended (or, never resolved, started) before
        ``older_than``; return how many. One ``kv_list`` of the namespace, one delete per
        old record. A refused read or delete is logged and stops the pruning (the next
        start goes on); issue 14's retention policy will refine this."""
        try:
            found = self.store.kv_list(self._ns)
        except StateError as exc:
            _log.warning("alert history not pruned: %s", exc)
            return 0
        pruned = 0
        for key, (raw, _version) in found.items():
            try:
                record = AlertRecord.from_json(raw)
            except ValueError:
                continue  # not ours to judge: left for the retention policy
            if (record.ends_at if record.ends_at is not None else record.starts_at) >= older_than:
                continue
            try:
                self.store.kv_delete(self._ns, key)
            except StateError as exc:
                _log.warning("alert history not pruned: %s", exc)
                break
            self._open.pop(key, None)
            pruned += 1
        return pruned


def read_alert_history(
    store: StateStore,
    env: str,
    *,
    since: float,
    until: float,
    service: str | None = None,
) -> list[AlertRecord]:
    """The alerts of ``env`` (of ``service`` only, if given) whose
    ``[starts_at, ends_at]`` overlaps ``[since, until]``, oldest first; an alert that has
    not resolved overlaps every window from its start on. Records this version cannot
    read are skipped. ``StateError`` when the store cannot be read."""
    prefix = f"{service}/" if service is not None else ""
    found = store.kv_list(history_namespace(env), prefix)
    records: list[AlertRecord] = []
    for raw, _version in found.values():
        try:
            record = AlertRecord.from_json(raw)
        except ValueError:
            continue
        if service is not None and record.service != service:
            continue
        end = record.ends_at if record.ends_at is not None else math.inf
        if record.starts_at <= until and end >= since:
            records.append(record)
    records.sort(key=lambda r: (r.starts_at, r.service, r.alertname))
    return records
