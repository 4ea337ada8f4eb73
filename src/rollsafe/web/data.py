"""``StatusData``: the status page's read model over the state store.

``refresh`` reads what the monitor keeps for the page, a handful of reads whatever the
number of services (one ``kv_list`` per namespace: rollups, alert states, alert history,
service snapshots; the heartbeat; the newest deploy records), and rebuilds the overview's
rows of the services whose data changed. The monitor writes its heartbeat last in each
pass, so while the heartbeat's version has not moved only it and the journal's newest
records are read (and everything at least every ``FULL_READ_EVERY`` seconds). The
closed days of the 90-day bar are read once, then again per service when its days move
(about once a day); a row's 89 past days are built again only then, its 23 past hours
when the hour turns. ``services()``, ``indicator()`` and ``staleness()`` then return what
was built; ``service(name)`` and ``incidents()`` read a
little more on demand (a service's hours, minutes, journal and drift; the episodes) and
keep it until the data changes (``generation``).

State of a service (Statuspage's component states), from its current alerts:

- ``major_outage``: ``ServiceDown`` fires, or ``RevisionNotReady`` or
  ``InstancesRestarting`` fires with severity critical;
- ``partial_outage``: ``High5xxRate`` fires;
- ``degraded_performance``: any other non-info alert fires, or a critical alert is
  pending;
- ``operational``: otherwise.

A day of the 90-day bar takes the worst state of the alerts that fired during it (from
the alert history); a day without one whose probes passed less than 95 % of the time is
``degraded_performance``.

The environment's indicator (Statuspage's ``summary.json`` ``status``): any service in
major outage -> ``critical`` "Major System Outage"; any in partial outage -> ``major``
"Partial System Outage"; any degraded -> ``minor`` "Minor Service Outage"; else ``none``
"All Systems Operational".

Uptime windows follow the buckets: ``24h`` the last 24 hourly buckets (the open hour
included), ``7d``/``30d``/``90d`` the last 7/30/90 daily buckets (UTC days, today
included). Thread-safe: a refresh builds new values and swaps them in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rollsafe.incidents.model import Episode
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.monitor.alerts import namespace as alerts_namespace
from rollsafe.monitor.history import history_namespace
from rollsafe.monitor.rollups import (
    DAY,
    HOUR,
    Rollup,
    daily_namespace,
    read_hours,
    read_rollups,
)
from rollsafe.monitor.snapshots import (
    HEARTBEAT_KEY,
    drift_namespace,
    heartbeat_namespace,
    services_namespace,
)
from rollsafe.state.base import StateStore
from rollsafe.state.records import DeployRecord
from rollsafe.web._rows import (
    _DEGRADED_UPTIME,
    _OK,
    Counts,
    _Alert,
    _alerts,
    _as_counts,
    _day,
    _day_counts,
    _day_states,
    _eligible,
    _firing_state,
    _int,
    _last_deploy,
    _marker,
    _moved_days,
    _no_day,
    _no_point,
    _point,
    _share,
    _sum,
    _traffic,
    _worst,
    alert_state,
    indicator_of,
)
from rollsafe.web.model import (
    ChartPoint,
    DayBucket,
    ServiceDetail,
    ServiceState,
    ServiceStatus,
    Staleness,
)

__all__ = ["FULL_READ_EVERY", "STALE_INTERVALS", "StatusData", "alert_state", "indicator_of"]

#: the page is stale when the monitor has not written for more than this many intervals
STALE_INTERVALS = 3
#: the monitor's namespaces are read again at least this often even when its heartbeat
#: did not move (a write after its last heartbeat, a monitor of another version)
FULL_READ_EVERY = 60.0
#: deploy records read per refresh to notice new ones (more: every service is read again)
_JOURNAL_TOP = 50
#: deploy records the first refresh reads at once (services not among them: one query each)
_HEADS_AT_ONCE = 5000
#: journal records a service page shows
_JOURNAL_PAGE = 50
_DAYS = 90
#: days counted back -> the uptime window they make
_WINDOWS = {7: "7d", 30: "30d", 90: "90d"}


@dataclass(frozen=True)
class _Snapshot:
    """What one refresh built: swapped in whole."""

    fingerprint: tuple[Any, ...]
    statuses: tuple[ServiceStatus, ...]
    by_name: dict[str, ServiceStatus]
    rollups: dict[str, Rollup]
    staleness: Staleness
    indicator: tuple[str, str]
    #: what the episodes depend on (alert history and journal versions)
    incidents_key: tuple[Any, ...]
    now: float


@dataclass(frozen=True)
class _Reads:
    """The monitor's namespaces as last read, and the heartbeat version they go with."""

    at: float
    beat: int | None
    rollups: dict[str, Rollup]
    alerts: dict[str, tuple[Any, int]]
    history: dict[str, tuple[Any, int]]
    snapshots: dict[str, tuple[Any, int]]


