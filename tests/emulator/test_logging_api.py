"""Cloud Logging v2 of the emulator, read with google-cloud-logging (and gcloud) over HTTP.

The GAPIC ``LoggingServiceV2Client`` ships gRPC transports only, so the REST clients here
are the high-level ``google.cloud.logging.Client(_use_grpc=False)``, gcloud, and raw HTTP
parsed with the GAPIC ``ListLogEntriesResponse`` type.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from google.api_core import exceptions
from google.cloud import logging as cloud_logging
from google.cloud.logging_v2 import types as logging_types
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from rollsafe.emulator import logging_api
from rollsafe.emulator._google import GoogleError, error_response
from rollsafe.emulator.logs import LogSink
from rollsafe.emulator.state import EmulatorState
from tests.emulator.conftest import configured_gcloud, open_logging_client

# recent: google-cloud-logging adds `timestamp>="a day ago"` to a filter without a timestamp
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _at(seconds: float, *, z: bool = True) -> str:
    text = (T0 + timedelta(seconds=seconds)).isoformat()
    return text.replace("+00:00", "Z") if z else text


TIMES = {
    "t2": _at(2),
    "t3_5": _at(3.5),
    "t5": _at(5),
    "t6_offset": _at(6, z=False),
}


@pytest.fixture(autouse=True)
def _no_metadata_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """google-cloud-logging builds a Logger for each log name it reads, and each Logger
    probes the GCE metadata server (``metadata.google.internal``, 5 s timeout) to guess
    where it runs. That is the client's business, not the emulator's: skip it to keep the
    tests fast wherever DNS is slow to say no."""
    from google.cloud.logging_v2 import logger

    monkeypatch.setattr(logger, "detect_resource", lambda project="": None)


@pytest.fixture
def client(emulator: str, project: str) -> Iterator[cloud_logging.Client]:
    with open_logging_client(emulator, project) as opened:
        yield opened


def _entry(
    project: str,
    index: int,
    *,
    service: str = "api",
    revision: str = "api-00001",
    severity: str = "INFO",
    stream: str = "stdout",
    payload: Any = None,
    when: datetime | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "logName": f"projects/{project}/logs/run.googleapis.com%2F{stream}",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {
                "service_name": service,
                "revision_name": revision,
                "location": "us-central1",
            },
        },
        "severity": severity,
    }
    if when is not None or index >= 0:
        entry["timestamp"] = (
            (when or T0 + timedelta(seconds=index)).isoformat().replace("+00:00", "Z")
        )
    if isinstance(payload, dict):
        entry["jsonPayload"] = payload
    else:
        entry["textPayload"] = payload if payload is not None else f"line {index}"
    return entry


@pytest.fixture
def written(client: cloud_logging.Client, project: str) -> list[dict[str, Any]]:
    """Ten entries one second apart over two services and three revisions."""
    entries = [
        _entry(project, 0, severity="DEBUG"),
        _entry(project, 1),
        _entry(project, 2, severity="WARNING"),
        _entry(project, 3, severity="ERROR", stream="stderr", payload="Traceback: boom"),
        _entry(project, 4, revision="api-00002"),
        _entry(
            project,
            5,
            revision="api-00002",
            severity="CRITICAL",
            payload={"message": "structured", "code": 3},
        ),
        _entry(project, 6, service="web", revision="web-00001"),
        _entry(project, 7, service="web", revision="web-00001", severity="ERROR"),
        _entry(project, 8, revision="api-00002", severity="NOTICE"),
        _entry(project, 9, severity="DEFAULT"),
    ]
    # written out of order: reads sort by timestamp, not by arrival
    client.logging_api.write_entries(entries[5:] + entries[:5])
    return entries


def _lines(entries: Any) -> list[int]:
    """The index of each entry (its timestamp's second)."""
    return [int((entry.timestamp - T0).total_seconds()) for entry in entries]


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ('resource.type="cloud_run_revision"', list(range(10))),
        ('resource.type = "cloud_run_job"', []),
        ('resource.labels.service_name="web"', [6, 7]),
        ('resource.labels.revision_name="api-00002"', [4, 5, 8]),
        ("severity>=ERROR", [3, 5, 7]),
        ("severity=WARNING", [2]),
        ("severity>warning", [3, 5, 7]),
        ("severity<INFO", [0, 9]),
        ("severity<=200", [0, 1, 4, 6, 9]),
        ('timestamp>="{t5}"', [5, 6, 7, 8, 9]),
        ('timestamp<"{t2}"', [0, 1]),
        ("timestamp>={t3_5} timestamp<{t6_offset}", [4, 5]),
        ('resource.labels.service_name="api"\nseverity>=WARNING', [2, 3, 5]),
        ('resource.labels.service_name="api" AND severity>=ERROR', [3, 5]),
        ("severity>=ERROR OR resource.labels.revision_name=api-00002", [3, 4, 5, 7, 8]),
        ("NOT severity<ERROR", [3, 5, 7]),
        ('-resource.labels.service_name="api"', [6, 7]),
        ('(severity=DEBUG OR severity=DEFAULT) resource.type="cloud_run_revision"', [0, 9]),
        ('textPayload:"BOOM"', [3]),
        ('jsonPayload.message="structured"', [5]),
        ("jsonPayload.code=3", [5]),  # JSON numbers compare as numbers
        ("jsonPayload.code>=2.5", [5]),
        ("jsonPayload.code<3", []),
        ('resource.type=("cloud_run_job" OR "cloud_run_revision") severity>=ERROR', [3, 5, 7]),
        ('LOG_ID("run.googleapis.com/stderr")', [3]),
        ('NOT LOG_ID("run.googleapis.com/stdout")', [3]),
        ("structured", [5]),
        ('resource.labels.service_name=~"^w"', [6, 7]),
        ('insertId!=""', list(range(10))),
    ],
)
def test_filters(
    client: cloud_logging.Client, written: list[dict[str, Any]], filter_: str, expected: list[int]
) -> None:
    assert _lines(client.list_entries(filter_=filter_.format(**TIMES))) == expected


