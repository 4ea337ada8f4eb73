"""Probe results rolled up by hour and by day as they arrive, for the status page.

The status page shows uptime over 24 h to 90 days, a 90-day bar and response-time charts
for every service. Recomputing that from one-minute buckets on each request costs 130,000
buckets per service for 90 days; here each closed minute (``ProbeRecorder``'s hook) is
folded once into its service's rollups. ``COUNTS`` is ``[total, failed, latency_sum,
latency_max]``; ``HOUR``/``DAY`` the epoch second its UTC hour or day starts (a decimal
string as a key). Three documents per service, so that the overview reads little:

- ``monitor/rollups/{env}``, key ``{service}``, the recent document: ``{"hours": {HOUR:
  COUNTS}, "days": {DAY: COUNTS}, "archived_hour", "archived_day", "updated"}``. It
  holds the last 26 to 30 hours and the current day only (about 130 numbers): the
  overview reads it for every service on each refresh, and it changes once a minute;
- ``monitor/rollups-daily/{env}``, key ``{service}``: ``{"days": {DAY: COUNTS}}``, the
  closed days up to ``monitor.retention.daily``, moved there in one write at the first
  minute of each day. The status page reads them once, then again for a service whose
  ``archived_day`` moved on;
- ``monitor/rollups-hourly/{env}``, key ``{service}``: ``{"hours": {HOUR: COUNTS}}``, the
  older hours up to ``monitor.retention.hourly`` (moved every 4 hours), read by a
  service's page only.

A move sets the entries it moves (repeated after a lost write, it counts once); a minute
that arrives after its hour or day moved (``archived_*``) is added to the moved entry
instead, and readers add a recent entry at or before ``archived_*`` to the moved one
(``merge_moved``). Every write is a compare-and-swap on the version last seen; a conflict
(another monitor, around a restart or a leader change, folded its own minutes) re-reads
and adds again, so both monitors' counts stay. A write the store refuses keeps its counts
in memory and is tried again with the next ``flush``; it never stops the monitor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollsafe.manifest._monitor_resolved import ResolvedRetention
from rollsafe.state.base import StateConflictError, StateError, StateStore

__all__ = [
    "DAY",
    "HOUR",
    "RECENT_KEEP",
    "RECENT_MAX",
    "Rollup",
    "RollupWriter",
    "daily_namespace",
    "hourly_namespace",
    "merge_moved",
    "prune_rollups",
    "read_days",
    "read_hours",
    "read_rollups",
    "rollups_namespace",
]

_log = logging.getLogger("rollsafe.monitor")

HOUR = 3600
DAY = 86400
#: hours the recent document keeps after a move (the overview's 24 h, and the hour open)
RECENT_KEEP = 26 * HOUR
#: an hour older than this in the recent document moves the old hours to the hourly one
RECENT_MAX = 30 * HOUR
#: compare-and-swap attempts of one write before its counts wait for the next one
_ATTEMPTS = 4

#: [total, failed, latency_sum, latency_max]
Counts = list[float]
RetentionOf = Callable[[str], ResolvedRetention]


def rollups_namespace(env: str) -> str:
    """The kv namespace of ``env``'s recent rollup documents (one per service)."""
    return f"monitor/rollups/{env}"


def daily_namespace(env: str) -> str:
    """The kv namespace of ``env``'s closed daily rollups (one document per service)."""
    return f"monitor/rollups-daily/{env}"


def hourly_namespace(env: str) -> str:
    """The kv namespace of ``env``'s older hourly rollups (one document per service)."""
    return f"monitor/rollups-hourly/{env}"


def _default_retention(_service: str) -> ResolvedRetention:
    return ResolvedRetention()


def _add(into: dict[str, Counts], key: str, counts: Counts) -> None:
    old = into.get(key)
    # 0.1 ms is precise enough for a latency, and short numbers read faster
    if old is None:
        into[key] = [counts[0], counts[1], round(counts[2], 4), round(counts[3], 4)]
    else:
        into[key] = [
            old[0] + counts[0],
            old[1] + counts[1],
            round(old[2] + counts[2], 4),
            max(old[3], round(counts[3], 4)),
        ]


