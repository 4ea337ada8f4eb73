"""google-cloud-logging end to end against the emulator: loggers, handlers, logs.list/delete.

The client asks the GCE metadata server (``metadata.google.internal``) where it runs
whenever a logger or handler has no resource of its own: ``list_entries`` makes such a
logger for each log it reads, and ``setup_logging()`` asks whatever it is given. As
docs/emulator.md tells users, the tests make the emulator the HTTP proxy (``HTTP_PROXY``,
loopback exempt through ``NO_PROXY``): it answers that lookup itself without forwarding it,
so detection ends at once with "not on Google Cloud" and nothing leaves loopback.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import logging as cloud_logging
from google.cloud.logging_v2 import types as logging_types
from google.cloud.logging_v2.handlers import CloudLoggingHandler
from google.cloud.logging_v2.handlers.transports import SyncTransport

from tests.emulator.conftest import open_logging_client, written_entries

GLOBAL = cloud_logging.Resource(type="global", labels={})
pytestmark = pytest.mark.usefixtures("metadata_through_the_emulator")


@pytest.fixture
def client(emulator: str, project: str) -> Iterator[cloud_logging.Client]:
    with open_logging_client(emulator, project) as opened:
        yield opened


def _payloads(client: cloud_logging.Client, filter_: str) -> list[Any]:
    return [entry.payload for entry in written_entries(client, filter_)]


def test_log_text_then_list_entries_finds_it(client: cloud_logging.Client, project: str) -> None:
    logger = client.logger("app", resource=GLOBAL)
    logger.log_text("x")
    (entry,) = written_entries(client, f'logName="projects/{project}/logs/app"')
    assert entry.payload == "x"
    assert entry.log_name == f"projects/{project}/logs/app"
    assert entry.resource.type == "global"
    assert entry.insert_id  # assigned by the emulator, as Google does
    assert entry.received_timestamp is not None
    assert entry.timestamp is not None


def test_log_struct_with_labels_http_request_and_trace(
    client: cloud_logging.Client, project: str
) -> None:
    resource = cloud_logging.Resource(
        type="generic_task",
        labels={"project_id": project, "location": "eu", "namespace": "n", "job": "j"},
    )
    logger = client.logger("my/app", resource=resource, labels={"team": "core"})
    logger.log_struct(
        {"message": "paid", "amount": 12.5, "ok": True},
        severity="WARNING",
        labels={"order": "42"},
        http_request={"requestMethod": "POST", "status": 502, "latency": "1.5s"},
        trace=f"projects/{project}/traces/abc",
        insert_id="fixed-id",
    )
    (entry,) = written_entries(client, 'jsonPayload.message="paid"')
    assert entry.payload == {"message": "paid", "amount": 12.5, "ok": True}
    assert entry.severity == "WARNING"
    assert entry.labels == {"order": "42"}  # the client sends these instead of the logger's
    assert entry.http_request["status"] == 502
    assert entry.http_request["requestMethod"] == "POST"
    assert entry.trace == f"projects/{project}/traces/abc"
    assert entry.insert_id == "fixed-id"
    assert entry.resource.type == "generic_task"
    assert entry.resource.labels["job"] == "j"
    assert entry.log_name == f"projects/{project}/logs/my%2Fapp"
    for filter_ in (
        "labels.order=42",
        'resource.type="generic_task" resource.labels.job=j',
        "httpRequest.status>=500",
        'httpRequest.latency>"1s"',
        "jsonPayload.amount>12",
        "jsonPayload.ok=true",
        'LOG_ID("my/app")',
        'trace:"traces/abc"',
    ):
        assert len(written_entries(client, filter_)) == 1, filter_
    for filter_ in ("labels.order=43", "httpRequest.status<500", 'httpRequest.latency>"2s"'):
        assert written_entries(client, filter_) == [], filter_


@pytest.mark.parametrize(
    "resource_type", ["global", "cloud_run_revision", "generic_task", "gce_instance"]
)
def test_any_resource_type(client: cloud_logging.Client, project: str, resource_type: str) -> None:
    resource = cloud_logging.Resource(type=resource_type, labels={"project_id": project})
    client.logger("typed", resource=resource).log_text(f"on {resource_type}")
    assert _payloads(client, f'resource.type="{resource_type}"') == [f"on {resource_type}"]


def test_cloud_logging_handler_delivers_stdlib_records(
    client: cloud_logging.Client, project: str, root_logger: logging.Logger
) -> None:
    """The default (background thread) transport: records arrive once it is flushed."""
    handler = CloudLoggingHandler(client, name="handled", resource=GLOBAL)
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.INFO)
    logging.getLogger("shop.orders").warning("order %s failed", 7)
    logging.getLogger("shop.orders").debug("not at INFO")
    handler.flush()
    (entry,) = written_entries(client, f'logName="projects/{project}/logs/handled"')
    assert entry.payload == "order 7 failed"
    assert entry.severity == "WARNING"
    assert entry.labels["python_logger"] == "shop.orders"
    assert entry.source_location["function"] == "test_cloud_logging_handler_delivers_stdlib_records"


def test_setup_logging_writes_arrive(
    client: cloud_logging.Client, project: str, root_logger: logging.Logger
) -> None:
    # no resource given: the handler detects one (through the emulator, see above)
    client.setup_logging(log_level=logging.INFO)
    logging.info("hello from the standard library")
    logging.getLogger("quiet").debug("below the level")
    client.flush_handlers()
    entries = written_entries(client, f'logName="projects/{project}/logs/python"')
    assert [e.payload for e in entries] == ["hello from the standard library"]
    assert entries[0].resource.type == "global"  # what detection finds off Google Cloud


def test_sync_transport(
    client: cloud_logging.Client, project: str, root_logger: logging.Logger
) -> None:
    handler = CloudLoggingHandler(client, name="sync", resource=GLOBAL, transport=SyncTransport)
    root_logger.addHandler(handler)
    logging.getLogger("x").error("sent at once")
    assert _payloads(client, f'logName="projects/{project}/logs/sync"') == ["sent at once"]


def _list_logs(emulator: str, project: str, **params: Any) -> logging_types.ListLogsResponse:
    reply = httpx.get(f"{emulator}/v2/projects/{project}/logs", params=params)
    assert reply.status_code == 200, reply.text
    return logging_types.ListLogsResponse.from_json(reply.text)


def test_logs_list_and_delete(client: cloud_logging.Client, emulator: str, project: str) -> None:
    for name in ("alpha", "beta", "run.googleapis.com/stdout"):
        client.logger(name, resource=GLOBAL).log_text(f"in {name}")
    names = list(_list_logs(emulator, project).log_names)
    assert names == [
        f"projects/{project}/logs/alpha",
        f"projects/{project}/logs/beta",
        f"projects/{project}/logs/run.googleapis.com%2Fstdout",
    ]
    first = _list_logs(emulator, project, pageSize=2)
    second = _list_logs(emulator, project, pageSize=2, pageToken=first.next_page_token)
    assert [*first.log_names, *second.log_names] == names
    assert not second.next_page_token

    client.logger("beta", resource=GLOBAL).delete()
    # a log ID with a slash, URL-encoded in the path as the API asks
    encoded = urllib.parse.quote("run.googleapis.com/stdout", safe="")
    reply = httpx.delete(f"{emulator}/v2/projects/{project}/logs/{encoded}")
    assert reply.status_code == 200, reply.text
    assert list(_list_logs(emulator, project).log_names) == [f"projects/{project}/logs/alpha"]
    assert [e.payload for e in written_entries(client, 'textPayload:"in "')] == ["in alpha"]
    with pytest.raises(exceptions.NotFound):
        client.logger("beta", resource=GLOBAL).delete()