def test_log_name_filter(
    client: cloud_logging.Client, project: str, written: list[dict[str, Any]]
) -> None:
    encoded = f'logName="projects/{project}/logs/run.googleapis.com%2Fstderr"'
    decoded = f'logName="projects/{project}/logs/run.googleapis.com/stderr"'
    assert _lines(client.list_entries(filter_=encoded)) == [3]
    assert _lines(client.list_entries(filter_=decoded)) == [3]


def test_entries_have_cloud_run_shape(
    client: cloud_logging.Client, project: str, written: list[dict[str, Any]]
) -> None:
    text, structured = (
        next(iter(client.list_entries(filter_=f)))
        for f in ("severity=ERROR textPayload:boom", "severity=CRITICAL")
    )
    assert type(text).__name__ == "TextEntry"
    assert text.payload == "Traceback: boom"
    assert text.log_name == f"projects/{project}/logs/run.googleapis.com%2Fstderr"
    assert text.severity == "ERROR"
    assert text.timestamp == T0 + timedelta(seconds=3)
    assert text.received_timestamp > text.timestamp  # written an hour later
    assert text.insert_id
    assert text.resource.type == "cloud_run_revision"
    # the resource labels as written, and project_id from the log name (as Logging does)
    assert text.resource.labels == {
        "project_id": project,
        "service_name": "api",
        "revision_name": "api-00001",
        "location": "us-central1",
    }
    assert type(structured).__name__ == "StructEntry"
    assert structured.payload == {"message": "structured", "code": 3}


def test_order(client: cloud_logging.Client, written: list[dict[str, Any]]) -> None:
    assert _lines(client.list_entries(order_by=cloud_logging.DESCENDING)) == list(range(9, -1, -1))
    assert _lines(client.list_entries(order_by=cloud_logging.ASCENDING)) == list(range(10))


