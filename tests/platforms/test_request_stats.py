"""``request_stats``: the request log of a service over a window, per revision. One contract
for the twin and for Cloud Logging (the official client against the emulator)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
from google.cloud import logging as cloud_logging

from rollsafe.platforms.logs import (
    REQUEST_LOG,
    CloudLoggingRevisionLogs,
    InMemoryRevisionLogs,
    RequestStats,
    RevisionLogs,
    request_filter,
)
from tests.emulator.conftest import open_logging_client

#: (service, revision, seconds after the window opens, status, latency, host)
ROWS = [
    ("web", "web-1", 0.0, 200, 0.010, "web.example"),
    ("web", "web-1", 1.0, 200, 0.030, "web.example"),
    ("web", "web-2", 1.5, 500, 0.200, "web.example"),
    ("web", "web-2", 2.0, 200, 0.020, "web.example"),
    ("web", "web-2", 2.5, 503, 0.050, "candidate---web.example"),  # the deploy's probe
    ("web", "", 3.0, 403, 0.001, "web.example"),  # refused before any revision
    ("api", "api-1", 3.0, 500, 0.010, "api.example"),  # another service
    ("web", "web-1", 10.0, 500, 0.010, "web.example"),  # after the window
    ("web", "web-1", -1.0, 500, 0.010, "web.example"),  # before it
]
#: a minute ago, whole seconds: Cloud Logging drops entries older than 30 days
START = float(int(time.time()) - 60)


def _write_cloud(endpoint: str, project: str) -> None:
    """The rows as Cloud Run's front end writes them, through the official client."""
    with open_logging_client(endpoint, project, global_resource=True) as client:
        logger = client.logger(REQUEST_LOG)
        for service, revision, offset, status, latency, host in ROWS:
            labels = {"service_name": service, "location": "us-central1"}
            if revision:
                labels["revision_name"] = revision
            logger.log_empty(
                resource=cloud_logging.Resource(type="cloud_run_revision", labels=labels),
                timestamp=dt.datetime.fromtimestamp(START + offset, dt.UTC),
                http_request={
                    "requestMethod": "GET",
                    "requestUrl": f"https://{host}/",
                    "status": status,
                    "latency": f"{latency}s",
                },
            )


@pytest.fixture(params=["memory", "cloudlogging"])
def logs(request: pytest.FixtureRequest) -> Iterator[RevisionLogs]:
    if request.param == "memory":
        twin = InMemoryRevisionLogs()
        for service, revision, offset, status, latency, host in ROWS:
            twin.add_request(
                service, revision, at=START + offset, status=status, latency=latency, host=host
            )
        yield twin
        return
    endpoint: str = request.getfixturevalue("emulator")
    project: str = request.getfixturevalue("project")
    _write_cloud(endpoint, project)
    with CloudLoggingRevisionLogs(project, endpoint=endpoint) as cloud:
        yield cloud


def test_counts_per_revision_in_the_window(logs: RevisionLogs) -> None:
    stats = logs.request_stats("web", START, START + 10)
    assert stats == {
        "web-1": RequestStats("web-1", 2, 0, (0.010, 0.030)),
        "web-2": RequestStats("web-2", 3, 2, (0.200, 0.020, 0.050)),
    }
    assert stats["web-2"].error_rate == pytest.approx(2 / 3)


def test_the_tag_host_is_left_out(logs: RevisionLogs) -> None:
    stats = logs.request_stats("web", START, START + 10, exclude_host="candidate---web.example")
    assert stats["web-2"] == RequestStats("web-2", 2, 1, (0.200, 0.020))


def test_an_empty_window(logs: RevisionLogs) -> None:
    assert logs.request_stats("web", START + 20, START + 30) == {}


def test_filter_names_the_request_log_the_service_and_the_window() -> None:
    start = 1_760_000_000.0
    assert request_filter("p", "web", start, start + 10.5) == (
        'logName="projects/p/logs/run.googleapis.com%2Frequests"'
        ' AND resource.type="cloud_run_revision" AND resource.labels.service_name="web"'
        ' AND timestamp>="2025-10-09T08:53:20.000000Z"'
        ' AND timestamp<"2025-10-09T08:53:30.500000Z"'
    )
