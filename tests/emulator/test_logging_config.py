"""Sinks and log-based metrics of the emulator's Logging API, through google-cloud-logging."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import logging as cloud_logging
from google.cloud.logging_v2 import types as logging_types

from tests.emulator.conftest import configured_gcloud, open_logging_client

_AUDIT = (
    "cloudaudit.googleapis.com/activity",
    "externalaudit.googleapis.com/activity",
    "cloudaudit.googleapis.com/system_event",
    "externalaudit.googleapis.com/system_event",
    "cloudaudit.googleapis.com/access_transparency",
    "externalaudit.googleapis.com/access_transparency",
)


@pytest.fixture
def client(emulator: str, project: str) -> Iterator[cloud_logging.Client]:
    with open_logging_client(emulator, project) as opened:
        yield opened


def test_every_project_has_default_and_required_sinks(
    client: cloud_logging.Client, project: str
) -> None:
    sinks = {sink.name: sink for sink in client.list_sinks()}
    assert set(sinks) == {"_Default", "_Required"}
    required, default = sinks["_Required"], sinks["_Default"]
    bucket = f"logging.googleapis.com/projects/{project}/locations/global/buckets"
    assert required.destination == f"{bucket}/_Required"
    assert default.destination == f"{bucket}/_Default"
    assert required.filter_ == " OR ".join(f'LOG_ID("{log}")' for log in _AUDIT)
    assert default.filter_ == " AND ".join(f'NOT LOG_ID("{log}")' for log in _AUDIT)
    assert default.writer_identity.startswith("serviceAccount:service-")
    assert default.writer_identity.endswith("@gcp-sa-logging.iam.gserviceaccount.com")
    assert client.sink("_Default").exists()


def test_required_and_default_sinks_refuse_as_google_does(client: cloud_logging.Client) -> None:
    required = client.sink("_Required")
    required.reload()
    with pytest.raises(exceptions.Forbidden, match="Sink _Required cannot be updated"):
        required.update()
    with pytest.raises(exceptions.Forbidden, match="Sink _Required cannot be deleted"):
        required.delete()
    default = client.sink("_Default")
    with pytest.raises(
        exceptions.Forbidden, match=r"Sink _Default cannot be deleted\. Consider disabling instead"
    ):
        default.delete()
    # _Default can be pointed elsewhere
    default.reload()
    default.destination = "storage.googleapis.com/my-archive"
    default.update()
    default.reload()
    assert default.destination == "storage.googleapis.com/my-archive"
    assert default.filter_.startswith('NOT LOG_ID("cloudaudit.googleapis.com/activity")')


def test_sink_lifecycle(client: cloud_logging.Client) -> None:
    sink = client.sink(
        "errors", filter_="severity>=ERROR", destination="storage.googleapis.com/errors"
    )
    assert not sink.exists()  # a 404 on the resource, not an unknown method
    sink.create()
    assert sink.exists()
    assert sink.writer_identity
    with pytest.raises(exceptions.Conflict, match="Sink errors already exists"):
        sink.create()
    sink.filter_ = 'severity>=WARNING resource.type="cloud_run_revision"'
    sink.update()
    fresh = client.sink("errors")
    fresh.reload()
    assert fresh.filter_ == 'severity>=WARNING resource.type="cloud_run_revision"'
    assert fresh.destination == "storage.googleapis.com/errors"
    assert {s.name for s in client.list_sinks()} == {"_Default", "_Required", "errors"}
    sink.delete()
    assert not sink.exists()
    with pytest.raises(exceptions.NotFound, match="Sink errors does not exist"):
        sink.delete()


@pytest.mark.parametrize(
    ("name", "filter_", "destination", "message"),
    [
        ("-bad", "", "storage.googleapis.com/b", "Invalid sink name"),
        ("ok", "severity>=LOUD", "storage.googleapis.com/b", "Unsupported filter term"),
        ("ok", "", "", "destination is required"),
    ],
    ids=["name", "filter", "destination"],
)
def test_sink_refusals(
    client: cloud_logging.Client, name: str, filter_: str, destination: str, message: str
) -> None:
    with pytest.raises(exceptions.BadRequest, match=message):
        client.sink(name, filter_=filter_, destination=destination).create()


def test_sink_update_mask_and_paging(emulator: str, project: str) -> None:
    base = f"{emulator}/v2/projects/{project}/sinks"
    for index in range(3):
        reply = httpx.post(
            base, json={"name": f"s{index}", "destination": "storage.googleapis.com/b"}
        )
        assert reply.status_code == 200, reply.text
    patched = httpx.patch(
        f"{base}/s1",
        params={"updateMask": "description,disabled"},
        json={"description": "quiet", "disabled": True, "destination": "ignored.example"},
    )
    assert patched.status_code == 200, patched.text
    sink = logging_types.LogSink.from_json(patched.text)
    assert (sink.description, sink.disabled) == ("quiet", True)
    assert sink.destination == "storage.googleapis.com/b"  # not in the mask
    names: list[str] = []
    token = ""
    while True:
        page = httpx.get(base, params={"pageSize": 2, "pageToken": token}).json()
        names += [sink["name"] for sink in page["sinks"]]
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert sorted(names) == ["_Default", "_Required", "s0", "s1", "s2"]


def test_metric_lifecycle(client: cloud_logging.Client, project: str) -> None:
    metric = client.metric("app/errors", filter_="severity>=ERROR", description="errors")
    assert not metric.exists()
    metric.create()
    assert metric.exists()
    with pytest.raises(exceptions.Conflict, match="Metric app/errors already exists"):
        metric.create()
    metric.description = "all errors"
    metric.filter_ = "severity>=ERROR OR httpRequest.status>=500"
    metric.update()
    fresh = client.metric("app/errors")
    fresh.reload()
    assert (fresh.description, fresh.filter_) == (
        "all errors",
        "severity>=ERROR OR httpRequest.status>=500",
    )
    assert [m.name for m in client.list_metrics()] == ["app/errors"]
    metric.delete()
    assert not metric.exists()
    with pytest.raises(exceptions.NotFound, match="Metric app/errors does not exist"):
        metric.delete()
    # metrics.update creates a missing metric, as Google's does
    client.metric("made-by-update", filter_="severity>=WARNING", description="").update()
    assert client.metric("made-by-update").exists()


def test_metric_shape_and_refusals(emulator: str, project: str) -> None:
    base = f"{emulator}/v2/projects/{project}/metrics"
    created = httpx.post(base, json={"name": "requests", "filter": "httpRequest.status>=500"})
    assert created.status_code == 200, created.text
    metric = logging_types.LogMetric.from_json(created.text)
    assert metric.metric_descriptor.type == "logging.googleapis.com/user/requests"
    assert metric.metric_descriptor.name == (
        f"projects/{project}/metricDescriptors/logging.googleapis.com/user/requests"
    )
    descriptor = created.json()["metricDescriptor"]
    assert (descriptor["metricKind"], descriptor["valueType"]) == ("DELTA", "INT64")
    assert metric.create_time
    assert metric.update_time
    for body, message in (
        ({"name": "no-filter"}, "filter is required"),
        ({"name": "/lead", "filter": "severity>=ERROR"}, "Invalid metric name"),
        ({"name": "bad", "filter": "nope.x=1"}, "Unsupported filter term"),
    ):
        reply = httpx.post(base, json=body)
        assert reply.status_code == 400, body
        assert message in reply.json()["error"]["message"]


def test_gcloud_logging_commands(emulator: str, project: str, tmp_path: Path) -> None:
    run = configured_gcloud(emulator, project, tmp_path / "gcloud", "logging")
    run("logging", "write", "my-log", "hello from gcloud")
    assert run("logging", "logs", "list", "--format=value(.)").stdout.split() == [
        f"projects/{project}/logs/my-log"
    ]
    sinks = run("logging", "sinks", "list", "--format=value(name)").stdout.split()
    assert sinks == ["_Default", "_Required"]
    refused = run("logging", "sinks", "delete", "_Default", ok=False)
    assert "PERMISSION_DENIED: Sink _Default cannot be deleted. Consider disabling" in (
        refused.stderr
    )
    run("logging", "metrics", "create", "errs", "--description=d", "--log-filter=severity>=ERROR")
    listed = run("logging", "metrics", "list", "--format=value(name,filter)").stdout
    assert listed.split() == ["errs", "severity>=ERROR"]