def _page(endpoint: str, body: dict[str, Any]) -> logging_types.ListLogEntriesResponse:
    reply = httpx.post(f"{endpoint}/v2/entries:list", json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    return logging_types.ListLogEntriesResponse.from_json(reply.text)


@pytest.mark.parametrize(
    ("order", "page_size", "sizes"),
    [("timestamp asc", 0, [50, 50, 20]), ("timestamp desc", 33, [33, 33, 33, 21])],
)
def test_paging(
    emulator: str,
    client: cloud_logging.Client,
    project: str,
    order: str,
    page_size: int,
    sizes: list[int],
) -> None:
    client.logging_api.write_entries(
        [_entry(project, i, when=T0 + timedelta(milliseconds=i)) for i in range(120)]
    )
    body: dict[str, Any] = {
        "resourceNames": [f"projects/{project}"],
        "orderBy": order,
        "pageSize": page_size,
    }
    pages = [_page(emulator, body)]
    while pages[-1].next_page_token:
        pages.append(_page(emulator, {**body, "pageToken": pages[-1].next_page_token}))
    assert [len(page.entries) for page in pages] == sizes
    seen = [entry.text_payload for page in pages for entry in page.entries]
    expected = [f"line {i}" for i in range(120)]
    assert seen == (expected if order.endswith("asc") else expected[::-1])
    # the high-level client pages through all of them by itself
    assert len(list(client.list_entries(page_size=7))) == 120


def test_page_token_is_stable_while_entries_arrive(
    emulator: str, client: cloud_logging.Client, project: str
) -> None:
    client.logging_api.write_entries([_entry(project, i) for i in range(10)])
    body: dict[str, Any] = {
        "resourceNames": [f"projects/{project}"],
        "pageSize": 4,
        "orderBy": "timestamp desc",
    }
    first = _page(emulator, body)
    client.logging_api.write_entries([_entry(project, 30)])  # newer than everything
    second = _page(emulator, {**body, "pageToken": first.next_page_token})
    assert [e.text_payload for e in second.entries] == ["line 5", "line 4", "line 3", "line 2"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"filter": "foo.bar=1"}, "Unsupported filter term 'foo.bar=1'"),
        ({"filter": "severity>=LOUD"}, "Unsupported filter term 'severity>=LOUD'"),
        (
            {"filter": 'timestamp>="yesterday"'},
            "Unsupported filter term 'timestamp>=\"yesterday\"'",
        ),
        ({"filter": "severity>=ERROR AND (resource.type=x"}, "missing ')'"),
        ({"orderBy": "severity desc"}, "only 'timestamp asc|desc'"),
        ({"pageToken": "garbage"}, "Invalid page token"),
        ({"filter": "severity>=ERROR " * 1500}, "the limit is 20000"),
        ({"resourceNames": []}, "resourceNames"),
        ({"resourceNames": ["organizations/1"]}, "project logs only"),
    ],
)
def test_bad_requests_are_invalid_argument(
    emulator: str, project: str, body: dict[str, Any], message: str
) -> None:
    reply = httpx.post(
        f"{emulator}/v2/entries:list", json={"resourceNames": [f"projects/{project}"], **body}
    )
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert message in error["message"]


def test_bad_filter_reaches_the_client_as_bad_request(client: cloud_logging.Client) -> None:
    with pytest.raises(exceptions.BadRequest, match="Unsupported filter term"):
        list(client.list_entries(filter_="protoPayload.methodName=x"))


