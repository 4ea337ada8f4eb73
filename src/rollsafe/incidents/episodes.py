"""Episodes: the times something went wrong, found in what rollsafe records.

Three kinds, each on one service:

- ``alert``: a monitor alert (not an info one), from its start to its resolve (open while
  it fires);
- ``deploy``: a deploy or rollback whose outcome is rolled-back, failed or
  rollback-failed (the monitor's automatic rollbacks among them), from start to finish;
- ``outage``: a run of answers >= 500 in the request log, a gap of more than 60 s
  starting a new run (read with a server-side ``httpRequest.status>=500`` filter, so a
  week of logs costs only its failed requests).

Those of one service that overlap (60 s of slack) are one episode, whose id is
``INC-YYYYMMDD-HHMMSS-SERVICE`` of its start (UTC): the same records give the same ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rollsafe.check.engine import select_services
from rollsafe.errors import RollsafeError
from rollsafe.incidents._gather import read_errors
from rollsafe.incidents._journal_evidence import is_by_monitor, records_in
from rollsafe.incidents._log_evidence import (
    MAX_REQUESTS,
    REQUEST_SOURCE,
    read_entries,
    request_log_filter,
)
from rollsafe.incidents._monitor_evidence import alert_source
from rollsafe.incidents.model import Episode
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.platforms.logs import CloudLoggingRevisionLogs, LoggedEntry
from rollsafe.state.base import StateStore

__all__ = ["BAD_OUTCOMES", "GAP", "episode_id", "find_episodes"]

#: the deploy outcomes that make an episode
BAD_OUTCOMES = frozenset({"rolled-back", "failed", "rollback-failed"})
#: a pause in failed requests longer than this ends an outage; parts closer merge
GAP = 60.0

Unreadable = Callable[[str, str], None]


@dataclass(frozen=True)
class _Part:
    service: str
    kind: str
    start: float
    end: float | None
    title: str
    source: str


def episode_id(start: float, service: str) -> str:
    """``INC-YYYYMMDD-HHMMSS-SERVICE`` of ``start`` in UTC."""
    return "INC-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime(start)) + f"-{service}"


def _alerts(
    store: StateStore, env: str, wanted: set[str], since: float, until: float
) -> list[_Part]:
    from rollsafe.monitor.history import read_alert_history

    parts = []
    for record in read_alert_history(store, env, since=since, until=until):
        if record.service not in wanted or record.severity == "info":
            continue
        fired = record.fired_at or record.starts_at
        parts.append(
            _Part(
                record.service,
                "alert",
                record.starts_at,
                record.ends_at,
                f"{record.alertname} alert",
                alert_source(record.alertname, "firing", fired),
            )
        )
    return parts


def _deploys(
    store: StateStore, env: str, services: Sequence[str], since: float, until: float
) -> list[_Part]:
    parts = []
    for service in services:
        for record in records_in(store, env, service, since, until, until):
            if record.outcome not in BAD_OUTCOMES:
                continue
            if record.checks == "rollback":
                who = "the monitor's automatic rollback" if is_by_monitor(record) else "rollback"
                title = f"{who} {record.id} {record.outcome}"
            else:
                title = f"deploy {record.id} {record.outcome}"
            parts.append(
                _Part(
                    service,
                    "deploy",
                    record.started,
                    record.finished or record.started,
                    title,
                    f"journal:{record.id}/outcome",
                )
            )
    return parts


@dataclass
class _Run:
    """Failed requests of one service with no pause over ``GAP`` between them."""

    first: LoggedEntry
    last: float
    count: int = 1
    statuses: set[int] = field(default_factory=set)

    def part(self, service: str) -> _Part:
        shown = "/".join(str(s) for s in sorted(self.statuses))
        return _Part(
            service,
            "outage",
            self.first.at,
            self.last,
            f"{self.count} request{'' if self.count == 1 else 's'} answered {shown}",
            f"{REQUEST_SOURCE}/{self.first.insert_id}",
        )


def _outages(
    logs: CloudLoggingRevisionLogs,
    project: str,
    services: Sequence[str],
    since: float,
    until: float,
    unreadable: Unreadable,
) -> list[_Part]:
    runs: dict[str, _Run] = {}
    parts: list[_Part] = []
    entries = read_entries(
        logs,
        services,
        lambda group: request_log_filter(project, group, since, until, failed=True),
        what="read the failed requests",
        cap=MAX_REQUESTS,
        on_cap=lambda: unreadable(
            "Cloud Logging request log", f"stopped at {MAX_REQUESTS} failed requests"
        ),
    )
    for entry in entries:
        if entry.status is None or entry.status < 500 or not entry.service:
            continue
        run = runs.get(entry.service)
        if run is not None and entry.at - run.last > GAP:
            parts.append(runs.pop(entry.service).part(entry.service))
            run = None
        if run is None:
            runs[entry.service] = _Run(entry, entry.at, statuses={entry.status})
        else:
            run.last = entry.at
            run.count += 1
            run.statuses.add(entry.status)
    parts.extend(run.part(service) for service, run in sorted(runs.items()))
    return parts


def _merge(parts: list[_Part], now: float) -> list[Episode]:
    episodes: list[Episode] = []
    by_service: dict[str, list[_Part]] = {}
    for part in parts:
        by_service.setdefault(part.service, []).append(part)
    for service, found in by_service.items():
        found.sort(key=lambda p: (p.start, p.source))
        group: list[_Part] = []
        reach = 0.0
        for part in found:
            if group and part.start > reach + GAP:
                episodes.append(_episode(service, group))
                group = []
            group.append(part)
            end = now if part.end is None else part.end
            reach = max(reach, end) if len(group) > 1 else end
        if group:
            episodes.append(_episode(service, group))
    return sorted(episodes, key=lambda e: (e.start, e.id), reverse=True)


def _episode(service: str, group: list[_Part]) -> Episode:
    start = min(p.start for p in group)
    ongoing = any(p.end is None for p in group)
    end = None if ongoing else max(p.end or p.start for p in group)
    titles = list(dict.fromkeys(p.title for p in group))
    return Episode(
        id=episode_id(start, service),
        kinds=tuple(sorted({p.kind for p in group})),
        start=start,
        end=end,
        services=(service,),
        title=f"{service}: " + "; ".join(titles),
        sources=tuple(p.source for p in group),
    )


def find_episodes(
    env: ResolvedEnvironment,
    *,
    state: StateStore,
    logs: CloudLoggingRevisionLogs | None,
    services: Sequence[str],
    since: float,
    until: float,
    on_unreadable: Unreadable | None = None,
) -> list[Episode]:
    """The episodes of ``services`` (empty: all) that overlap ``[since, until]``, newest
    first. A source that cannot be read is passed to ``on_unreadable(what, why)`` and the
    others are used; ``UsageError`` for an unknown service."""
    names = select_services(env, services)
    unreadable = on_unreadable or (lambda _what, _why: None)
    parts: list[_Part] = []
    sources: list[tuple[str, Callable[[], list[_Part]]]] = [
        ("the monitor's alert history", lambda: _alerts(state, env.name, set(names), since, until)),
        ("the deploy journal", lambda: _deploys(state, env.name, names, since, until)),
    ]
    if logs is not None:
        project = env.gcp_project
        sources.append(
            (
                "Cloud Logging request log",
                lambda: _outages(logs, project, names, since, until, unreadable),
            )
        )
    for what, read in sources:
        try:
            parts.extend(read())
        except read_errors() as exc:
            unreadable(what, exc.message if isinstance(exc, RollsafeError) else str(exc))
    return _merge(parts, until)
