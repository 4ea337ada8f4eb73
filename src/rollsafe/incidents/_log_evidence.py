"""Cloud Logging's side: the requests the services answered, and what their revisions said.

Two queries over the window, through ``CloudLoggingRevisionLogs.entries`` (the official
client, the same on Google and on the emulator):

- the request log (``run.googleapis.com/requests``): every request is counted per (service,
  revision) into ``EvidenceSet.requests``; the answers >= 500 become one ``request``
  evidence per (service, revision, status, tag URL or not), citing the group's first entry.
- the container output at ERROR or above (``stdout``, ``stderr``) and every entry of Cloud
  Run's system log (``varlog/system``): one ``log`` evidence per (service, revision, log,
  template), the template being the text with digit and hex runs masked. Cloud Run's
  ``Container called exit(N).`` gives ``exit_code``; the start-up guard's line gives
  ``guard`` (its outcome and failures: key, rule, message).

Each read stops at a cap (a week of a busy service is not read whole); reaching it is
noted in ``unreadable`` and what was read is used.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from rollsafe.incidents._gather import Pile, Scrubber, reading, when
from rollsafe.incidents._run_evidence import RunView
from rollsafe.incidents.model import EvidenceKind
from rollsafe.platforms.logs import (
    REQUEST_LOG,
    SYSTEM_LOG,
    CloudLoggingRevisionLogs,
    LoggedEntry,
    rfc3339,
)

__all__ = [
    "LINE_LOGS",
    "MAX_LINES",
    "MAX_REQUESTS",
    "add_logs",
    "chunks",
    "parse_guard",
    "read_entries",
    "request_log_filter",
    "template",
]

#: the entries read at most per query
MAX_REQUESTS = 50_000
MAX_LINES = 20_000
LINE_LOGS = ("run.googleapis.com/stdout", "run.googleapis.com/stderr", SYSTEM_LOG)
#: room for the service names in a filter (Cloud Logging's limit is 20,000 characters)
_MAX_NAMES_LENGTH = 15_000
#: the request log's id as the report cites it (URL-encoded, as in ``logName``)
REQUEST_SOURCE = "log://" + REQUEST_LOG.replace("/", "%2F")

_EXIT = re.compile(r"Container called exit\((\d+)\)\.")
#: digits, and hex runs of 6+ (ids, hashes): what changes between lines of one template
_VARIABLE = re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{6,}\b|\d+", re.IGNORECASE)
_GUARD_SUMMARY = re.compile(r"start-up failed in phase (\S+): (.*)", re.DOTALL)
#: ``KEY rule: message`` (``StartupProblem.describe``); a rule's message may itself hold
#: "; " (merged reasons), so a part that does not start so continues the one before
_GUARD_PROBLEM = re.compile(r"([A-Za-z_][\w.-]*)(?: ([a-z][a-z0-9_]*))?: (.*)", re.DOTALL)


def chunks(services: Sequence[str]) -> list[list[str]]:
    """``services`` in groups whose names fit in one filter (Cloud Logging refuses filters
    over 20,000 characters): an environment of many services is read in a few queries."""
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


def read_entries(
    logs: CloudLoggingRevisionLogs,
    services: Sequence[str],
    query: Callable[[Sequence[str]], str],
    *,
    what: str,
    cap: int,
    on_cap: Callable[[], None],
) -> Iterator[LoggedEntry]:
    """The entries of ``query(group)`` for each group of ``services``, at most ``cap`` a
    query (each service's entries in time order); ``on_cap()`` when a query reached it."""
    for group in chunks(services):
        read = 0
        for entry in logs.entries(query(group), what=what, max_results=cap):
            read += 1
            yield entry
        if read >= cap:
            on_cap()


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scope(project: str, services: Sequence[str], logs: Iterable[str]) -> str:
    names = " OR ".join(_quoted(s) for s in services)
    log_names = " OR ".join(
        _quoted(f"projects/{project}/logs/{log.replace('/', '%2F')}") for log in logs
    )
    return (
        'resource.type="cloud_run_revision"'
        f" AND resource.labels.service_name=({names})"
        f" AND logName=({log_names})"
    )


def _between(since: float, until: float) -> str:
    return f' AND timestamp>="{rfc3339(since)}" AND timestamp<="{rfc3339(until)}"'


def request_log_filter(
    project: str, services: Sequence[str], since: float, until: float, *, failed: bool = False
) -> str:
    """The request log of ``services`` in the window; ``failed``: answers >= 500 only."""
    text = _scope(project, services, (REQUEST_LOG,)) + _between(since, until)
    return text + (" AND httpRequest.status>=500" if failed else "")


def lines_filter(project: str, services: Sequence[str], since: float, until: float) -> str:
    """The output lines at ERROR or above, and every system-log line, in the window."""
    system = _quoted(f"projects/{project}/logs/{SYSTEM_LOG.replace('/', '%2F')}")
    return (
        _scope(project, services, LINE_LOGS)
        + f" AND (severity>=ERROR OR logName={system})"
        + _between(since, until)
    )


def template(text: str) -> str:
    """``text`` with digit and hex runs masked: lines that differ only there group."""
    return _VARIABLE.sub("#", text)


def parse_guard(text: str) -> dict[str, Any] | None:
    """The start-up guard's line (its JSON, or the ``message`` Cloud Logging shows of it) as
    ``{"outcome", "failures": [{"key", "rule", "message"}]}``; None for any other line."""
    raw: Any = None
    if text.lstrip().startswith("{"):
        try:
            raw = json.loads(text)
        except ValueError:
            raw = None
    if isinstance(raw, dict) and raw.get("event") == "rollsafe.startup":
        listed = [
            {"key": f.get("key"), "rule": f.get("rule"), "message": f.get("message")}
            for f in raw.get("failures") or ()
            if isinstance(f, dict)
        ]
        return {"outcome": str(raw.get("outcome") or ""), "failures": listed}
    match = _GUARD_SUMMARY.match(text.strip())
    if not match:
        return None
    failures: list[dict[str, str]] = []
    for part in match.group(2).split("; "):
        found = _GUARD_PROBLEM.fullmatch(part)
        if found:
            key, rule, message = found.groups()
            failures.append({"key": key, "rule": rule or "check", "message": message})
        elif failures:
            failures[-1]["message"] += f"; {part}"
    return {"outcome": "failed", "failures": failures}


def _host(url: str | None) -> str | None:
    return urlsplit(url).netloc.lower() if url else None


def _path(url: str | None) -> str | None:
    return (urlsplit(url).path or "/") if url else None


@dataclass
class _Group:
    """Entries of one (service, revision, status|log, tag|template)."""

    first: LoggedEntry
    count: int = 0
    last: float = 0.0
    paths: Counter[str] = field(default_factory=Counter)


def _count(requests: dict[str, dict[str, Any]], entry: LoggedEntry, tag: bool) -> None:
    key = f"{entry.service}/{entry.revision}"
    row = requests.setdefault(
        key, {"total": 0, "failed": 0, "statuses": {}, "tag_total": 0, "tag_failed": 0}
    )
    status = entry.status or 0
    bad = status >= 500
    row["total"] += 1
    row["failed"] += bad
    row["statuses"][status] = row["statuses"].get(status, 0) + 1
    row["tag_total"] += tag
    row["tag_failed"] += tag and bad


def _read_requests(
    logs: CloudLoggingRevisionLogs,
    project: str,
    services: Sequence[str],
    view: RunView,
    pile: Pile,
    requests: dict[str, dict[str, Any]],
) -> None:
    groups: dict[tuple[str, str, int, bool], _Group] = {}
    entries = read_entries(
        logs,
        services,
        lambda group: request_log_filter(project, group, pile.since, pile.until),
        what="read the request logs",
        cap=MAX_REQUESTS,
        on_cap=lambda: pile.cannot_read(
            "Cloud Logging request log",
            f"stopped at {MAX_REQUESTS} entries: counts cover the window's start only",
        ),
    )
    for entry in entries:
        if entry.status is None:
            continue
        url = entry.url
        host, service_host = _host(url), view.host(entry.service)
        tag = bool(host and service_host and host != service_host)
        _count(requests, entry, tag)
        if entry.status < 500:
            continue
        group = groups.setdefault((entry.service, entry.revision, entry.status, tag), _Group(entry))
        group.count += 1
        group.last = entry.at
        path = _path(url)
        if path:
            group.paths[path] += 1
    for (service, revision, status, tag), group in sorted(
        groups.items(), key=lambda item: (item[1].first.timestamp, item[0])
    ):
        pile.mention(service, revision)
        where = " on a tag URL" if tag else ""
        paths = dict(group.paths.most_common(5))
        shown = ", ".join(f"{p} ({n})" for p, n in paths.items())
        pile.add(
            EvidenceKind.REQUEST,
            group.first.at,
            f"{REQUEST_SOURCE}/{group.first.insert_id}",
            f"{revision or service} answered {status} to {group.count} request"
            f"{'' if group.count == 1 else 's'}{where} between {when(group.first.at)} and "
            f"{when(group.last)}" + (f"; paths {shown}" if shown else ""),
            {
                "service": service,
                "revision": revision or None,
                "status": status,
                "count": group.count,
                "first": group.first.at,
                "last": group.last,
                "paths": paths,
                "tag": tag,
            },
        )


def _read_lines(
    logs: CloudLoggingRevisionLogs,
    project: str,
    services: Sequence[str],
    pile: Pile,
    scrub: Scrubber,
) -> None:
    groups: dict[tuple[str, str, str, str], _Group] = {}
    entries = read_entries(
        logs,
        services,
        lambda group: lines_filter(project, group, pile.since, pile.until),
        what="read the services' logs",
        cap=MAX_LINES,
        on_cap=lambda: pile.cannot_read(
            "Cloud Logging container and system logs",
            f"stopped at {MAX_LINES} entries: lines after that are left out",
        ),
    )
    for entry in entries:
        # scrubbed before grouping: a value never becomes part of a template
        text = scrub.text(entry.text)
        key = (entry.service, entry.revision, entry.log, template(text))
        group = groups.setdefault(key, _Group(entry))
        group.count += 1
        group.last = entry.at
    for (service, revision, log, _), group in sorted(
        groups.items(), key=lambda item: (item[1].first.timestamp, item[0])
    ):
        first = group.first
        text = scrub.text(first.text)
        pile.mention(service, revision)
        code = _EXIT.search(text) if log == SYSTEM_LOG else None
        pile.add(
            EvidenceKind.LOG,
            first.at,
            f"log://{log}/{first.insert_id}",
            text,
            {
                "service": service,
                "revision": revision or None,
                "log": log,
                "severity": first.severity,
                "text": text,
                "count": group.count,
                "first": first.at,
                "last": group.last,
                "exit_code": int(code.group(1)) if code else None,
                "guard": parse_guard(text) if log != SYSTEM_LOG else None,
            },
        )


def add_logs(
    logs: CloudLoggingRevisionLogs,
    project: str,
    services: Sequence[str],
    view: RunView,
    pile: Pile,
    scrub: Scrubber,
    requests: dict[str, dict[str, Any]],
) -> None:
    """``request`` and ``log`` evidence of ``services`` in the window, and the counts."""
    if not services:
        return
    with reading(pile, "Cloud Logging request log"):
        _read_requests(logs, project, services, view, pile, requests)
    with reading(pile, "Cloud Logging container and system logs"):
        _read_lines(logs, project, services, pile, scrub)