def _write(endpoint: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{endpoint}/v2/entries:write", json=body, timeout=10)


def _raw_entries(endpoint: str, project: str, filter_: str = "") -> list[dict[str, Any]]:
    reply = httpx.post(
        f"{endpoint}/v2/entries:list",
        json={"resourceNames": [f"projects/{project}"], "filter": filter_},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    entries: list[dict[str, Any]] = reply.json().get("entries", [])
    return entries


def test_write_any_log_with_request_defaults(emulator: str, project: str) -> None:
    """logName, resource and labels of the request apply to entries that lack them; an
    entry's own label wins; insertId and timestamps are assigned when absent."""
    reply = _write(
        emulator,
        {
            "logName": f"projects/{project}/logs/my-app",
            "resource": {"type": "global", "labels": {"project_id": project}},
            "labels": {"env": "dev", "team": "core"},
            "entries": [
                {"textPayload": "plain"},
                {
                    "textPayload": "own",
                    "logName": f"projects/{project}/logs/other%2Flog",
                    "resource": {"type": "gce_instance", "labels": {"zone": "z"}},
                    "labels": {"team": "edge"},
                    "insertId": "mine",
                    "timestamp": _at(1),
                },
            ],
        },
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {}
    own, plain = sorted(_raw_entries(emulator, project), key=lambda e: e["textPayload"])
    assert own["textPayload"] == "own"
    assert plain["logName"] == f"projects/{project}/logs/my-app"
    assert plain["resource"] == {"type": "global", "labels": {"project_id": project}}
    assert plain["labels"] == {"env": "dev", "team": "core"}
    assert plain["insertId"]
    assert plain["timestamp"] == plain["receiveTimestamp"]
    assert own["logName"] == f"projects/{project}/logs/other%2Flog"
    # the project of the log fills a resource's missing project_id, as Logging does
    assert own["resource"] == {
        "type": "gce_instance",
        "labels": {"zone": "z", "project_id": project},
    }
    assert own["labels"] == {"env": "dev", "team": "edge"}
    assert own["insertId"] == "mine"
    assert own["timestamp"].startswith(_at(1)[:19])
    assert own["receiveTimestamp"] > own["timestamp"]


def test_partial_success_and_dry_run(emulator: str, project: str) -> None:
    good = {"logName": f"projects/{project}/logs/ok", "textPayload": "good"}
    bad = {"logName": f"projects/{project}/logs/bad log!", "textPayload": "bad"}
    body: dict[str, Any] = {"resource": {"type": "global"}, "entries": [good, bad]}
    # without partialSuccess nothing is written
    refused = _write(emulator, body)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith("entries[1]: Invalid log ID")
    (details,) = error["details"]
    assert details["@type"].endswith("google.logging.v2.WriteLogEntriesPartialErrors")
    assert set(details["logEntryErrors"]) == {"1"}
    assert _raw_entries(emulator, project) == []
    # dryRun checks only
    assert _write(emulator, {**body, "entries": [good], "dryRun": True}).status_code == 200
    assert _raw_entries(emulator, project) == []
    # with partialSuccess the good one is written and the bad one still reported
    partial = _write(emulator, {**body, "partialSuccess": True})
    assert partial.status_code == 400
    assert [e["textPayload"] for e in _raw_entries(emulator, project)] == ["good"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"textPayload": "x", "resource": {"type": "global"}}, "Log name is required"),
        ({"logName": "projects/p/logs/x", "textPayload": "x"}, "monitored resource"),
        (
            {"logName": "organizations/1/logs/x", "resource": {"type": "global"}},
            "project logs only",
        ),
        ({"logName": "projects/p/x", "resource": {"type": "global"}}, "Invalid log name"),
        (
            {
                "logName": "projects/p/logs/x",
                "resource": {"type": "global"},
                "textPayload": "x" * 300_000,
            },
            "Log entry with size 293.0K exceeds maximum size of 256.0K",
        ),
    ],
    ids=["no-log-name", "no-resource", "organization", "malformed", "too-large"],
)
def test_write_refusals(emulator: str, entry: dict[str, Any], message: str) -> None:
    reply = _write(emulator, {"entries": [entry]})
    assert reply.status_code == 400
    assert message in reply.json()["error"]["message"]


def test_old_and_far_entries_are_kept_but_not_listed(emulator: str, project: str) -> None:
    """Google keeps entries outside [now - 30 days, now + 1 day] out of entries:list."""
    now = datetime.now(UTC)
    stamps = {"old": now - timedelta(days=31), "future": now + timedelta(days=2), "now": now}
    reply = _write(
        emulator,
        {
            "logName": f"projects/{project}/logs/times",
            "resource": {"type": "global"},
            "entries": [
                {"textPayload": name, "timestamp": moment.isoformat().replace("+00:00", "Z")}
                for name, moment in stamps.items()
            ],
        },
    )
    assert reply.status_code == 200, reply.text
    assert [e["textPayload"] for e in _raw_entries(emulator, project)] == ["now"]
    logs = httpx.get(f"{emulator}/v2/projects/{project}/logs").json()
    assert logs["logNames"] == [f"projects/{project}/logs/times"]


