"""The emulator's log entry store: what revisions print (stdout/stderr lines), what Cloud
Run itself writes (system and request logs) and what ``entries:write`` receives, read by the
Logging API.

Each entry keeps its log name, monitored resource (type and labels), severity, timestamps,
payload (text or JSON), labels, ``httpRequest`` (REST JSON, camelCase), ``trace``,
``insertId`` and the other ``LogEntry`` fields as given. Databases written before these
columns existed are migrated when opened; their rows read as the ``cloud_run_revision``
entries they were.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from rollsafe.emulator.db import EmulatorDB
from rollsafe.platforms.logs import SEVERITIES

__all__ = [
    "RUN_RESOURCE",
    "SEVERITIES",
    "LogEntryRecord",
    "LogSink",
    "StoredEntry",
    "rfc3339",
    "run_labels",
]

_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "ERR": "ERROR", "TRACE": "DEBUG"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    location TEXT NOT NULL,
    service TEXT NOT NULL,
    revision TEXT NOT NULL,
    log_name TEXT NOT NULL,
    severity INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    text_payload TEXT,
    json_payload TEXT
);
CREATE INDEX IF NOT EXISTS log_entries_by_service ON log_entries (project, service, id);
"""

# columns added after the first release: old state directories get them on open
_ADDED_COLUMNS = (
    ("resource_type", "TEXT NOT NULL DEFAULT 'cloud_run_revision'"),
    ("resource_labels", "TEXT"),
    ("labels", "TEXT"),
    ("http_request", "TEXT"),
    ("trace", "TEXT"),
    ("insert_id", "TEXT"),
    ("receive_timestamp", "TEXT"),
    ("extra", "TEXT"),
)
_INDEXES = """
CREATE INDEX IF NOT EXISTS log_entries_by_log ON log_entries (project, log_name, id);
"""
_COLUMNS = (
    "project",
    "location",
    "service",
    "revision",
    "log_name",
    "severity",
    "timestamp",
    "text_payload",
    "json_payload",
    *(name for name, _ in _ADDED_COLUMNS),
)
_INSERT = (
    f"INSERT INTO log_entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
RUN_RESOURCE = "cloud_run_revision"


@dataclass(frozen=True, slots=True)
class LogEntryRecord:
    """One stored entry, in the emulator's own terms (the Logging API renders it).

    ``location``/``service``/``revision`` are empty for entries of other resources than
    ``cloud_run_revision``; ``resource_labels`` always holds the resource's labels.
    ``extra`` keeps the REST JSON of the remaining ``LogEntry`` fields the writer gave
    (``spanId``, ``traceSampled``, ``sourceLocation``, ``operation``, ``protoPayload``...).
    """

    id: int
    project: str
    location: str
    service: str
    revision: str
    log_name: str
    severity: int
    timestamp: str
    text_payload: str | None
    json_payload: dict[str, Any] | None
    resource_type: str = RUN_RESOURCE
    resource_labels: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    http_request: dict[str, Any] | None = None
    trace: str | None = None
    insert_id: str = ""
    receive_timestamp: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def run_labels(project: str, location: str, service: str, revision: str) -> dict[str, str]:
    """The ``cloud_run_revision`` resource labels Cloud Run puts on a revision's entries."""
    return {
        "project_id": project,
        "service_name": service,
        "revision_name": revision,
        "location": location,
        "configuration_name": service,
    }


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


class StoredEntry:
    """A stored row as the Logging API reads it: the JSON columns are parsed on first use,
    since a filter usually looks at one or two of them and most rows fail it."""

    def __init__(self, row: Any) -> None:
        self._row = row
        self.id: int = row["id"]
        self.project: str = row["project"]
        self.location: str = row["location"]
        self.service: str = row["service"]
        self.revision: str = row["revision"]
        self.log_name: str = row["log_name"]
        self.severity: int = row["severity"]
        self.timestamp: str = row["timestamp"]  # fixed-width RFC 3339: sorts as text
        self.text_payload: str | None = row["text_payload"]
        self.resource_type: str = row["resource_type"] or RUN_RESOURCE
        self.trace: str | None = row["trace"]
        # entries written without one get a stable id derived from their row
        self.insert_id: str = row["insert_id"] or f"{row['id']:016x}"
        self.receive_timestamp: str = row["receive_timestamp"] or row["timestamp"]

    @cached_property
    def json_payload(self) -> dict[str, Any] | None:
        payload: dict[str, Any] | None = _loads(self._row["json_payload"])
        return payload

    @cached_property
    def resource_labels(self) -> dict[str, str]:
        labels: dict[str, str] | None = _loads(self._row["resource_labels"])
        # NULL: a cloud_run_revision entry labelled from its columns (revision output,
        # request logs, rows written before resource labels were stored)
        if labels is None:
            return run_labels(self.project, self.location, self.service, self.revision)
        return labels

    @cached_property
    def labels(self) -> dict[str, str]:
        return _loads(self._row["labels"]) or {}

    @cached_property
    def http_request(self) -> dict[str, Any] | None:
        request: dict[str, Any] | None = _loads(self._row["http_request"])
        return request

    @cached_property
    def extra(self) -> dict[str, Any]:
        return _loads(self._row["extra"]) or {}

    def record(self) -> LogEntryRecord:
        """Everything, parsed."""
        return LogEntryRecord(
            id=self.id,
            project=self.project,
            location=self.location,
            service=self.service,
            revision=self.revision,
            log_name=self.log_name,
            severity=self.severity,
            timestamp=self.timestamp,
            text_payload=self.text_payload,
            json_payload=self.json_payload,
            resource_type=self.resource_type,
            resource_labels=self.resource_labels,
            labels=self.labels,
            http_request=self.http_request,
            trace=self.trace,
            insert_id=self.insert_id,
            receive_timestamp=self.receive_timestamp,
            extra=self.extra,
        )


def _severity(raw: object, default: int) -> int:
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        name = raw.strip().upper()
        return SEVERITIES.get(_ALIASES.get(name, name), default)
    return default


_NAMES = {number: name for name, number in SEVERITIES.items()}


def _as_printed(row: Any) -> str:
    """A stored line as the app printed it: a JSON line gets its severity back first."""
    if row["text_payload"] is not None:
        return str(row["text_payload"])
    if row["json_payload"] is None:
        return ""
    payload = json.loads(row["json_payload"])
    name = _NAMES.get(row["severity"])
    if name and name != "DEFAULT":
        payload = {"severity": name, **payload}
    return json.dumps(payload)


def rfc3339(moment: datetime) -> str:
    """``2026-01-02T03:04:05.000006Z``: fixed width, so stored timestamps sort as text."""
    # isoformat is several times faster than strftime, and the router logs every request
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class LogSink:
    """Turns process output lines into entries, as Cloud Run's logging agent does, and keeps
    the entries the Logging API's ``entries:write`` receives.

    A line that is a JSON object keeps its ``severity`` and fields (``jsonPayload``); any
    other line is a ``textPayload`` with DEFAULT severity (stderr: ERROR for Python
    tracebacks is not guessed; Cloud Run does not guess either).
    """

    def __init__(self, db: EmulatorDB) -> None:
        self.db = db
        db.ensure_schema(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        present = {row["name"] for row in self.db.query("PRAGMA table_info(log_entries)")}
        for name, declaration in _ADDED_COLUMNS:
            if name not in present:
                self.db.execute(f"ALTER TABLE log_entries ADD COLUMN {name} {declaration}")
        self.db.ensure_schema(_INDEXES)

    def write_line(
        self,
        *,
        project: str,
        location: str,
        service: str,
        revision: str,
        stream: str,
        line: str,
        when: datetime | None = None,
        severity: int | None = None,
    ) -> None:
        """Store one output line of a revision instance (``stream``: stdout or stderr)."""
        text = line.rstrip("\r\n")
        if not text:
            return
        json_payload: dict[str, Any] | None = None
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                json_payload = parsed
        level = severity if severity is not None else SEVERITIES["DEFAULT"]
        if json_payload is not None:
            level = _severity(json_payload.pop("severity", None), level)
        self.write_entry(
            project=project,
            location=location,
            service=service,
            revision=revision,
            log_name=f"projects/{project}/logs/run.googleapis.com%2F{stream}",
            severity=level,
            timestamp=when or datetime.now(UTC),
            text_payload=None if json_payload is not None else text,
            json_payload=json_payload,
        )

    def write_entry(
        self,
        *,
        project: str,
        location: str = "",
        service: str = "",
        revision: str = "",
        log_name: str,
        severity: int,
        timestamp: datetime,
        text_payload: str | None = None,
        json_payload: dict[str, Any] | None = None,
        http_request: dict[str, Any] | None = None,
        trace: str | None = None,
        labels: dict[str, str] | None = None,
        insert_id: str | None = None,
        resource_type: str = RUN_RESOURCE,
        resource_labels: dict[str, str] | None = None,
        receive_timestamp: datetime | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Store one structured entry as given (the Logging API's ``entries:write``).

        ``http_request`` is the REST JSON of ``google.logging.type.HttpRequest`` (camelCase
        keys); ``resource_labels`` defaults to the ``cloud_run_revision`` labels of
        project/location/service/revision; ``receive_timestamp`` defaults to now.
        """
        self.write_entries(
            [
                {
                    "project": project,
                    "location": location,
                    "service": service,
                    "revision": revision,
                    "log_name": log_name,
                    "severity": severity,
                    "timestamp": timestamp,
                    "text_payload": text_payload,
                    "json_payload": json_payload,
                    "http_request": http_request,
                    "trace": trace,
                    "labels": labels,
                    "insert_id": insert_id,
                    "resource_type": resource_type,
                    "resource_labels": resource_labels,
                    "receive_timestamp": receive_timestamp,
                    "extra": extra,
                }
            ]
        )

    def write_entries(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store many entries in one transaction; each dict holds ``write_entry``'s keyword
        arguments (the router's request logs, a batch of ``entries:write``)."""
        if not rows:
            return
        now = rfc3339(datetime.now(UTC))
        params = [_params(row, now) for row in rows]
        with self.db.transaction() as conn:
            conn.executemany(_INSERT, params)

    def entries(
        self, project: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[LogEntryRecord]:
        """Entries of a project in write order, from ``after_id`` on."""
        return [stored.record() for stored in self.stored(project, after_id=after_id, limit=limit)]

    def stored(self, project: str, *, after_id: int = 0, limit: int = 1000) -> list[StoredEntry]:
        """Like ``entries``, with the JSON columns parsed only when read."""
        rows = self.db.query(
            "SELECT * FROM log_entries WHERE project = ? AND id > ? ORDER BY id LIMIT ?",
            (project, after_id, limit),
        )
        return [StoredEntry(row) for row in rows]

    def log_names(self, project: str) -> list[str]:
        """The distinct log names (``projects/P/logs/ID``, ID URL-encoded) holding entries."""
        rows = self.db.query(
            "SELECT DISTINCT log_name FROM log_entries WHERE project = ? ORDER BY log_name",
            (project,),
        )
        return [row["log_name"] for row in rows]

    def delete_log(self, log_name: str) -> int:
        """Delete every entry of one log (``projects/P/logs/ID``); returns how many."""
        with self.db.transaction() as conn:
            cursor = conn.execute("DELETE FROM log_entries WHERE log_name = ?", (log_name,))
            return cursor.rowcount

    def tail(self, project: str, service: str, revision: str, lines: int = 20) -> list[str]:
        """The last ``lines`` lines a revision printed (for failure messages); request logs
        are not lines the revision printed."""
        rows = self.db.query(
            "SELECT severity, text_payload, json_payload FROM log_entries WHERE project = ?"
            " AND service = ? AND revision = ? AND log_name NOT LIKE '%2Frequests'"
            " ORDER BY id DESC LIMIT ?",
            (project, service, revision, lines),
        )
        return [_as_printed(row) for row in reversed(rows)]


def _params(row: dict[str, Any], now: str) -> tuple[Any, ...]:
    project = row["project"]
    location = row.get("location", "")
    service = row.get("service", "")
    revision = row.get("revision", "")
    resource_type = row.get("resource_type") or RUN_RESOURCE
    resource_labels = row.get("resource_labels")
    if resource_labels is None and resource_type != RUN_RESOURCE:
        resource_labels = {}
    # NULL stands for the cloud_run_revision labels of the row's own columns (see _record)
    labels_json = json.dumps(resource_labels) if resource_labels is not None else None
    json_payload = row.get("json_payload")
    received = row.get("receive_timestamp")
    return (
        project,
        location,
        service,
        revision,
        row["log_name"],
        row["severity"],
        rfc3339(row["timestamp"]),
        None if json_payload is not None else row.get("text_payload"),
        json.dumps(json_payload) if json_payload is not None else None,
        resource_type,
        labels_json,
        json.dumps(row["labels"]) if row.get("labels") else None,
        json.dumps(row["http_request"]) if row.get("http_request") else None,
        row.get("trace") or None,
        row.get("insert_id") or None,
        rfc3339(received) if received is not None else now,
        json.dumps(row["extra"]) if row.get("extra") else None,
    )
