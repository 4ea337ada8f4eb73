"""LogSink: the entry store revisions, the router and entries:write share."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rollsafe.emulator.db import EmulatorDB
from rollsafe.emulator.logs import LogSink

_OLD_SCHEMA = """
CREATE TABLE log_entries (
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
"""


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[LogSink]:
    db = EmulatorDB(tmp_path / "db.sqlite3")
    try:
        yield LogSink(db)
    finally:
        db.close()


def test_old_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(_OLD_SCHEMA)
        conn.execute(
            "INSERT INTO log_entries (project, location, service, revision, log_name,"
            " severity, timestamp, text_payload) VALUES ('p', 'eu', 'api', 'api-1',"
            " 'projects/p/logs/run.googleapis.com%2Fstdout', 0, '2026-01-01T00:00:00.000000Z',"
            " 'before')"
        )
    conn.close()
    db = EmulatorDB(path)
    try:
        logs = LogSink(db)
        logs.write_entry(
            project="p",
            log_name="projects/p/logs/app",
            severity=200,
            timestamp=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC),
            text_payload="after",
            resource_type="global",
            labels={"k": "v"},
        )
        old, new = logs.entries("p")
        # the old row reads as the cloud_run_revision entry it was
        assert old.resource_type == "cloud_run_revision"
        assert old.resource_labels == {
            "project_id": "p",
            "service_name": "api",
            "revision_name": "api-1",
            "location": "eu",
            "configuration_name": "api",
        }
        assert old.insert_id
        assert old.receive_timestamp == old.timestamp
        assert (new.resource_type, new.resource_labels, new.labels) == ("global", {}, {"k": "v"})
    finally:
        db.close()


def test_write_entries_in_one_batch_with_request_fields(sink: LogSink) -> None:
    when = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    rows = [
        {
            "project": "p",
            "location": "us-central1",
            "service": "api",
            "revision": "api-00001",
            "log_name": "projects/p/logs/run.googleapis.com%2Frequests",
            "severity": 500,
            "timestamp": when,
            "http_request": {"requestMethod": "GET", "status": 503, "latency": "0.010s"},
            "trace": f"projects/p/traces/{index:032x}",
        }
        for index in range(20)
    ]
    sink.write_entries(rows)
    entries = sink.entries("p")
    assert len(entries) == 20
    first = entries[0]
    assert first.http_request == {"requestMethod": "GET", "status": 503, "latency": "0.010s"}
    assert first.trace == f"projects/p/traces/{0:032x}"
    assert first.resource_type == "cloud_run_revision"
    assert first.resource_labels["revision_name"] == "api-00001"
    assert first.resource_labels["configuration_name"] == "api"
    assert len({e.insert_id for e in entries}) == 20
    # request logs are not lines the revision printed
    assert sink.tail("p", "api", "api-00001") == []


def test_delete_log_and_names(sink: LogSink) -> None:
    when = datetime(2026, 5, 1, tzinfo=UTC)
    for name in ("b", "a", "a"):
        sink.write_entry(
            project="p", log_name=f"projects/p/logs/{name}", severity=0, timestamp=when
        )
    assert sink.log_names("p") == ["projects/p/logs/a", "projects/p/logs/b"]
    assert sink.delete_log("projects/p/logs/a") == 2
    assert sink.delete_log("projects/p/logs/a") == 0
    assert sink.log_names("p") == ["projects/p/logs/b"]