@dataclass
class _Delta:
    """Counts folded in memory and not yet written."""

    hours: dict[str, Counts] = field(default_factory=dict)
    days: dict[str, Counts] = field(default_factory=dict)
    updated: float = 0.0


def _doc(raw: Any) -> dict[str, Any]:
    """A stored recent document, or an empty one for anything else."""
    if not isinstance(raw, Mapping):
        raw = {}
    return {
        "hours": dict(raw.get("hours") or {}),
        "days": dict(raw.get("days") or {}),
        "archived_hour": int(raw.get("archived_hour") or 0),
        "archived_day": int(raw.get("archived_day") or 0),
        "updated": float(raw.get("updated") or 0.0),
    }


def _apply(doc: dict[str, Any], delta: _Delta) -> dict[str, Any]:
    made = _doc(doc)
    for key, counts in delta.hours.items():
        _add(made["hours"], key, counts)
    for key, counts in delta.days.items():
        _add(made["days"], key, counts)
    made["updated"] = max(made["updated"], delta.updated)
    return made


def _older(entries: Mapping[str, Any], cutoff: float) -> list[str]:
    return [k for k in entries if _int(k) < cutoff]


def _int(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        return -1  # not ours: dropped as old


class RollupWriter:
    """Folds ``env``'s closed probe buckets into the rollup documents of ``store``.

    ``retention_of(service)`` gives a service's ``monitor.retention`` (default: the
    defaults). Not thread-safe: the monitor's loop is its only caller.
    """

    def __init__(
        self, store: StateStore, env: str, *, retention_of: RetentionOf | None = None
    ) -> None:
        self.store = store
        self.env = env
        self._retention = retention_of or _default_retention
        self._ns = rollups_namespace(env)
        #: service -> counts not written yet
        self._pending: dict[str, _Delta] = {}
        #: service -> (document, version) as last written or read
        self._seen: dict[str, tuple[dict[str, Any], int]] = {}
        #: the store's last refusal while it lasts
        self.state_error: str | None = None

    def add(
        self,
        service: str,
        start: int,
        total: int,
        failed: int,
        latency_sum: float,
        latency_max: float,
        *,
        at: float | None = None,
    ) -> None:
        """Count a closed minute of ``service`` (its start and counts) in memory;
        ``flush`` writes it. ``at``: when its last probe was made (default: its end)."""
        if total <= 0:
            return
        delta = self._pending.setdefault(service, _Delta())
        counts: Counts = [total, failed, latency_sum, latency_max]
        _add(delta.hours, str(int(start) // HOUR * HOUR), counts)
        _add(delta.days, str(int(start) // DAY * DAY), counts)
        delta.updated = max(delta.updated, float(at if at is not None else start + 60))

    @property
    def pending(self) -> int:
        """Services whose counts wait to be written."""
        return len(self._pending)

    def flush(self, now: float) -> None:
        """Write every service's pending counts (one compare-and-swap each, and now and
        then a move of closed days and old hours)."""
        refused = False
        for service in list(self._pending):
            try:
                self._write(service, now)
            except StateError as exc:
                refused = True
                if self.state_error is None:  # once per outage
                    _log.warning("rollups not saved (retried each pass): %s", exc)
                self.state_error = exc.message
        if not refused:
            self.state_error = None

    def _write(self, service: str, now: float) -> None:
        delta = self._pending[service]
        kept = self._retention(service)
        day_now = int(now) // DAY * DAY
        for _attempt in range(_ATTEMPTS):
            seen = self._seen.get(service)
            if seen is None:
                found = self.store.kv_get(self._ns, service)
                seen = (_doc(found[0]), found[1]) if found is not None else (_doc(None), 0)
            doc = _apply(seen[0], delta)
            closed = _older(doc["days"], day_now)
            if closed:
                moved = {k: doc["days"].pop(k) for k in closed}
                late = {k for k in moved if int(k) <= doc["archived_day"]}
                _move(
                    self.store,
                    daily_namespace(self.env),
                    service,
                    "days",
                    moved,
                    late,
                    now - kept.daily,
                )
                doc["archived_day"] = max([doc["archived_day"], *map(int, moved)])
            if _older(doc["hours"], now - RECENT_MAX):
                moved = {k: doc["hours"].pop(k) for k in _older(doc["hours"], now - RECENT_KEEP)}
                late = {k for k in moved if int(k) <= doc["archived_hour"]}
                _move(
                    self.store,
                    hourly_namespace(self.env),
                    service,
                    "hours",
                    moved,
                    late,
                    now - kept.hourly,
                )
                doc["archived_hour"] = max([doc["archived_hour"], *map(int, moved)])
            try:
                version = self.store.kv_put(self._ns, service, doc, expect_version=seen[1])
            except StateConflictError:
                self._seen.pop(service, None)  # another writer: read again, add again
                continue
            self._seen[service] = (doc, version)
            del self._pending[service]
            return
        self._seen.pop(service, None)


def _move(
    store: StateStore,
    ns: str,
    service: str,
    field_name: str,
    entries: Mapping[str, Counts],
    late: set[str],
    cutoff: float,
) -> None:
    """Put ``entries`` into the service's document of ``ns`` (``{field_name: {...}}``):
    set (a move repeated after a lost write counts once), or added for the ``late``
    ones (minutes that arrived after their hour or day had moved). Entries past
    ``cutoff`` go."""
    for _attempt in range(_ATTEMPTS):
        found = store.kv_get(ns, service)
        raw = found[0] if found is not None and isinstance(found[0], Mapping) else {}
        stored = dict(raw.get(field_name) or {})
        for key, counts in entries.items():
            if key in late:
                _add(stored, key, counts)
            else:
                stored[key] = counts
        for key in _older(stored, cutoff):
            del stored[key]
        try:
            store.kv_put(
                ns,
                service,
                {field_name: stored},
                expect_version=found[1] if found is not None else 0,
            )
            return
        except StateConflictError:
            continue
    raise StateConflictError(f"{ns}/{service} keeps changing")


@dataclass(frozen=True)
class Rollup:
    """A service's recent rollup document as stored: ``hours`` and ``days`` map the
    bucket start (a decimal string) to ``[total, failed, latency_sum, latency_max]``;
    ``archived_day``/``archived_hour``: the newest day and hour moved out (an entry at
    or before it holds minutes that came late: add it to the moved one); ``updated``: the
    end of the last minute folded; ``version``: the stored version. Kept as stored, not
    converted: the overview reads a few entries of a thousand documents."""

    service: str
    hours: Mapping[str, Sequence[float]]
    days: Mapping[str, Sequence[float]]
    archived_hour: int
    archived_day: int
    updated: float | None
    version: int

    @classmethod
    def from_json(cls, service: str, raw: Any, version: int = 0) -> Rollup:
        """The document as stored (anything else reads as empty)."""
        if not isinstance(raw, Mapping):
            raw = {}
        hours = raw.get("hours")
        days = raw.get("days")
        return cls(
            service=service,
            hours=hours if isinstance(hours, Mapping) else {},
            days=days if isinstance(days, Mapping) else {},
            archived_hour=_whole(raw.get("archived_hour")),
            archived_day=_whole(raw.get("archived_day")),
            updated=float(raw["updated"]) if raw.get("updated") else None,
            version=version,
        )


def _whole(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _counts(raw: Any) -> dict[int, tuple[int, int, float, float]]:
    out: dict[int, tuple[int, int, float, float]] = {}
    if not isinstance(raw, Mapping):
        return out
    for key, value in raw.items():
        try:
            out[int(key)] = (int(value[0]), int(value[1]), float(value[2]), float(value[3]))
        except (ValueError, TypeError, IndexError, KeyError):
            continue
    return out


def merge_moved(
    moved: Mapping[int, Sequence[float]],
    recent: Mapping[str, Sequence[float]],
    archived: int,
) -> dict[int, Sequence[float]]:
    """The buckets of a moved document plus the recent document's: a recent entry at or
    before ``archived`` came late and adds to the moved one; a later one replaces it."""
    out = dict(moved)
    for start, counts in _counts(recent).items():
        old = out.get(start)
        if old is not None and start <= archived:
            out[start] = (
                old[0] + counts[0],
                old[1] + counts[1],
                old[2] + counts[2],
                max(old[3], counts[3]),
            )
        else:
            out[start] = counts
    return out


def read_rollups(store: StateStore, env: str) -> dict[str, Rollup]:
    """Every service's recent rollup document in ``env``: one ``kv_list``. ``StateError``
    when the store cannot be read."""
    return {
        service: Rollup.from_json(service, raw, version)
        for service, (raw, version) in store.kv_list(rollups_namespace(env)).items()
    }


def read_days(
    store: StateStore, env: str, service: str | None = None
) -> dict[str, dict[int, tuple[int, int, float, float]]]:
    """The moved (closed) days of ``service`` (None: every service, one ``kv_list``):
    service -> day start -> counts. Add the recent document's with ``merge_moved``."""
    ns = daily_namespace(env)
    if service is not None:
        found = store.kv_get(ns, service)
        raw = found[0] if found is not None and isinstance(found[0], Mapping) else {}
        return {service: _counts(raw.get("days"))}
    return {
        name: _counts(raw.get("days") if isinstance(raw, Mapping) else None)
        for name, (raw, _version) in store.kv_list(ns).items()
    }


def read_hours(store: StateStore, env: str, service: str) -> dict[int, Sequence[float]]:
    """Every hour of ``service`` kept: the moved ones and the recent document's."""
    found = store.kv_get(hourly_namespace(env), service)
    moved = _counts(found[0].get("hours")) if found and isinstance(found[0], Mapping) else {}
    recent = store.kv_get(rollups_namespace(env), service)
    rollup = Rollup.from_json(service, recent[0] if recent else None)
    return merge_moved(moved, rollup.hours, rollup.archived_hour)


def prune_rollups(
    store: StateStore, env: str, now: float, *, retention_of: RetentionOf | None = None
) -> int:
    """Drop the days and hours past each service's retention from ``env``'s rollup
    documents (a service gone from the manifest follows the defaults) and delete the
    documents left empty; return how many documents changed. One ``kv_list`` per
    namespace; a refused read or write is logged and stops the pruning."""
    retention = retention_of or _default_retention
    changed = 0
    try:
        for service, (raw, version) in store.kv_list(rollups_namespace(env)).items():
            doc = _doc(raw)
            kept = retention(service)
            old_days = _older(doc["days"], now - kept.daily)
            old_hours = _older(doc["hours"], now - kept.hourly)
            if not old_days and not old_hours:
                continue
            for key in old_days:
                del doc["days"][key]
            for key in old_hours:
                del doc["hours"][key]
            keep = bool(doc["days"] or doc["hours"])
            changed += _put_or_delete(store, rollups_namespace(env), service, doc, version, keep)
        moved: list[tuple[str, str, Callable[[str], float]]] = [
            (daily_namespace(env), "days", lambda s: now - retention(s).daily),
            (hourly_namespace(env), "hours", lambda s: now - retention(s).hourly),
        ]
        for ns, name, cutoff in moved:
            for service, (raw, version) in store.kv_list(ns).items():
                entries = dict(raw.get(name) or {}) if isinstance(raw, Mapping) else {}
                old = _older(entries, cutoff(service))
                if not old:
                    continue
                for key in old:
                    del entries[key]
                changed += _put_or_delete(
                    store, ns, service, {name: entries}, version, bool(entries)
                )
    except StateError as exc:
        _log.warning("rollups not pruned: %s", exc)
    return changed


def _put_or_delete(
    store: StateStore, ns: str, key: str, doc: dict[str, Any], version: int, keep: bool
) -> int:
    if not keep:
        store.kv_delete(ns, key)
        return 1
    try:
        store.kv_put(ns, key, doc, expect_version=version)
    except StateConflictError:
        return 0  # the monitor wrote meanwhile: it trims as it writes
    return 1
