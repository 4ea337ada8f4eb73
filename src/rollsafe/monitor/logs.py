"""The environment's Cloud Run logs, read incrementally through the Logging API.

One ``entries:list`` query per pass reads, for every service of the environment, the
request log (``run.googleapis.com/requests``: ``RequestSample``), the container output
(``run.googleapis.com/stdout`` and ``stderr``) and Cloud Run's own system log
(``run.googleapis.com/varlog/system``) (``LogEntryLine``), oldest first, with the same
client ``rollsafe deploy`` reads logs with (``CloudLoggingRevisionLogs``: the emulator's
endpoint, or Google's with ADC). An environment with so many services that the filter
would pass the API's 20,000 characters is read in a few queries, each over the same time
range.

The cursor (kv ``monitor/cursor/{env}``, key ``logs``) is the timestamp of the newest entry
read and the ids (``LOG/insertId``) of the entries read at or after it: a restarted reader
starts at that timestamp and skips those ids, so nothing is read twice and nothing is
missed across restarts. Entries sharing a timestamp are told apart by their ids.

Late entries: Cloud Logging receives entries seconds after their timestamp (Cloud Run's
request log entry carries the time the request arrived and is written after the answer; the
emulator writes it in batches every 0.25 s). So each pass reads again from ``overlap``
(default 10 s) before the newest entry already read, and skips the ids it has read: an
entry that arrives up to ``overlap`` behind the newest one is still read, once. An entry
later than that is not read. The reader never reads past its own clock (an entry stamped in
the future waits until its time). A first start reads ``backfill`` (default 300 s) back; a
restart after a long stop reads at most ``max_backlog`` (default 1 h) back.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rollsafe.platforms.logs import (
    REQUEST_LOG,
    SEVERITIES,
    SYSTEM_LOG,
    CloudLoggingRevisionLogs,
    LoggedEntry,
    RequestStats,
    rfc3339,
)
from rollsafe.state.base import StateStore

__all__ = [
    "LINE_LOGS",
    "LogEntryLine",
    "RequestSample",
    "RequestWindow",
    "ServiceLogReader",
    "cursor_namespace",
    "pass_filter",
]

#: the logs whose entries are lines (matched by log alerts, grouped into templates)
LINE_LOGS = ("run.googleapis.com/stdout", "run.googleapis.com/stderr", SYSTEM_LOG)
#: Cloud Logging refuses filters longer than 20,000 characters; leave room for the rest
_MAX_NAMES_LENGTH = 15_000
_CURSOR_KEY = "logs"


def cursor_namespace(env: str) -> str:
    """The kv namespace of an environment's Logging cursor."""
    return f"monitor/cursor/{env}"


@dataclass(frozen=True, slots=True)
class RequestSample:
    """One request Cloud Run's front end logged: the revision that answered, its status,
    its latency (seconds, None if not logged) and when it arrived (``time.time()``)."""

    service: str
    revision: str
    status: int
    latency: float | None
    at: float
    insert_id: str


@dataclass(frozen=True, slots=True)
class LogEntryLine:
    """One line of a revision's output or of Cloud Run's system log about it.

    ``log_name`` is the short log id (``run.googleapis.com/stderr``); ``text`` is the
    ``textPayload``, or the ``message`` of a ``jsonPayload``; ``severity`` the entry's
    (``ERROR``; ``DEFAULT`` when none was given).
    """

    service: str
    revision: str
    log_name: str
    severity: str
    text: str
    insert_id: str
    at: float

    @property
    def evidence(self) -> str:
        """The line's id as the incident report cites it: ``log://LOG_NAME/INSERT_ID``."""
        return f"log://{self.log_name}/{self.insert_id}"

    @property
    def level(self) -> int:
        """The severity as Cloud Logging's number (ERROR is 500)."""
        return SEVERITIES.get(self.severity.upper(), 0)


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _chunks(services: Sequence[str]) -> list[list[str]]:
    """The services in groups whose names fit in one filter."""
    groups: list[list[str]] = [[]]
    size = 0
    for name in services:
        cost = len(name) + 6
        if groups[-1] and size + cost > _MAX_NAMES_LENGTH:
            groups.append([])
            size = 0
        groups[-1].append(name)
        size += cost
    return [g for g in groups if g]


def _log_names(project: str, logs: Iterable[str]) -> str:
    return " OR ".join(
        _quoted(f"projects/{project}/logs/{log.replace('/', '%2F')}") for log in logs
    )