@dataclass
class _Cache:
    """Per-generation results computed on demand."""

    generation: int = -1
    details: dict[str, ServiceDetail | None] = field(default_factory=dict)


class StatusData:
    """The status page's data for ``env``, read from ``store`` (see the module's docstring).

    Call ``refresh`` to read the store again (the first call to anything else does it
    once); ``generation`` goes up whenever a refresh found something changed, so pages can
    cache what they render on it.
    """

    def __init__(
        self,
        store: StateStore,
        env: ResolvedEnvironment,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.env = env
        self._clock = clock
        self._names = list(env.services)
        self._lock = threading.RLock()
        self._generation = 0
        self._snapshot: _Snapshot | None = None
        self._reads: _Reads | None = None
        #: service -> (its inputs, its row): rows of unchanged services are kept
        self._rows: dict[str, tuple[tuple[Any, ...], ServiceStatus]] = {}
        #: service -> its newest deploy record (journal heads)
        self._heads: dict[str, DeployRecord] = {}
        self._top: set[str] | None = None
        #: service -> its moved (closed) days, and the ``archived_day`` they were read at
        self._days: dict[str, Mapping[str, Counts]] | None = None
        self._days_at: dict[str, int] = {}
        #: service -> how many times its moved days were read (the past bars' cache key)
        self._days_read: dict[str, int] = {}
        #: service -> (key, its sparkline's 23 past hours, their total and failed probes)
        self._hour_pasts: dict[str, tuple[Any, tuple[ChartPoint, ...], int, int]] = {}
        #: service -> (key, the 89 past days of its bar, its uptime windows' past sums)
        self._pasts: dict[
            str, tuple[tuple[Any, ...], tuple[DayBucket, ...], dict[str, tuple[int, int]]]
        ] = {}
        self._cache = _Cache()
        self._incidents: tuple[tuple[Any, ...], list[Episode]] | None = None
        self._daily = max((s.monitor.retention.daily for s in env.services.values()), default=0.0)

    # -- what the pages ask ------------------------------------------------------------
    @property
    def env_name(self) -> str:
        """The environment's name."""
        return self.env.name

    @property
    def interval(self) -> float:
        """The smallest ``monitor.interval`` of the environment's services (30 s without
        any): the page's auto-refresh period."""
        return min((s.monitor.interval for s in self.env.services.values()), default=30.0)

    @property
    def generation(self) -> int:
        """Goes up whenever a refresh found the data changed."""
        self._ensure()
        return self._generation

    def services(self) -> list[ServiceStatus]:
        """Every service of the environment, in manifest order."""
        return list(self._ensure().statuses)

    def indicator(self) -> tuple[str, str]:
        """Statuspage's ``(indicator, description)`` of the environment."""
        return self._ensure().indicator

    def staleness(self) -> Staleness:
        """Whether the monitor's heartbeat is older than 3 intervals (or missing)."""
        return self._ensure().staleness

    def service(self, name: str) -> ServiceDetail | None:
        """The page of service ``name`` (None: not in the environment): its row plus the
        charts (24 h of 5-minute points from the probe buckets, 7 d of hours, 30 d of
        6-hour points), deploy and rollback markers, error rate per revision over 24 h,
        journal, drift findings and incidents. Cached until the data changes."""
        snapshot = self._ensure()
        status = snapshot.by_name.get(name)
        if status is None:
            return None
        with self._lock:
            if self._cache.generation != self._generation:
                self._cache = _Cache(self._generation)
            if name in self._cache.details:
                return self._cache.details[name]
            cache = self._cache
        detail = self._detail(status, snapshot)
        with self._lock:
            cache.details[name] = detail
        return detail

    def incidents(self) -> list[Episode]:
        """The environment's episodes over the alert history's retention, newest first
        (``find_episodes`` from the state alone: alert history and journal). Computed
        again only when the alert history or the journal changed."""
        from rollsafe.incidents.episodes import find_episodes

        snapshot = self._ensure()
        with self._lock:
            if self._incidents is not None and self._incidents[0] == snapshot.incidents_key:
                return list(self._incidents[1])
        found = find_episodes(
            self.env,
            state=self.store,
            logs=None,
            services=[],
            since=snapshot.now - (self._daily or _DAYS * DAY),
            until=snapshot.now,
        )
        with self._lock:
            self._incidents = (snapshot.incidents_key, found)
        return list(found)

    def _incidents_of(self, name: str, snapshot: _Snapshot) -> list[Episode]:
        """One service's episodes: the environment's when they are at hand, else read for
        that service alone (one journal query, not one per service)."""
        with self._lock:
            if self._incidents is not None and self._incidents[0] == snapshot.incidents_key:
                return [e for e in self._incidents[1] if name in e.services]
        from rollsafe.incidents.episodes import find_episodes

        return find_episodes(
            self.env,
            state=self.store,
            logs=None,
            services=[name],
            since=snapshot.now - (self._daily or _DAYS * DAY),
            until=snapshot.now,
        )

    # -- reading -----------------------------------------------------------------------
    def _ensure(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is None:
            self.refresh()
            snapshot = self._snapshot
            assert snapshot is not None
        return snapshot

    def refresh(self) -> None:
        """Read the store again; bump ``generation`` when anything shown changed.
        ``StateError`` when the store cannot be read (what was read before stays)."""
        with self._lock:
            now = self._clock()
            env = self.env.name
            beat = self.store.kv_get(heartbeat_namespace(env), HEARTBEAT_KEY)
            reads = self._reads
            # the monitor writes its heartbeat after everything else of a pass: while it
            # has not moved, what the monitor writes has not changed either
            if (
                reads is None
                or beat is None
                or beat[1] != reads.beat
                or now - reads.at >= FULL_READ_EVERY
                or now < reads.at
            ):
                rollups = read_rollups(self.store, env)
                self._read_days(rollups)
                reads = _Reads(
                    at=now,
                    beat=beat[1] if beat is not None else None,
                    rollups=rollups,
                    alerts=self.store.kv_list(alerts_namespace(env)),
                    history=self.store.kv_list(history_namespace(env)),
                    snapshots=self.store.kv_list(services_namespace(env)),
                )
                self._reads = reads
            rollups = reads.rollups
            alert_keys, history, snapshots = reads.alerts, reads.history, reads.snapshots
            self._read_heads()
            staleness = self._staleness(beat, now)
            hour = int(now) // HOUR * HOUR
            incidents_key = (
                tuple((k, v) for k, (_raw, v) in history.items()),
                tuple((r.id, r.outcome, r.finished) for r in self._heads.values()),
            )
            fingerprint = (
                hour,
                staleness.stale,
                tuple((s, r.version) for s, r in rollups.items()),
                tuple((k, v) for k, (_raw, v) in alert_keys.items()),
                tuple((k, v) for k, (_raw, v) in snapshots.items()),
                incidents_key,
            )
            old = self._snapshot
            if old is not None and old.fingerprint == fingerprint:
                self._snapshot = _replace_now(old, now, staleness)
                return
            first_day = int(now) // DAY * DAY - (_DAYS - 1) * DAY
            alerts = _alerts(alert_keys)
            day_states = _day_states(history, now, first_day)
            rows = []
            for name in self._names:
                rows.append(
                    self._row(
                        name,
                        now,
                        rollups.get(name),
                        alerts.get(name, []),
                        snapshots.get(name),
                        day_states.get(name, {}),
                    )
                )
            statuses = tuple(rows)
            self._snapshot = _Snapshot(
                fingerprint=fingerprint,
                statuses=statuses,
                by_name={s.name: s for s in statuses},
                rollups=rollups,
                staleness=staleness,
                indicator=indicator_of(s.state for s in statuses),
                incidents_key=incidents_key,
                now=now,
            )
            self._generation += 1

    def _read_days(self, rollups: Mapping[str, Rollup]) -> None:
        """The closed days: every service's once (one ``kv_list``), then a service's
        again when its recent document says more days moved (about once a day)."""
        if self._days is None:
            found = self.store.kv_list(daily_namespace(self.env.name))
            self._days = {name: _moved_days(raw) for name, (raw, _v) in found.items()}
            self._days_at = {s: r.archived_day for s, r in rollups.items()}
            return
        for name, rollup in rollups.items():
            if rollup.archived_day != self._days_at.get(name, 0):
                one = self.store.kv_get(daily_namespace(self.env.name), name)
                self._days[name] = _moved_days(one[0] if one is not None else None)
                self._days_at[name] = rollup.archived_day
                self._days_read[name] = self._days_read.get(name, 0) + 1

    def _staleness(self, beat: tuple[Any, int] | None, now: float) -> Staleness:
        at: float | None = None
        interval: float | None = None
        if beat is not None and isinstance(beat[0], Mapping):
            try:
                at = float(beat[0]["at"])
                interval = float(beat[0].get("interval") or self.interval)
            except (KeyError, TypeError, ValueError):
                at = None
        if at is None:
            return Staleness(True, None, interval)
        assert interval is not None
        return Staleness(now - at > STALE_INTERVALS * interval, at, interval)

    def _read_heads(self) -> None:
        """The newest deploy record of each service: every service once, then the
        journal's newest records each refresh (all again when more than those arrived)."""
        env = self.env.name
        top = self.store.list_records(env, None, _JOURNAL_TOP)
        ids = {r.id for r in top}
        gap = self._top is not None and len(top) >= _JOURNAL_TOP and not (ids & self._top)
        if self._top is None or gap:
            self._heads = {}
            # the newest records of the environment usually name every service: one query
            for record in self.store.list_records(env, None, _HEADS_AT_ONCE):
                known = record.service in self.env.services
                if known and record.service not in self._heads and _eligible(record):
                    self._heads[record.service] = record
            for name in self._names:
                if name in self._heads:
                    continue
                for record in self.store.list_records(env, name, 10):
                    if _eligible(record):
                        self._heads[name] = record
                        break
        else:
            for record in reversed(top):  # oldest first: the newest wins
                if record.service not in self.env.services or not _eligible(record):
                    continue
                head = self._heads.get(record.service)
                if head is None or head.id == record.id or record.started >= head.started:
                    self._heads[record.service] = record
        self._top = ids

    # -- building ----------------------------------------------------------------------
    def _row(
        self,
        name: str,
        now: float,
        rollup: Rollup | None,
        alerts: list[_Alert],
        snapshot: tuple[Any, int] | None,
        day_states: dict[int, ServiceState],
    ) -> ServiceStatus:
        head = self._heads.get(name)
        hour = int(now) // HOUR * HOUR
        day = int(now) // DAY * DAY
        inputs = (
            hour,
            day,
            rollup.version if rollup else None,
            tuple(alerts),
            snapshot[1] if snapshot else None,
            tuple(sorted(day_states.items())),
            (head.id, head.outcome, head.finished) if head else None,
        )
        kept = self._rows.get(name)
        if kept is not None and kept[0] == inputs:
            return kept[1]
        hours = rollup.hours if rollup else {}
        past_points, day_total, day_failed = self._past_hours(name, hour, hours)
        current = hours.get(str(hour))
        if current is None or current[0] <= 0:
            point = _no_point(hour)
        else:
            total = int(current[0])
            day_total += total
            day_failed += int(current[1])
            point = ChartPoint(hour, current[2] / total, current[1] / total, total)
        latency = (*past_points, point)
        recent = rollup.days if rollup else {}
        archived = rollup.archived_day if rollup else 0
        past_bar, past_sums = self._past(name, day, recent, archived, day_states)
        counts = _day_counts(
            (self._days or {}).get(name, {}).get(str(day)), recent.get(str(day)), day, archived
        )
        state = _worst((day_states.get(day, _OK), *(_firing_state(a) for a in alerts)))
        if counts is None:
            today = DayBucket(day, None, state)
            counts = (0, 0)
        else:
            share = _share(counts[0], counts[1])
            if state is _OK and share is not None and share < _DEGRADED_UPTIME:
                state = ServiceState.DEGRADED_PERFORMANCE
            today = DayBucket(day, share, state)
        uptime: dict[str, float | None] = {"24h": _share(day_total, day_failed)}
        for label, (total, failed) in past_sums.items():
            uptime[label] = _share(total + counts[0], failed + counts[1])
        bar = (*past_bar, today)
        status = ServiceStatus(
            name=name,
            state=_worst(alert_state(a.alertname, a.severity, a.status) for a in alerts),
            uptime=uptime,
            days=bar,
            latency=latency,
            traffic=_traffic(snapshot[0]) if snapshot else (),
            last_deploy=_last_deploy(head),
            alerts=tuple(a.to_dict() for a in alerts),
            updated=rollup.updated if rollup else None,
        )
        self._rows[name] = (inputs, status)
        return status

    def _past_hours(
        self, name: str, hour: int, hours: Mapping[str, Counts]
    ) -> tuple[tuple[ChartPoint, ...], int, int]:
        """The sparkline's 23 hours before the current one and their (total, failed):
        built again when the hour turns, or when the last hour still took minutes (its
        last minute is folded just after the turn), not on each minute folded."""
        last = hours.get(str(hour - HOUR))
        key = (hour, tuple(last) if last is not None else None)
        kept = self._hour_pasts.get(name)
        if kept is not None and kept[0] == key:
            return kept[1], kept[2], kept[3]
        points: list[ChartPoint] = []
        day_total = day_failed = 0
        for start in range(hour - 23 * HOUR, hour, HOUR):
            counts = hours.get(str(start))
            if counts is None or counts[0] <= 0:
                points.append(_no_point(start))
                continue
            total = int(counts[0])
            day_total += total
            day_failed += int(counts[1])
            points.append(ChartPoint(start, counts[2] / total, counts[1] / total, total))
        made = tuple(points)
        self._hour_pasts[name] = (key, made, day_total, day_failed)
        return made, day_total, day_failed

    def _past(
        self,
        name: str,
        day: int,
        recent: Mapping[str, Counts],
        archived: int,
        day_states: Mapping[int, ServiceState],
    ) -> tuple[tuple[DayBucket, ...], dict[str, tuple[int, int]]]:
        """The 89 days before today of the 90-day bar, and the (total, failed) of the
        uptime windows without today: built again only when a day passed, days moved, or
        a past day's alerts changed (about once a day), not on each minute folded."""
        key = (
            day,
            self._days_read.get(name, 0),
            archived,
            tuple((k, tuple(v)) for k, v in recent.items() if _int(k) < day),
            tuple(sorted((d, s) for d, s in day_states.items() if d < day)),
        )
        kept = self._pasts.get(name)
        if kept is not None and kept[0] == key:
            return kept[1], kept[2]
        moved = (self._days or {}).get(name, {})
        bar: list[DayBucket] = []
        sums: dict[str, tuple[int, int]] = {}
        total = failed = 0
        for back in range(1, _DAYS):  # newest first: the uptime windows add up on the way
            start = day - back * DAY
            text = str(start)
            counts = _day_counts(moved.get(text), recent.get(text), start, archived)
            state = day_states.get(start, _OK)
            if counts is None:
                bar.append(_no_day(start) if state is _OK else DayBucket(start, None, state))
            else:
                total += counts[0]
                failed += counts[1]
                share = _share(counts[0], counts[1])
                if state is _OK and share is not None and share < _DEGRADED_UPTIME:
                    state = ServiceState.DEGRADED_PERFORMANCE
                bar.append(_day(start, share, state))
            if back + 1 in _WINDOWS:
                sums[_WINDOWS[back + 1]] = (total, failed)
        bar.reverse()
        made = tuple(bar)
        self._pasts[name] = (key, made, sums)
        return made, sums

    def _detail(self, status: ServiceStatus, snapshot: _Snapshot) -> ServiceDetail:
        from rollsafe.monitor.samples import read_probe_buckets

        env = self.env.name
        name = status.name
        now = snapshot.now
        # 24 h: 5-minute points from the one-minute buckets
        five = 300
        last = int(now) // five * five
        first = last - 287 * five
        minutes: dict[int, list[float]] = {}
        revisions: dict[str, dict[str, Any]] = {}
        for bucket in read_probe_buckets(self.store, env, name, since=first, until=now):
            for rev, (total, failed) in bucket.revisions.items():
                sums_rev = revisions.setdefault(rev, {"total": 0, "failed": 0})
                sums_rev["total"] += total
                sums_rev["failed"] += failed
            sums = minutes.setdefault(bucket.start // five * five, [0, 0, 0.0, 0.0])
            sums[0] += bucket.total
            sums[1] += bucket.failed
            sums[2] += bucket.latency_sum
            sums[3] = max(sums[3], bucket.latency_max)
        day_chart = tuple(
            _point(s, _as_counts(minutes.get(s))) for s in range(first, last + 1, five)
        )
        hours = read_hours(self.store, env, name)
        hour = int(now) // HOUR * HOUR
        week = tuple(_point(s, hours.get(s)) for s in range(hour - 167 * HOUR, hour + 1, HOUR))
        six = 6 * HOUR
        last6 = int(now) // six * six
        month = tuple(
            _point(s, _sum(hours.get(h) for h in range(s, s + six, HOUR)))
            for s in range(last6 - 119 * six, last6 + 1, six)
        )
        records = [
            r for r in self.store.list_records(env, name, _JOURNAL_PAGE) if r.outcome != "dry-run"
        ]
        markers = tuple(
            _marker(r)
            for r in sorted(records, key=lambda r: r.started)
            if _eligible(r) and r.started >= now - 30 * DAY
        )
        for slot in revisions.values():
            slot["error_rate"] = slot["failed"] / slot["total"] if slot["total"] else None
        drift_raw = self.store.kv_get(drift_namespace(env), name)
        drift: tuple[dict[str, Any], ...] = ()
        drift_at: float | None = None
        if drift_raw is not None and isinstance(drift_raw[0], Mapping):
            drift = tuple(f for f in drift_raw[0].get("findings") or () if isinstance(f, dict))
            at = drift_raw[0].get("at")
            drift_at = float(at) if isinstance(at, int | float) else None
        incidents = tuple(e.to_dict() for e in self._incidents_of(name, snapshot))
        return ServiceDetail(
            status=status,
            charts={"24h": day_chart, "7d": week, "30d": month},
            markers=markers,
            revisions=dict(sorted(revisions.items())),
            journal=tuple(r.to_dict() for r in records),
            drift=drift,
            drift_at=drift_at,
            incidents=incidents,
        )


def _replace_now(old: _Snapshot, now: float, staleness: Staleness) -> _Snapshot:
    return _Snapshot(
        fingerprint=old.fingerprint,
        statuses=old.statuses,
        by_name=old.by_name,
        rollups=old.rollups,
        staleness=staleness,
        indicator=old.indicator,
        incidents_key=old.incidents_key,
        now=now,
    )