# -- what revision processes write (LogSink.write_line), through an in-process server --


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[str, LogSink]]:
    """The Logging routes over a state of our own, served by uvicorn on a free port."""
    state = EmulatorState.open(tmp_path)

    async def google_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GoogleError)
        return error_response(exc.code, exc.status, exc.message)

    app = Starlette(
        routes=logging_api.routes(state), exception_handlers={GoogleError: google_error}
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", state.logs
    finally:
        server.should_exit = True
        thread.join(10)
        state.close()


def test_lines_written_by_revisions(local: tuple[str, LogSink]) -> None:
    endpoint, logs = local
    where = {
        "project": "p",
        "location": "europe-west1",
        "service": "backend",
        "revision": "backend-00007",
    }
    logs.write_line(**where, stream="stdout", line="Uvicorn running on http://127.0.0.1:8080\n")
    logs.write_line(
        **where, stream="stdout", line='{"severity": "ERROR", "message": "SERVICE_SECRET too weak"}'
    )
    logs.write_line(**where, stream="stderr", line="Container called exit(3).")
    logs.write_line(**{**where, "project": "q"}, stream="stdout", line="another project")

    with open_logging_client(endpoint, "p") as client:
        entries = list(client.list_entries(filter_='resource.labels.revision_name="backend-00007"'))
        assert [e.payload for e in entries] == [
            "Uvicorn running on http://127.0.0.1:8080",
            {"message": "SERVICE_SECRET too weak"},
            "Container called exit(3).",
        ]
        assert [e.severity for e in entries] == [
            None,
            "ERROR",
            None,
        ]  # DEFAULT is left out, as Google does
        assert entries[2].log_name == "projects/p/logs/run.googleapis.com%2Fstderr"
        assert entries[0].resource.labels == {
            "project_id": "p",
            "service_name": "backend",
            "revision_name": "backend-00007",
            "location": "europe-west1",
            "configuration_name": "backend",
        }
        (error,) = client.list_entries(filter_="severity>=ERROR")
        assert error.payload == {"message": "SERVICE_SECRET too weak"}
        assert [e.payload for e in client.list_entries(filter_='"exit(3)"')] == [
            "Container called exit(3)."
        ]


# -- gcloud --


def test_gcloud_logging_read(
    emulator: str, client: cloud_logging.Client, project: str, tmp_path: Path
) -> None:
    run = configured_gcloud(emulator, project, tmp_path / "gcloud", "logging")
    # recent entries: `gcloud logging read` only asks for the last day by default
    client.logging_api.write_entries(
        [
            _entry(project, -1, service="api", severity="ERROR", payload="from gcloud"),
            _entry(project, -1, service="web", severity="ERROR", payload="other service"),
        ]
    )
    out = run(
        "logging",
        "read",
        'resource.type="cloud_run_revision" AND resource.labels.service_name="api" AND severity>=ERROR',
        "--format=value(textPayload)",
    ).stdout
    assert out.split("\n")[0] == "from gcloud"
    assert "other service" not in out


def test_a_retried_write_is_listed_once(emulator: str, project: str) -> None:
    """Same log, insertId and timestamp: one entry, as Google deduplicates."""
    entry = {
        "logName": f"projects/{project}/logs/retried",
        "resource": {"type": "global"},
        "insertId": "once",
        "timestamp": _at(1),
        "textPayload": "first",
    }
    again = {**entry, "textPayload": "second"}
    later = {**entry, "timestamp": _at(2), "textPayload": "other time"}
    for body in ([entry], [again], [later]):
        assert _write(emulator, {"entries": body}).status_code == 200
    assert [e["textPayload"] for e in _raw_entries(emulator, project)] == ["first", "other time"]
