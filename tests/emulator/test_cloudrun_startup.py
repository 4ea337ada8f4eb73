"""Startup probes and failures as Cloud Run words them, through the official clients.

A revision that exits or fails its startup probe fails with Cloud Run's fixed message and
never quotes the application; ``Container called exit(N).`` and the probe's outcome are in
``run.googleapis.com/varlog/system``, the app's output in ``stdout``/``stderr``, all with the
``cloud_run_revision`` resource labels. Read back with ``google.cloud.logging.Client``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import logging as cloud_logging
from google.cloud import run_v2

from tests.emulator.conftest import APPS, FAST, LOCATION, open_logging_client

FAILED = run_v2.Condition.State.CONDITION_FAILED
SYSTEM = "run.googleapis.com%2Fvarlog%2Fsystem"
#: Cloud Run's wording, after "Revision 'X' is not ready and cannot serve traffic. "
CONDITION = (
    "The user-provided container failed to start and listen on the port defined provided by "
    "the PORT={port} environment variable within the allocated timeout. This can happen when "
    "the container port is misconfigured or if the timeout is too short. The health check "
    "timeout can be extended. Logs for this revision might contain more information.\n\n"
    "Logs URL: https://console.cloud.google.com/logs/viewer?project={project}"
    "&resource=cloud_run_revision/service_name/{service}/revision_name/{revision}"
    "&advancedFilter=resource.type%3D%22cloud_run_revision%22%0Aresource.labels.service_name"
    "%3D%22{service}%22%0Aresource.labels.revision_name%3D%22{revision}%22\n"
    "For more troubleshooting guidance, see "
    "https://cloud.google.com/run/docs/troubleshooting#container-failed-to-start"
)


@pytest.fixture
def logging_client(emulator: str, project: str) -> Iterator[cloud_logging.Client]:
    with open_logging_client(emulator, project, global_resource=True) as client:
        yield client


def container(
    command: list[str], probe: run_v2.Probe | None = None, **extra: Any
) -> run_v2.Container:
    fields: dict[str, Any] = {"startup_probe": probe} if probe is not None else {}
    return run_v2.Container(
        image="ignored-locally", command=command, working_dir=str(APPS), **fields, **extra
    )


def template(*containers: run_v2.Container) -> run_v2.RevisionTemplate:
    return run_v2.RevisionTemplate(containers=list(containers))


ECHO = ["python", "echo.py"]


def create(
    client: run_v2.ServicesClient, project: str, service_id: str, body: run_v2.RevisionTemplate
) -> run_v2.Service:
    operation = client.create_service(
        parent=f"projects/{project}/locations/{LOCATION}",
        service_id=service_id,
        service=run_v2.Service(template=body),
    )
    result: run_v2.Service = operation.result(polling=FAST)
    return result


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def entries(client: cloud_logging.Client, project: str, revision: str, until: str) -> list[Any]:
    """The revision's entries, oldest first, polled until one's payload contains ``until``."""
    log_filter = (
        f'resource.type="cloud_run_revision" AND resource.labels.revision_name="{revision}"'
    )
    found: list[Any] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = list(
            client.list_entries(
                resource_names=[f"projects/{project}"],
                filter_=log_filter,
                order_by=cloud_logging.ASCENDING,
            )
        )
        if any(until in str(entry.payload) for entry in found):
            break
        time.sleep(0.1)
    return found


def system_texts(found: list[Any]) -> list[tuple[str, str]]:
    return [(e.severity, e.payload) for e in found if e.log_name.endswith(SYSTEM)]


def failed_revision(services: run_v2.ServicesClient, project: str, service_id: str) -> str:
    service = services.get_service(
        name=f"projects/{project}/locations/{LOCATION}/services/{service_id}"
    )
    return short(service.latest_created_revision)


def expected_condition(message: str, project: str, service: str, revision: str) -> str:
    port = re.search(r"PORT=(\d+) ", message)
    assert port is not None, message
    return CONDITION.format(port=port.group(1), project=project, service=service, revision=revision)


# -- a container that exits --------------------------------------------------------------


def test_exit_3_fails_with_cloud_runs_words_and_the_output_stays_in_the_logs(
    services: run_v2.ServicesClient,
    revisions: run_v2.RevisionsClient,
    logging_client: cloud_logging.Client,
    project: str,
) -> None:
    good = create(services, project, "backend", template(container(ECHO)))
    service = services.get_service(name=good.name)
    service.template = template(container(["python", "exit3.py"]))
    with pytest.raises(exceptions.FailedPrecondition) as failure:
        services.update_service(service=service).result(polling=FAST)
    message = failure.value.message
    rid = failed_revision(services, project, "backend")
    condition = expected_condition(message, project, "backend", rid)
    assert message == f"Revision '{rid}' is not ready and cannot serve traffic. {condition}"
    # nothing the application printed, not even its exit code
    for printed in ("validating configuration", "insufficient entropy", "SERVICE_SECRET"):
        assert printed not in message
    assert "exit(" not in message

    after = services.get_service(name=good.name)
    assert after.terminal_condition.state == FAILED
    assert after.terminal_condition.message == message
    assert after.latest_ready_revision == good.latest_ready_revision
    assert [(s.revision, s.percent) for s in after.traffic_statuses] == [
        (short(good.latest_ready_revision), 100)
    ]
    ready = revisions.get_revision(name=after.latest_created_revision).conditions[0]
    assert (ready.type_, ready.state, ready.message) == ("Ready", FAILED, condition)

    found = entries(logging_client, project, rid, "Container called exit(3).")
    assert system_texts(found) == [("WARNING", "Container called exit(3).")]
    streams = {(short(e.log_name), e.payload) for e in found if not e.log_name.endswith(SYSTEM)}
    assert streams == {
        ("run.googleapis.com%2Fstdout", "validating configuration"),
        (
            "run.googleapis.com%2Fstderr",
            "SERVICE_SECRET: insufficient entropy: needs mixed case and digits",
        ),
    }
    # the app's lines come before the platform's exit line, as they were written
    assert found[-1].payload == "Container called exit(3)."
    labels = {
        "service_name": "backend",
        "revision_name": rid,
        "configuration_name": "backend",
        "location": LOCATION,
        "project_id": project,
    }
    for entry in found:
        assert entry.resource.type == "cloud_run_revision"
        assert entry.resource.labels == labels
    assert found[-1].labels["container_name"] == "backend-1"


# -- startup probes ----------------------------------------------------------------------


def test_default_tcp_probe_is_filled_in_and_its_success_logged(
    services: run_v2.ServicesClient,
    revisions: run_v2.RevisionsClient,
    logging_client: cloud_logging.Client,
    project: str,
) -> None:
    service = create(
        services,
        project,
        "plain",
        template(container(ECHO, ports=[run_v2.ContainerPort(container_port=8080)])),
    )
    default = run_v2.Probe(
        tcp_socket=run_v2.TCPSocketAction(port=8080),
        timeout_seconds=240,
        period_seconds=240,
        failure_threshold=1,
    )
    assert service.template.containers[0].startup_probe == default
    revision = revisions.get_revision(name=service.latest_ready_revision)
    assert revision.containers[0].startup_probe == default
    rid = short(revision.name)
    found = entries(logging_client, project, rid, "probe succeeded")
    [(severity, text)] = system_texts(found)
    assert severity == "INFO"
    assert re.fullmatch(
        r'Default STARTUP TCP probe succeeded after 1 attempt for container "plain-1" '
        r"on port \d+\.",
        text,
    )


def test_declared_http_probe_gets_cloud_runs_defaults_and_passes(
    services: run_v2.ServicesClient, logging_client: cloud_logging.Client, project: str
) -> None:
    probe = run_v2.Probe(
        http_get=run_v2.HTTPGetAction(
            path="/ready", http_headers=[run_v2.HTTPHeader(name="X-Probe", value="startup")]
        ),
        period_seconds=1,
    )
    service = create(services, project, "http-ok", template(container(ECHO, probe)))
    stored = service.template.containers[0].startup_probe
    assert (stored.period_seconds, stored.timeout_seconds, stored.failure_threshold) == (1, 1, 3)
    assert stored.http_get.path == "/ready"
    rid = short(service.latest_ready_revision)
    found = entries(logging_client, project, rid, "probe succeeded")
    assert [text for _, text in system_texts(found)][-1].startswith(
        "STARTUP HTTP probe succeeded after "
    )
    # the probe's GET reached the app, which logged its path
    assert any(isinstance(e.payload, dict) and e.payload.get("path") == "/ready" for e in found)


@pytest.mark.parametrize(
    ("probe", "line"),
    [
        (
            run_v2.Probe(
                http_get=run_v2.HTTPGetAction(path="/status/503"),
                period_seconds=1,
                failure_threshold=2,
            ),
            'STARTUP HTTP probe failed 2 times consecutively for container "{service}-1" on '
            'path "/status/503". The instance was not started.',
        ),
        (
            run_v2.Probe(
                tcp_socket=run_v2.TCPSocketAction(), period_seconds=1, failure_threshold=1
            ),
            'STARTUP TCP probe failed 1 time consecutively for container "{service}-1" on '
            "port {port}. The instance was not started.",
        ),
    ],
    ids=["http-503", "tcp-nothing-listens"],
)
def test_failing_probe_fails_the_revision_with_cloud_runs_words(
    services: run_v2.ServicesClient,
    logging_client: cloud_logging.Client,
    project: str,
    probe: run_v2.Probe,
    line: str,
) -> None:
    service_id = "probe-" + ("http" if "http_get" in probe else "tcp")
    # the TCP case never listens: it prints and sleeps
    command = (
        ECHO
        if "http_get" in probe
        else ["python", "-c", "import time; print('starting', flush=True); time.sleep(60)"]
    )
    with pytest.raises(exceptions.FailedPrecondition) as failure:
        create(services, project, service_id, template(container(command, probe)))
    message = failure.value.message
    rid = failed_revision(services, project, service_id)
    condition = expected_condition(message, project, service_id, rid)
    assert message == f"Revision '{rid}' is not ready and cannot serve traffic. {condition}"
    assert "starting" not in message
    found = entries(logging_client, project, rid, "The instance was not started.")
    port = re.search(r"PORT=(\d+) ", message)
    assert port is not None
    assert system_texts(found)[-1] == (
        "ERROR",
        line.format(service=service_id, port=port.group(1)),
    )


@pytest.mark.parametrize(
    ("probe", "words"),
    [
        (run_v2.Probe(period_seconds=1), "exactly one of http_get, tcp_socket or grpc"),
        (
            run_v2.Probe(tcp_socket=run_v2.TCPSocketAction(), period_seconds=241),
            "period_seconds: must be between 1 and 240",
        ),
        (
            run_v2.Probe(tcp_socket=run_v2.TCPSocketAction(), initial_delay_seconds=241),
            "initial_delay_seconds: must be between 0 and 240",
        ),
        (
            run_v2.Probe(tcp_socket=run_v2.TCPSocketAction(), timeout_seconds=5, period_seconds=2),
            "timeout_seconds: must be less than or equal to period_seconds",
        ),
        (
            run_v2.Probe(tcp_socket=run_v2.TCPSocketAction(), timeout_seconds=11),
            "timeout_seconds: must be less than or equal to period_seconds (11 > 10)",
        ),
        (
            run_v2.Probe(tcp_socket=run_v2.TCPSocketAction(), failure_threshold=-1),
            "failure_threshold: must be at least 1",
        ),
        (
            run_v2.Probe(http_get=run_v2.HTTPGetAction(path="health")),
            "http_get.path must start with '/'",
        ),
        (
            run_v2.Probe(tcp_socket=run_v2.TCPSocketAction(port=70000)),
            "tcp_socket.port: 70000 is not within 1-65535",
        ),
    ],
    ids=[
        "no-kind",
        "period",
        "initial-delay",
        "timeout-above-period",
        "timeout-above-default-period",
        "threshold",
        "path",
        "port",
    ],
)
def test_invalid_probes_are_refused_before_anything_is_stored(
    services: run_v2.ServicesClient, project: str, probe: run_v2.Probe, words: str
) -> None:
    with pytest.raises(exceptions.BadRequest) as refused:
        create(services, project, "refused", template(container(ECHO, probe)))
    assert "template.containers[0].startup_probe" in refused.value.message
    assert words in refused.value.message
    with pytest.raises(exceptions.NotFound):
        services.get_service(name=f"projects/{project}/locations/{LOCATION}/services/refused")


def test_grpc_probes_are_not_implemented(services: run_v2.ServicesClient, project: str) -> None:
    probe = run_v2.Probe(grpc=run_v2.GRPCAction(port=8080))
    with pytest.raises(exceptions.MethodNotImplemented, match="gRPC probes"):
        create(services, project, "grpc", template(container(ECHO, probe)))