def pass_filter(project: str, services: Sequence[str], since: str, until: str) -> str:
    """The Logging query of one pass: the services' request, output and system entries
    with ``since <= timestamp < until``."""
    names = " OR ".join(_quoted(s) for s in services)
    return (
        'resource.type="cloud_run_revision"'
        f" AND resource.labels.service_name=({names})"
        f" AND logName=({_log_names(project, (REQUEST_LOG, *LINE_LOGS))})"
        f' AND timestamp>="{since}" AND timestamp<"{until}"'
    )


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _key(entry: LoggedEntry) -> str:
    return f"{entry.log}/{entry.insert_id}"


def _line(entry: LoggedEntry) -> LogEntryLine:
    return LogEntryLine(
        service=entry.service,
        revision=entry.revision,
        log_name=entry.log,
        severity=entry.severity,
        text=entry.text,
        insert_id=entry.insert_id,
        at=entry.at,
    )


class ServiceLogReader:
    """Reads an environment's Cloud Run logs pass by pass, keeping its cursor in ``store``.

    ``project``/``endpoint``: where the logs are (``endpoint`` the emulator's; None for
    Google with Application Default Credentials). ``logs`` may be given instead, to share
    a client. ``read`` raises ``PlatformError`` (``PlatformUnavailableError`` when Cloud
    Logging cannot be reached) and the store's ``StateError``; the cursor then stays
    where it was.
    """

    def __init__(
        self,
        project: str,
        *,
        endpoint: str | None = None,
        store: StateStore,
        env: str,
        logs: CloudLoggingRevisionLogs | None = None,
        overlap: float = 10.0,
        backfill: float = 300.0,
        max_backlog: float = 3600.0,
        max_entries: int = 20_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project = project
        self.env = env
        self.store = store
        self.overlap = overlap
        self.backfill = backfill
        self.max_backlog = max_backlog
        self.max_entries = max_entries
        self._clock = clock
        self._own_logs = logs is None
        self._logs = logs or CloudLoggingRevisionLogs(project, endpoint=endpoint)
        self._loaded = False
        #: entries read whose timestamp is at or after ``_floor - overlap``: key -> timestamp
        self._known: dict[str, str] = {}
        #: everything from here on has been read (ids in ``_known``)
        self._floor = ""
        #: the newest timestamp read, and the cursor's (everything before it has been read)
        self._newest = ""
        self._position = ""
        self._saved: Any = None
        #: when the last pass ended, and the timestamp of the newest entry it had read
        self.last_read: float | None = None

    def __repr__(self) -> str:
        return f"ServiceLogReader({self.project!r}, env={self.env!r}, cursor={self._newest!r})"

    def __enter__(self) -> ServiceLogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_logs:
            self._logs.close()

    @property
    def cursor(self) -> tuple[str, tuple[str, ...]]:
        """(timestamp, ids read at or after it), as persisted."""
        at = self._position
        return at, tuple(sorted(k for k, t in self._known.items() if at and t >= at))

    @property
    def newest_at(self) -> float | None:
        """The ``time.time()`` of the newest entry read (for the monitor's lag), or None."""
        return _seconds(self._newest) if self._newest else None

    def _load(self, now: float) -> None:
        if self._loaded:
            return
        found = self.store.kv_get(cursor_namespace(self.env), _CURSOR_KEY)
        if found is not None and isinstance(found[0], dict):
            value = found[0]
            self._position = self._newest = str(value.get("timestamp") or "")
            self._known = {str(k): str(t) for k, t in (value.get("ids") or {}).items()}
            self._saved = value
        oldest = rfc3339(now - self.max_backlog)
        if self._position and self._position >= oldest:
            self._floor = self._position  # a restart: on from the cursor
        elif self._position:  # stopped for longer than max_backlog
            self._floor, self._position, self._newest, self._known = oldest, "", "", {}
        else:  # a first start
            self._floor = rfc3339(now - self.backfill)
        self._loaded = True

    def read(self, services: Sequence[str]) -> tuple[list[RequestSample], list[LogEntryLine]]:
        """The request samples and lines of ``services`` not read before, oldest first."""
        if not services:
            return [], []
        now = self._clock()
        self._load(now)
        since = self._floor
        if self._position:
            since = max(since, rfc3339(_seconds(self._position) - self.overlap))
        until = rfc3339(now)
        fresh: list[LoggedEntry] = []
        resume: str | None = None  # a query stopped at max_entries: read on from there
        for group in _chunks(sorted(set(services))):
            got = list(
                self._logs.entries(
                    pass_filter(self.project, group, since, until),
                    what=f"read the logs of environment {self.env}",
                    max_results=self.max_entries,
                )
            )
            if got and len(got) >= self.max_entries:
                resume = got[-1].timestamp if resume is None else min(resume, got[-1].timestamp)
            for entry in got:
                key = _key(entry)
                if key not in self._known:
                    self._known[key] = entry.timestamp
                    fresh.append(entry)
        fresh.sort(key=lambda e: e.timestamp)
        if fresh:
            self._newest = max(self._newest, fresh[-1].timestamp)
        self._position = self._newest if resume is None else min(self._newest, resume)
        self._forget()
        self._save()
        self.last_read = now
        requests: list[RequestSample] = []
        lines: list[LogEntryLine] = []
        for entry in fresh:
            if entry.log != REQUEST_LOG:
                lines.append(_line(entry))
            elif entry.revision and entry.status is not None:
                # requests the front end refused itself (no revision) are left out
                requests.append(
                    RequestSample(
                        entry.service,
                        entry.revision,
                        entry.status,
                        entry.latency,
                        entry.at,
                        entry.insert_id,
                    )
                )
        return requests, lines

    def matching(
        self, service: str, filter_: str, *, since: float, limit: int = 50
    ) -> list[LogEntryLine]:
        """The newest ``limit`` entries of ``service`` since ``since`` that match a Logging
        filter, newest first: a ``filter`` log alert, evaluated by Cloud Logging itself
        (the same on Google and on the emulator). Stateless: the window is read again each
        time, so late entries count once they arrive."""
        query = (
            f"({filter_})"
            ' AND resource.type="cloud_run_revision"'
            f" AND resource.labels.service_name={_quoted(service)}"
            f' AND timestamp>="{rfc3339(since)}"'
        )
        found = self._logs.entries(
            query,
            what=f"read the logs of {service} for a log alert's filter",
            descending=True,
            max_results=limit,
        )
        return [_line(entry) for entry in found]

    def _forget(self) -> None:
        """Keep the ids of the entries a later pass (from ``position - overlap``) reads again."""
        if not self._position:
            return
        edge = rfc3339(_seconds(self._position) - self.overlap)
        self._floor = max(self._floor, edge)
        self._known = {k: t for k, t in self._known.items() if t >= self._floor}

    def _save(self) -> None:
        at = self._position
        if not at:
            return
        value = {"timestamp": at, "ids": {k: t for k, t in self._known.items() if t >= at}}
        if value != self._saved:
            self.store.kv_put(cursor_namespace(self.env), _CURSOR_KEY, value)
            self._saved = value


class RequestWindow:
    """Recent request samples per service, and their per-revision statistics.

    ``retention``: how far back samples are kept (at least the longest window asked for).
    """

    def __init__(self, retention: float = 3600.0) -> None:
        self.retention = retention
        self._samples: dict[str, deque[RequestSample]] = {}

    def add(self, samples: Iterable[RequestSample]) -> None:
        for sample in samples:
            self._samples.setdefault(sample.service, deque()).append(sample)

    def prune(self, now: float) -> None:
        """Drop samples older than ``retention``."""
        edge = now - self.retention
        for service, kept in list(self._samples.items()):
            # mostly in time order: pop from the left while old, then filter the rest
            while kept and kept[0].at < edge:
                kept.popleft()
            if not kept:
                del self._samples[service]

    def stats(self, service: str, window: float, now: float) -> dict[str, RequestStats]:
        """Per revision, the requests of ``service`` in ``(now - window, now]``: count,
        5xx count (``errors``) and share (``error_rate``), latencies
        (``percentile(50|95|99)``)."""
        start = now - window
        counts: dict[str, tuple[int, int, list[float]]] = {}
        for sample in self._samples.get(service, ()):
            if not start < sample.at <= now:
                continue
            total, errors, latencies = counts.get(sample.revision, (0, 0, []))
            if sample.latency is not None:
                latencies.append(sample.latency)
            counts[sample.revision] = (total + 1, errors + (sample.status >= 500), latencies)
        return {
            rev: RequestStats(rev, total, errors, tuple(lat))
            for rev, (total, errors, lat) in counts.items()
        }
