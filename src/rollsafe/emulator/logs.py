"""Log entries written by revisions (stdout/stderr lines), read by the Logging API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rollsafe.emulator.db import EmulatorDB

__all__ = ["SEVERITIES", "LogEntryRecord", "LogSink"]

# google.logging.type.LogSeverity
SEVERITIES = {
    "DEFAULT": 0,
    "DEBUG": 100,
    "INFO": 200,
    "NOTICE": 300,
    "WARNING": 400,
    "ERROR": 500,
    "CRITICAL": 600,
    "ALERT": 700,
    "EMERGENCY": 800,
}
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


@dataclass(frozen=True, slots=True)
class LogEntryRecord:
    """One stored entry, in the emulator's own terms (the Logging API renders it)."""

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
    payload = json.loads(row["json_payload"])
    name = _NAMES.get(row["severity"])
    if name and name != "DEFAULT":
        payload = {"severity": name, **payload}
    return json.dumps(payload)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LogSink:
    """Turns process output lines into entries, as Cloud Run's logging agent does.

    A line that is a JSON object keeps its ``severity`` and fields (``jsonPayload``); any
    other line is a ``textPayload`` with DEFAULT severity (stderr: ERROR for Python
    tracebacks is not guessed; Cloud Run does not guess either).
    """

    def __init__(self, db: EmulatorDB) -> None:
        self.db = db
        db.ensure_schema(_SCHEMA)

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
        log_name = f"projects/{project}/logs/run.googleapis.com%2F{stream}"
        self.db.execute(
            "INSERT INTO log_entries (project, location, service, revision, log_name, severity,"
            " timestamp, text_payload, json_payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                project,
                location,
                service,
                revision,
                log_name,
                level,
                rfc3339(when or datetime.now(UTC)),
                None if json_payload is not None else text,
                json.dumps(json_payload) if json_payload is not None else None,
            ),
        )

    def write_entry(
        self,
        *,
        project: str,
        location: str,
        service: str,
        revision: str,
        log_name: str,
        severity: int,
        timestamp: datetime,
        text_payload: str | None = None,
        json_payload: dict[str, Any] | None = None,
    ) -> None:
        """Store one structured entry as given (the Logging API's ``entries:write``)."""
        self.db.execute(
            "INSERT INTO log_entries (project, location, service, revision, log_name, severity,"
            " timestamp, text_payload, json_payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                project,
                location,
                service,
                revision,
                log_name,
                severity,
                rfc3339(timestamp),
                text_payload,
                json.dumps(json_payload) if json_payload is not None else None,
            ),
        )

    def entries(
        self, project: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[LogEntryRecord]:
        """Entries of a project in write order, from ``after_id`` on."""
        rows = self.db.query(
            "SELECT * FROM log_entries WHERE project = ? AND id > ? ORDER BY id LIMIT ?",
            (project, after_id, limit),
        )
        return [
            LogEntryRecord(
                id=row["id"],
                project=row["project"],
                location=row["location"],
                service=row["service"],
                revision=row["revision"],
                log_name=row["log_name"],
                severity=row["severity"],
                timestamp=row["timestamp"],
                text_payload=row["text_payload"],
                json_payload=json.loads(row["json_payload"]) if row["json_payload"] else None,
            )
            for row in rows
        ]

    def tail(self, project: str, service: str, revision: str, lines: int = 20) -> list[str]:
        """The last ``lines`` lines a revision printed (for failure messages)."""
        rows = self.db.query(
            "SELECT severity, text_payload, json_payload FROM log_entries WHERE project = ?"
            " AND service = ? AND revision = ? ORDER BY id DESC LIMIT ?",
            (project, service, revision, lines),
        )
        return [_as_printed(row) for row in reversed(rows)]
