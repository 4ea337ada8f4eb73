"""Google's published Cloud Logging samples, call for call, against the emulator.

Source: googleapis/python-logging ``samples/snippets/`` (``snippets.py``, ``handler.py``,
``usage_guide.py``, ``export.py``). Each test makes the sample's calls on a
``google.cloud.logging.Client`` built for the emulator (``_use_grpc=False``, anonymous
credentials, ``api_endpoint``); names are substituted, nothing else changes. Assertions are
those of the samples' tests or what the sample prints.

Like ``logging.Client()`` in the samples, loggers and handlers without a resource ask the GCE
metadata server where they run; the emulator is the HTTP proxy for that lookup, as in
``tests/emulator/test_logging_client.py``, so nothing leaves loopback.

Not run, and why:

- The storage, BigQuery and Pub/Sub setup in ``usage_guide.py`` (``_sink_storage_setup``,
  ``_sink_bigquery_setup``, ``_sink_pubsub_setup``) creates a bucket, a dataset and a topic
  through those APIs, which the emulator does not serve; the sink samples here get the
  destinations' names, which is all Logging stores (Google does not check that a sink's
  destination exists when it creates the sink).
- The GAPIC clients (``logging_v2.services.*``, used directly by no sample in these files)
  default to gRPC, which the emulator does not speak.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from google.cloud import logging as cloud_logging
from google.cloud.exceptions import Conflict, NotFound
from google.cloud.logging import DESCENDING, Resource
from google.cloud.logging.handlers import CloudLoggingHandler

from tests.emulator.conftest import open_logging_client, written_entries
from tests.emulator.samples.conftest import unique

pytestmark = pytest.mark.usefixtures("metadata_through_the_emulator")


@pytest.fixture
def client(emulator: str, project: str) -> Iterator[cloud_logging.Client]:
    """``logging.Client()`` of the samples, for the emulator; a project per test."""
    with open_logging_client(emulator, project) as opened:
        yield opened


# -- samples/snippets/snippets.py -------------------------------------------------------


def _write_entry(client: cloud_logging.Client, logger_name: str) -> str:
    # snippets.py write_entry
    logger = client.logger(logger_name)
    logger.log_text("Hello, world!")
    logger.log_text("Goodbye, world!", severity="ERROR")
    logger.log_struct(
        {"name": "King Arthur", "quest": "Find the Holy Grail", "favorite_color": "Blue"}
    )
    return f"Wrote logs to {logger.name}."


def test_write_entry(client: cloud_logging.Client, project: str) -> None:
    # googleapis/python-logging samples/snippets/snippets.py write_entry
    assert _write_entry(client, "example_log") == "Wrote logs to example_log."
    entries = written_entries(client, f'logName="projects/{project}/logs/example_log"')
    assert [(e.payload, e.severity) for e in entries] == [
        ("Hello, world!", None),
        ("Goodbye, world!", "ERROR"),
        ({"name": "King Arthur", "quest": "Find the Holy Grail", "favorite_color": "Blue"}, None),
    ]


def test_list_entries(client: cloud_logging.Client) -> None:
    # googleapis/python-logging samples/snippets/snippets.py list_entries
    _write_entry(client, "example_log")
    logger = client.logger("example_log")
    printed = [
        f"* {entry.timestamp.isoformat()}: {entry.payload}" for entry in logger.list_entries()
    ]
    # snippets_test.py: "Hello, world!" in the output
    assert any(line.endswith(": Hello, world!") for line in printed), printed
    assert len(printed) == 3


def test_delete_logger(client: cloud_logging.Client) -> None:
    # googleapis/python-logging samples/snippets/snippets.py delete_logger
    _write_entry(client, "example_log")
    logger = client.logger("example_log")
    logger.delete()
    assert list(logger.list_entries()) == []


# -- samples/snippets/handler.py ---------------------------------------------------------


def test_use_logging_handler(
    client: cloud_logging.Client, project: str, root_logger: logging.Logger
) -> None:
    # googleapis/python-logging samples/snippets/handler.py use_logging_handler
    client.get_default_handler()
    client.setup_logging()
    text = "Hello, world!"
    logging.warning(text)
    client.flush_handlers()
    entries = written_entries(client, f'logName="projects/{project}/logs/python"')
    assert [(e.payload, e.severity) for e in entries] == [(text, "WARNING")]


# -- samples/snippets/usage_guide.py ------------------------------------------------------


def test_client_list_entries(client: cloud_logging.Client) -> None:
    # googleapis/python-logging samples/snippets/usage_guide.py client_list_entries
    client.logger("log_name").log_text("a simple entry")
    client.logger("other").log_text("not so simple")
    assert len(list(client.list_entries())) >= 2
    FILTER = "logName:log_name AND textPayload:simple"
    assert [e.payload for e in client.list_entries(filter_=FILTER)] == ["a simple entry"]
    newest_first = [e.payload for e in client.list_entries(order_by=DESCENDING)]
    assert newest_first[:2] == ["not so simple", "a simple entry"]


def test_client_list_entries_paged(client: cloud_logging.Client) -> None:
    # googleapis/python-logging samples/snippets/usage_guide.py (earlier versions)
    # client_list_entries_paged walked ``iterator.pages``, which 3.x's generator no longer
    # has; the paging it showed is the generator's: page_size=2 makes three entries take
    # two entries:list calls, the second with the first's nextPageToken
    logger = client.logger("paged")
    for text in ("one", "two", "three"):
        logger.log_text(text)
    entries = client.list_entries(page_size=2, filter_='logName:"paged"')
    assert [entry.payload for entry in entries] == ["one", "two", "three"]


def test_client_list_entries_multi_project(
    client: cloud_logging.Client, project: str, emulator: str
) -> None:
    # googleapis/python-logging samples/snippets/usage_guide.py (earlier versions)
    # client_list_entries_multi_project; resource_names replaced project_ids in 3.x
    other = unique("another-project")
    client.logger("multi").log_text(f"in {project}")
    with open_logging_client(emulator, other) as other_client:
        other_client.logger("multi").log_text(f"in {other}")
    PROJECT_IDS = [project, other]
    entries = client.list_entries(
        resource_names=[f"projects/{each}" for each in PROJECT_IDS], filter_='logName:"multi"'
    )
    assert sorted(entry.payload for entry in entries) == sorted(f"in {p}" for p in PROJECT_IDS)


def test_logger_usage(client: cloud_logging.Client, project: str) -> None:
    # googleapis/python-logging samples/snippets/usage_guide.py logger_usage
    LOG_NAME = unique("logger_usage")
    logger = client.logger(LOG_NAME)
    logger.log_text("A simple entry")
    logger.log_struct({"message": "My second entry", "weather": "partly cloudy"})
    res = Resource(
        type="generic_node",
        labels={"location": "us-central1-a", "namespace": "default", "node_id": "10.10.10.1"},
    )
    logger.log_struct({"message": "My first entry", "weather": "partly cloudy"}, resource=res)
    entries = [e for e in logger.list_entries(order_by=DESCENDING)]
    assert [e.payload for e in entries] == [
        {"message": "My first entry", "weather": "partly cloudy"},
        {"message": "My second entry", "weather": "partly cloudy"},
        "A simple entry",
    ]
    assert entries[0].resource.type == "generic_node"
    assert entries[0].resource.labels["node_id"] == "10.10.10.1"
    logger.delete()
    assert list(logger.list_entries()) == []


def test_metric_crud(client: cloud_logging.Client) -> None:
    # googleapis/python-logging samples/snippets/usage_guide.py metric_crud
    METRIC_NAME = unique("robots")
    DESCRIPTION = "Robots all up in your server"
    FILTER = "logName:apache-access AND textPayload:robot"
    UPDATED_FILTER = "textPayload:robot"
    UPDATED_DESCRIPTION = "Danger, Will Robinson!"
    assert list(client.list_metrics()) == []
    metric = client.metric(METRIC_NAME, filter_=FILTER, description=DESCRIPTION)
    assert not metric.exists()
    metric.create()
    assert metric.exists()
    existing_metric = client.metric(METRIC_NAME)
    existing_metric.reload()
    assert existing_metric.filter_ == FILTER
    assert existing_metric.description == DESCRIPTION
    existing_metric.filter_ = UPDATED_FILTER
    existing_metric.description = UPDATED_DESCRIPTION
    existing_metric.update()
    existing_metric.reload()
    assert existing_metric.filter_ == UPDATED_FILTER
    assert existing_metric.description == UPDATED_DESCRIPTION
    assert [m.name for m in client.list_metrics()] == [METRIC_NAME]
    metric.delete()
    assert not metric.exists()


@pytest.mark.parametrize(
    "destination",
    [
        pytest.param("storage.googleapis.com/{bucket}", id="sink_storage"),
        pytest.param(
            "bigquery.googleapis.com/projects/{project}/datasets/{bucket}", id="sink_bigquery"
        ),
    ],
)
def test_sink_create(client: cloud_logging.Client, project: str, destination: str) -> None:
    # googleapis/python-logging samples/snippets/usage_guide.py sink_storage, sink_bigquery
    SINK_NAME = unique("robots-sink")
    FILTER = "textPayload:robot"
    DESTINATION = destination.format(project=project, bucket="sink_storage_1")
    sink = client.sink(SINK_NAME, filter_=FILTER, destination=DESTINATION)
    assert not sink.exists()
    sink.create()
    assert sink.exists()
    assert sink.writer_identity  # Google names the identity that writes to the destination
    sink.delete()


def test_sink_pubsub(client: cloud_logging.Client, project: str) -> None:
    # googleapis/python-logging samples/snippets/usage_guide.py sink_pubsub
    SINK_NAME = unique("robots-pubsub")
    FILTER = "logName:apache-access AND textPayload:robot"
    UPDATED_FILTER = "textPayload:robot"
    DESTINATION = f"pubsub.googleapis.com/projects/{project}/topics/sink-pubsub-1"
    sink = client.sink(SINK_NAME, filter_=FILTER, destination=DESTINATION)
    assert not sink.exists()
    sink.create()
    assert sink.exists()
    created_sink = sink
    assert SINK_NAME in [each.name for each in client.list_sinks()]
    existing_sink = client.sink(SINK_NAME)
    existing_sink.reload()
    assert existing_sink.filter_ == FILTER
    assert existing_sink.destination == DESTINATION
    existing_sink.filter_ = UPDATED_FILTER
    existing_sink.update()
    existing_sink.reload()
    assert existing_sink.filter_ == UPDATED_FILTER
    created_sink.delete()
    assert not created_sink.exists()


def test_logging_handler(
    client: cloud_logging.Client, project: str, root_logger: logging.Logger
) -> None:
    # googleapis/python-logging samples/snippets/usage_guide.py logging_handler
    handler = client.get_default_handler()
    cloud_logger = logging.getLogger("cloudLogger")
    cloud_logger.setLevel(logging.INFO)
    cloud_logger.addHandler(handler)
    cloud_logger.error("bad news")
    handler = CloudLoggingHandler(client)
    cloud_logger = logging.getLogger("cloudLogger")
    cloud_logger.setLevel(logging.INFO)
    cloud_logger.addHandler(handler)
    cloud_logger.error("bad news")
    named = CloudLoggingHandler(client, name="mycustomlog")
    assert named.name == "mycustomlog"
    named.close()
    client.flush_handlers()
    # two handlers on one logger: each record goes out twice, through each of them
    entries = written_entries(client, f'logName="projects/{project}/logs/python"')
    assert [(e.payload, e.severity) for e in entries] == [("bad news", "ERROR")] * 3


def test_setup_logging(
    client: cloud_logging.Client, project: str, root_logger: logging.Logger
) -> None:
    # googleapis/python-logging samples/snippets/usage_guide.py setup_logging
    client.setup_logging(log_level=logging.INFO)
    client.setup_logging(log_level=logging.INFO, excluded_loggers=("werkzeug",))
    logging.getLogger("werkzeug").info("excluded")
    logging.getLogger("app").info("included")
    client.flush_handlers()
    entries = written_entries(client, f'logName="projects/{project}/logs/python"')
    # setup_logging twice: two handlers on the root logger, each sends the record
    assert [e.payload for e in entries] == ["included", "included"]


# -- samples/snippets/export.py ----------------------------------------------------------


def test_list_sinks_has_the_default_sinks(client: cloud_logging.Client, project: str) -> None:
    # googleapis/python-logging samples/snippets/export.py list_sinks
    sinks = list(client.list_sinks())
    printed = {sink.name: f"{sink.name}: {sink.filter_} -> {sink.destination}" for sink in sinks}
    assert set(printed) == {"_Default", "_Required"}
    buckets = f"logging.googleapis.com/projects/{project}/locations/global/buckets"
    assert printed["_Required"].endswith(f" -> {buckets}/_Required")
    assert printed["_Default"].endswith(f" -> {buckets}/_Default")
    assert printed["_Default"].startswith(
        '_Default: NOT LOG_ID("cloudaudit.googleapis.com/activity")'
    )


def test_create_update_delete_sink(client: cloud_logging.Client) -> None:
    # googleapis/python-logging samples/snippets/export.py create_sink, update_sink,
    # delete_sink (export_test.py runs them in this order)
    sink_name = unique("example_sink")
    destination = "storage.googleapis.com/{bucket}".format(bucket="example-bucket")
    sink = client.sink(sink_name, filter_="severity>=INFO", destination=destination)
    assert not sink.exists()
    sink.create()
    # create_sink again: "Sink ... already exists." and no second create
    assert client.sink(sink_name, filter_="severity>=INFO", destination=destination).exists()

    sink = client.sink(sink_name)
    sink.reload()
    sink.filter_ = "severity>=WARNING"
    sink.update()
    sink = client.sink(sink_name)
    sink.reload()
    assert sink.filter_ == "severity>=WARNING"

    client.sink(sink_name).delete()
    assert not client.sink(sink_name).exists()


# -- the samples run where Google refuses them -------------------------------------------


def test_delete_logger_without_entries_is_not_found(client: cloud_logging.Client) -> None:
    # snippets.py delete_logger on a log with no entries (usage_guide.py's
    # _backoff_not_found expects this NotFound)
    with pytest.raises(NotFound):
        client.logger(unique("never-written")).delete()


@pytest.mark.parametrize("kind", ["metric", "sink"])
def test_create_twice_conflicts(client: cloud_logging.Client, kind: str) -> None:
    # usage_guide.py metric_crud / export.py create_sink without the exists() check
    if kind == "metric":
        made = client.metric(unique("robots"), filter_="textPayload:robot", description="d")
    else:
        made = client.sink(
            unique("sink"), filter_="severity>=INFO", destination="storage.googleapis.com/b"
        )
    made.create()
    with pytest.raises(Conflict):
        made.create()
