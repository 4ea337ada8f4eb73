"""Cloud Logging API v2 (REST) of the emulator: the log entries of revision instances.

- ``POST /v2/entries:list`` with ``{resourceNames: ["projects/P"], filter, orderBy,
  pageSize, pageToken}``: entries rendered as ``google.cloud.logging_v2`` ``LogEntry`` with
  ``resource.type = "cloud_run_revision"`` and the labels ``project_id``, ``service_name``,
  ``revision_name``, ``location``, ``configuration_name``. ``orderBy`` is ``timestamp asc``
  (the default) or ``timestamp desc``; ``pageSize`` defaults to 50 and is capped at 1000,
  as Google documents.
- ``POST /v2/entries:write``: stores ``cloud_run_revision`` entries whose log is
  ``run.googleapis.com/...`` (others are refused: nothing here could read them back).

Filters (see ``_filter`` for the syntax): ``resource.type``, ``resource.labels.NAME``,
``logName``, ``severity`` (names or numbers), ``timestamp`` and ``receiveTimestamp`` (RFC
3339), ``insertId``, ``textPayload``, ``jsonPayload.FIELD``, ``labels.KEY`` and bare words
(searched in the payload). Anything else is 400 INVALID_ARGUMENT naming the term.

The high-level ``google.cloud.logging.Client(_use_grpc=False)`` and ``gcloud logging read``
speak this REST API. The GAPIC ``LoggingServiceV2Client`` of google-cloud-logging ships gRPC
transports only, so it cannot reach this (HTTP/1.1) server.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from google.cloud.logging_v2 import types as logging_types
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rollsafe.emulator._filter import (
    Term,
    compile_filter,
    ordered_test,
    parse_time,
    string_test,
    unsupported,
)
from rollsafe.emulator._google import invalid_argument, parse_message, to_dict, wants_int_enums
from rollsafe.emulator.logs import SEVERITIES, LogEntryRecord, LogSink
from rollsafe.emulator.state import EmulatorState

__all__ = ["routes"]

RESOURCE_TYPE = "cloud_run_revision"
RUN_LOG_PREFIX = "run.googleapis.com/"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_SCAN_BATCH = 5000

LogEntry = logging_types.LogEntry


def routes(state: EmulatorState) -> list[BaseRoute]:
    """``entries:list`` and ``entries:write``; the rest of Logging v2 is not emulated."""

    async def list_entries(request: Request) -> Response:
        body = await request.body()
        reply = await run_in_threadpool(_list, state.logs, body)
        # Google leaves defaults out; an empty nextPageToken must be absent or the
        # high-level client's pager asks for the same page forever
        return JSONResponse(to_dict(reply, int_enums=wants_int_enums(request), defaults=False))

    async def write_entries(request: Request) -> Response:
        body = await request.body()
        await run_in_threadpool(_write, state.logs, body)
        return JSONResponse({})

    return [
        Route("/v2/entries:list", list_entries, methods=["POST"], name="logging-list"),
        Route("/v2/entries:write", write_entries, methods=["POST"], name="logging-write"),
    ]


# -- entries:list --


def _list(logs: LogSink, body: bytes) -> logging_types.ListLogEntriesResponse:
    request = parse_message(logging_types.ListLogEntriesRequest, body)
    projects = [_project_of(name) for name in request.resource_names]
    if not projects:
        raise invalid_argument("resourceNames must name at least one resource (projects/P).")
    descending = _descending(request.order_by)
    size = request.page_size or DEFAULT_PAGE_SIZE
    if size < 0:
        raise invalid_argument("pageSize must not be negative.")
    size = min(size, MAX_PAGE_SIZE)
    matches = compile_filter(request.filter, _entry_term)
    entries = (_Entry(r) for project in dict.fromkeys(projects) for r in _scan(logs, project))
    selected = sorted(
        (entry for entry in entries if matches(entry)),
        key=lambda e: e.position,
        reverse=descending,
    )
    if request.page_token:
        after = _decode_token(request.page_token)
        if descending:
            selected = [e for e in selected if e.position < after]
        else:
            selected = [e for e in selected if e.position > after]
    page = selected[:size]
    token = _encode_token(page[-1].position) if len(selected) > size else ""
    return logging_types.ListLogEntriesResponse(
        entries=[_render(e.record) for e in page], next_page_token=token
    )


def _project_of(resource_name: str) -> str:
    """``projects/P`` (or a log view under it) -> ``P``. Only projects hold entries here."""
    parts = resource_name.split("/")
    if len(parts) >= 2 and parts[0] == "projects" and parts[1]:
        return parts[1]
    if parts[0] in ("organizations", "folders", "billingAccounts"):
        raise invalid_argument(
            f"Resource name {resource_name!r}: the emulator holds project logs only."
        )
    raise invalid_argument(f"Invalid resource name {resource_name!r}.")


def _descending(order_by: str) -> bool:
    normalised = " ".join(order_by.lower().split())
    if normalised in ("", "timestamp", "timestamp asc"):
        return False
    if normalised == "timestamp desc":
        return True
    raise invalid_argument(f"orderBy {order_by!r}: only 'timestamp asc|desc' is supported.")


def _scan(logs: LogSink, project: str) -> Iterator[LogEntryRecord]:
    """Every stored entry of a project, read in batches."""
    after = 0
    while True:
        batch = logs.entries(project, after_id=after, limit=_SCAN_BATCH)
        yield from batch
        if len(batch) < _SCAN_BATCH:
            return
        after = batch[-1].id


class _Entry:
    """A record with the parsed values filters compare (parsed once per request)."""

    __slots__ = ("position", "record", "timestamp")

    def __init__(self, record: LogEntryRecord) -> None:
        self.record = record
        self.timestamp = parse_time(record.timestamp)
        # the write order breaks ties of equal timestamps, so pages never overlap
        self.position = (record.timestamp, record.id)

    def resource_labels(self) -> dict[str, str]:
        record = self.record
        return {
            "project_id": record.project,
            "service_name": record.service,
            "revision_name": record.revision,
            "location": record.location,
            "configuration_name": record.service,
        }

    def payload_text(self) -> str:
        if self.record.json_payload is not None:
            return json.dumps(self.record.json_payload, sort_keys=True)
        return self.record.text_payload or ""


def _encode_token(position: tuple[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode()


def _decode_token(token: str) -> tuple[str, int]:
    try:
        timestamp, entry_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(timestamp), int(entry_id)
    except (binascii.Error, ValueError, TypeError):
        raise invalid_argument(f"Invalid page token {token!r}.") from None


def _insert_id(record: LogEntryRecord) -> str:
    return f"{record.id:016x}"


def _render(record: LogEntryRecord) -> LogEntry:
    moment = parse_time(record.timestamp)
    entry = LogEntry(
        log_name=record.log_name,
        resource={"type": RESOURCE_TYPE, "labels": _Entry(record).resource_labels()},
        timestamp=moment,
        # entries are stored as they arrive, so "received" is the same moment
        receive_timestamp=moment,
        severity=record.severity,
        insert_id=_insert_id(record),
    )
    if record.json_payload is not None:
        entry.json_payload = record.json_payload
    else:
        entry.text_payload = record.text_payload or ""
    return entry


# -- filters --


def _entry_term(term: Term) -> Callable[[_Entry], bool]:
    field = term.field
    if not field:
        needle = term.value.lower()
        return lambda entry: needle in entry.payload_text().lower()
    if field == "resource.type":
        test = string_test(term)
        return lambda entry: test(RESOURCE_TYPE)
    if field.startswith("resource.labels."):
        label = field.removeprefix("resource.labels.")
        test = string_test(term)
        return lambda entry: test(entry.resource_labels().get(label, ""))
    if field == "logName":
        # log names are written with the slash of the log id encoded (%2F); accept both
        test = string_test(Term(field, term.op, _decode_log_name(term.value), term.text))
        return lambda entry: test(_decode_log_name(entry.record.log_name))
    if field == "severity":
        level = ordered_test(term, _severity)
        return lambda entry: level(entry.record.severity)
    if field in ("timestamp", "receiveTimestamp"):
        timed = ordered_test(term, parse_time)
        return lambda entry: timed(entry.timestamp)
    if field == "insertId":
        test = string_test(term)
        return lambda entry: test(_insert_id(entry.record))
    if field == "textPayload":
        test = string_test(term)
        return lambda entry: (
            entry.record.text_payload is not None and test(entry.record.text_payload)
        )
    if field.startswith("jsonPayload."):
        path = field.removeprefix("jsonPayload.").split(".")
        test = string_test(term)
        return lambda entry: _json_field(entry.record.json_payload, path, test)
    if field.startswith("labels."):
        test = string_test(term)
        return lambda entry: test("")  # instances write no entry labels here
    raise unsupported(
        term,
        "the emulator filters on resource.type, resource.labels.*, logName, severity,"
        " timestamp, insertId, textPayload, jsonPayload.* and labels.*",
    )


def _severity(value: str) -> int:
    name = value.strip().upper()
    if name in SEVERITIES:
        return SEVERITIES[name]
    if name.isdigit():
        return int(name)
    raise ValueError(f"unknown severity {value!r}")


def _decode_log_name(name: str) -> str:
    return urllib.parse.unquote(name)


def _json_field(
    payload: dict[str, Any] | None, path: list[str], test: Callable[[str], bool]
) -> bool:
    value: Any = payload
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    text = value if isinstance(value, str) else json.dumps(value)
    return test(text)


# -- entries:write --


def _write(logs: LogSink, body: bytes) -> None:
    request = parse_message(logging_types.WriteLogEntriesRequest, body)
    if not request.entries:
        raise invalid_argument("entries must not be empty.")
    rows = [_accepted(request, index, entry) for index, entry in enumerate(request.entries)]
    if request.dry_run:
        return
    for row in rows:
        logs.write_entry(**row)


def _accepted(
    request: logging_types.WriteLogEntriesRequest, index: int, entry: LogEntry
) -> dict[str, Any]:
    """Check one entry (defaults from the request) and return ``LogSink.write_entry`` args."""
    log_name = entry.log_name or request.log_name
    parts = log_name.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "logs":
        raise invalid_argument(f"entries[{index}]: invalid logName {log_name!r}.")
    log_id = urllib.parse.unquote(parts[3])
    if not log_id.startswith(RUN_LOG_PREFIX):
        raise invalid_argument(
            f"entries[{index}]: log {log_id!r}: the emulator keeps {RUN_LOG_PREFIX}* logs only."
        )
    resource = entry.resource if "resource" in entry else request.resource
    if resource.type != RESOURCE_TYPE:
        raise invalid_argument(
            f"entries[{index}]: resource type {resource.type!r}: the emulator keeps"
            f" {RESOURCE_TYPE} entries only."
        )
    labels = dict(resource.labels)
    if not labels.get("service_name") or not labels.get("revision_name"):
        raise invalid_argument(
            f"entries[{index}]: resource.labels needs service_name and revision_name."
        )
    payload = to_dict(entry)
    timestamp = entry.timestamp if "timestamp" in entry else datetime.now(UTC)
    return {
        "project": parts[1],
        "location": labels.get("location", ""),
        "service": labels["service_name"],
        "revision": labels["revision_name"],
        "log_name": f"projects/{parts[1]}/logs/{urllib.parse.quote(log_id, safe='')}",
        "severity": int(entry.severity),
        "timestamp": timestamp,
        "text_payload": payload.get("textPayload") if "jsonPayload" not in payload else None,
        "json_payload": payload.get("jsonPayload"),
    }
