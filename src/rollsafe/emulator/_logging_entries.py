"""Log entries of the Logging API: ``entries:write`` checks and stores, ``entries:list`` reads.

``entries:write`` takes any log name and monitored resource type, with the request-level
defaults of the real API: ``logName``, ``resource`` and ``labels`` apply to each entry that
lacks them (an entry's own label wins over a default of the same key); ``partialSuccess``
writes the valid entries and reports the others by index; ``dryRun`` checks only. Entries
without ``insertId`` or ``timestamp`` get one; ``receiveTimestamp`` is the arrival time.

``entries:list`` serves what Google serves: no default time window (the 24 hours that
``google-cloud-logging`` and ``gcloud logging read`` apply are added by those clients), and
entries whose timestamp lies more than the retention period (30 days) in the past or more
than a day in the future are kept but never listed, as Google documents.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud.logging_v2 import types as logging_types

from rollsafe.emulator._google import GoogleError, invalid_argument, parse_message, to_dict
from rollsafe.emulator._logging_filter import compile_entry_filter
from rollsafe.emulator._logging_names import log_name as canonical_log_name
from rollsafe.emulator._logging_names import project_of, split_log_name
from rollsafe.emulator.logs import RUN_RESOURCE, LogSink, StoredEntry, rfc3339

__all__ = ["list_entries", "render", "write_entries"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
RETENTION = timedelta(days=30)
#: Google's limit on the length of a filter
MAX_FILTER_LENGTH = 20_000
#: Google's limit on one entry (its serialized size)
MAX_ENTRY_BYTES = 256 * 1024
FUTURE_LIMIT = timedelta(days=1)
_SCAN_BATCH = 5000
# LogEntry fields kept as given (REST JSON) beyond the ones with columns of their own
_EXTRA_FIELDS = ("spanId", "traceSampled", "sourceLocation", "operation", "protoPayload", "split")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9_./-]{1,512}$")

LogEntry = logging_types.LogEntry


# -- entries:list --


def list_entries(logs: LogSink, body: bytes) -> logging_types.ListLogEntriesResponse:
    """Run one ``entries:list`` request against the stored entries."""
    request = parse_message(logging_types.ListLogEntriesRequest, body)
    projects = [project_of(name) for name in request.resource_names]
    if not projects:
        raise invalid_argument("resourceNames must name at least one resource (projects/P).")
    descending = _descending(request.order_by)
    size = request.page_size or DEFAULT_PAGE_SIZE
    if size < 0:
        raise invalid_argument("pageSize must not be negative.")
    size = min(size, MAX_PAGE_SIZE)
    if len(request.filter) > MAX_FILTER_LENGTH:
        raise invalid_argument(
            f"The filter is {len(request.filter)} characters long; the limit is"
            f" {MAX_FILTER_LENGTH}."
        )
    matches = compile_entry_filter(request.filter)
    now = datetime.now(UTC)
    # stored timestamps are fixed-width RFC 3339, so they compare as text
    oldest, newest = rfc3339(now - RETENTION), rfc3339(now + FUTURE_LIMIT)
    selected = sorted(
        _unique(
            entry
            for project in dict.fromkeys(projects)
            for entry in _scan(logs, project)
            if oldest <= entry.timestamp <= newest and matches(entry)
        ),
        key=lambda e: (e.timestamp, e.id),
        reverse=descending,
    )
    if request.page_token:
        # the write order breaks ties of equal timestamps, so pages never overlap
        after = _decode_token(request.page_token)
        if descending:
            selected = [e for e in selected if (e.timestamp, e.id) < after]
        else:
            selected = [e for e in selected if (e.timestamp, e.id) > after]
    page = selected[:size]
    token = _encode_token((page[-1].timestamp, page[-1].id)) if len(selected) > size else ""
    return logging_types.ListLogEntriesResponse(
        entries=[render(e) for e in page], next_page_token=token
    )


def _unique(entries: Iterable[StoredEntry]) -> Iterator[StoredEntry]:
    """Google lists one entry of those with the same log, ``insertId`` and timestamp (a
    retried write is not listed twice): the first written."""
    seen: set[tuple[str, str, str]] = set()
    for entry in entries:
        key = (entry.log_name, entry.insert_id, entry.timestamp)
        if key not in seen:
            seen.add(key)
            yield entry


def _descending(order_by: str) -> bool:
    normalised = " ".join(order_by.lower().split())
    if normalised in ("", "timestamp", "timestamp asc"):
        return False
    if normalised == "timestamp desc":
        return True
    raise invalid_argument(f"orderBy {order_by!r}: only 'timestamp asc|desc' is supported.")


def _scan(logs: LogSink, project: str) -> Iterator[StoredEntry]:
    """Every stored entry of a project, read in batches."""
    after = 0
    while True:
        batch = logs.stored(project, after_id=after, limit=_SCAN_BATCH)
        yield from batch
        if len(batch) < _SCAN_BATCH:
            return
        after = batch[-1].id


def _encode_token(position: tuple[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode()


def _decode_token(token: str) -> tuple[str, int]:
    try:
        timestamp, entry_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(timestamp), int(entry_id)
    except (binascii.Error, ValueError, TypeError):
        raise invalid_argument(f"Invalid page token {token!r}.") from None


def render(record: StoredEntry) -> LogEntry:
    """A stored record as ``google.logging.v2.LogEntry``."""
    body: dict[str, Any] = {
        **record.extra,
        "logName": record.log_name,
        "resource": {"type": record.resource_type, "labels": record.resource_labels},
        "timestamp": record.timestamp,
        "receiveTimestamp": record.receive_timestamp,
        "severity": record.severity,
        "insertId": record.insert_id,
    }
    if record.labels:
        body["labels"] = record.labels
    if record.http_request:
        body["httpRequest"] = record.http_request
    if record.trace:
        body["trace"] = record.trace
    # an entry may have no payload at all (Cloud Run's request logs have only httpRequest)
    if record.json_payload is not None:
        body["jsonPayload"] = record.json_payload
    elif record.text_payload is not None:
        body["textPayload"] = record.text_payload
    entry: LogEntry = LogEntry.from_json(json.dumps(body), ignore_unknown_fields=True)
    return entry


# -- entries:write --


def write_entries(logs: LogSink, body: bytes) -> None:
    """Run one ``entries:write`` request: check every entry, then store them at once."""
    request = parse_message(logging_types.WriteLogEntriesRequest, body)
    if not request.entries:
        raise invalid_argument("entries must not be empty.")
    received = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    errors: dict[int, str] = {}
    for index, entry in enumerate(request.entries):
        try:
            rows.append(_accepted(request, index, entry, received))
        except GoogleError as exc:
            errors[index] = exc.message
    if errors and not request.partial_success:
        first = min(errors)
        raise _partial_errors(f"entries[{first}]: {errors[first]}", errors)
    if not request.dry_run:
        logs.write_entries(rows)
    if errors:
        first = min(errors)
        raise _partial_errors(f"entries[{first}]: {errors[first]}", errors)


def _partial_errors(message: str, errors: dict[int, str]) -> GoogleError:
    """INVALID_ARGUMENT with ``WriteLogEntriesPartialErrors`` details, as Google reports."""
    error = invalid_argument(message)
    details = {
        "@type": "type.googleapis.com/google.logging.v2.WriteLogEntriesPartialErrors",
        "logEntryErrors": {
            str(index): {"code": 3, "message": text} for index, text in sorted(errors.items())
        },
    }
    error.details = [details]
    return error


def _accepted(
    request: logging_types.WriteLogEntriesRequest,
    index: int,
    entry: LogEntry,
    received: datetime,
) -> dict[str, Any]:
    """Check one entry (with the request's defaults) and return ``LogSink.write_entry`` args."""
    size = LogEntry.pb(entry).ByteSize()
    if size > MAX_ENTRY_BYTES:
        raise invalid_argument(
            f"Log entry with size {_size_text(size)} exceeds maximum size of"
            f" {_size_text(MAX_ENTRY_BYTES)}"
        )
    log_name = entry.log_name or request.log_name
    if not log_name:
        raise invalid_argument("Log name is required (entry logName or request logName).")
    project, log_id = split_log_name(log_name)
    resource = entry.resource if "resource" in entry else request.resource
    if not resource.type:
        raise invalid_argument("A monitored resource with a type is required.")
    resource_labels = {str(k): str(v) for k, v in resource.labels.items()}
    # Logging fills the project of a resource written without one from the log's project
    resource_labels.setdefault("project_id", project)
    labels = {str(k): str(v) for k, v in request.labels.items()}
    labels.update({str(k): str(v) for k, v in entry.labels.items()})
    for key in labels:
        if not _LABEL_KEY.match(key):
            raise invalid_argument(f"Invalid label key {key!r}.")
    payload = to_dict(entry, defaults=False)
    timestamp = entry.timestamp if "timestamp" in entry else received
    is_run = resource.type == RUN_RESOURCE
    return {
        "project": project,
        "location": resource_labels.get("location", "") if is_run else "",
        "service": resource_labels.get("service_name", "") if is_run else "",
        "revision": resource_labels.get("revision_name", "") if is_run else "",
        "log_name": canonical_log_name(project, log_id),
        "severity": int(entry.severity),
        "timestamp": timestamp,
        "text_payload": payload.get("textPayload") if "jsonPayload" not in payload else None,
        "json_payload": payload.get("jsonPayload"),
        "http_request": payload.get("httpRequest"),
        "trace": entry.trace or None,
        "labels": labels or None,
        # Google assigns a unique id to an entry written without one
        "insert_id": entry.insert_id or _new_insert_id(),
        "resource_type": resource.type,
        "resource_labels": resource_labels,
        "receive_timestamp": received,
        "extra": {key: payload[key] for key in _EXTRA_FIELDS if key in payload} or None,
    }


def _size_text(size: int) -> str:
    """Sizes as Google words them: ``300.5K``, ``1.2M``."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}M"
    return f"{size / 1024:.1f}K"


def _new_insert_id() -> str:
    return secrets.token_hex(8)
