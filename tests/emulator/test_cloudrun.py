"""The Cloud Run Admin API v2 of the emulator, driven by the official ``run_v2`` clients.

Revisions are real processes: tiny apps under ``apps/`` started with the container's
command. One emulator serves the session; each test has a project of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from rollsafe._gcp import client_kwargs
from rollsafe.emulator.server import emulator_status, start_emulator, stop_emulator
from tests.emulator.conftest import (
    APPS,
    FAST,
    LOCATION,
    IdTokenAuth,
    make_public,
    open_logging_client,
)

SUCCEEDED = run_v2.Condition.State.CONDITION_SUCCEEDED
FAILED = run_v2.Condition.State.CONDITION_FAILED
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION


@pytest.fixture
def http(emulator: str) -> Iterator[httpx.Client]:
    """A client that sends an ID token for each service URL: services are private."""
    with httpx.Client(timeout=10, auth=IdTokenAuth(emulator)) as client:
        yield client


def echo(
    revision: str = "", *, greeting: str = "hello", startup_delay: float = 0, **extra: Any
) -> run_v2.RevisionTemplate:
    """A template running ``apps/echo.py`` (a plain http.server on ``$PORT``)."""
    env = extra.pop("env", None) or [run_v2.EnvVar(name="GREETING", value=greeting)]
    command = [
        "python",
        "-c",
        f"import time; time.sleep({startup_delay}); exec(open('echo.py').read())",
    ]
    container = run_v2.Container(
        image="ignored-locally",
        command=command if startup_delay else ["python", "echo.py"],
        working_dir=str(APPS),
        env=env,
        **extra,
    )
    return run_v2.RevisionTemplate(revision=revision, containers=[container])


def exit3(revision: str = "") -> run_v2.RevisionTemplate:
    container = run_v2.Container(
        image="ignored-locally", command=["python", "exit3.py"], working_dir=str(APPS)
    )
    return run_v2.RevisionTemplate(revision=revision, containers=[container])


def parent(project: str) -> str:
    return f"projects/{project}/locations/{LOCATION}"


def create(
    client: run_v2.ServicesClient,
    project: str,
    service_id: str,
    template: run_v2.RevisionTemplate,
    **fields: Any,
) -> run_v2.Service:
    operation = client.create_service(
        parent=parent(project),
        service_id=service_id,
        service=run_v2.Service(template=template, **fields),
    )
    result: run_v2.Service = operation.result(polling=FAST)
    return result


def update(client: run_v2.ServicesClient, service: run_v2.Service) -> run_v2.Service:
    result: run_v2.Service = client.update_service(service=service).result(polling=FAST)
    return result


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def answered_by(response: httpx.Response) -> str:
    return short(response.headers["X-Rollsafe-Revision"])


def gone(pgid: int) -> bool:
    """No process of the group runs (a zombie waiting for its reaper does not run)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    try:
        # the leader of an orphaned group is reaped by init, which may take a moment
        return Path(f"/proc/{pgid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


# -- services ----------------------------------------------------------------------------


def test_create_answers_pending_operation_then_a_ready_service(
    services: run_v2.ServicesClient, project: str, http: httpx.Client
) -> None:
    operation = services.create_service(
        parent=parent(project),
        service_id="echo",
        service=run_v2.Service(template=echo(startup_delay=0.5), labels={"team": "core"}),
    )
    ops = services.transport.operations_client
    pending = ops.get_operation(operation.operation.name)
    assert pending.done is False
    assert pending.name.startswith(f"{parent(project)}/operations/")

    service = operation.result(polling=FAST)
    done = ops.get_operation(operation.operation.name)
    assert done.done is True
    assert done.response.type_url == "type.googleapis.com/google.cloud.run.v2.Service"

    assert service.name == f"{parent(project)}/services/echo"
    assert service.uid
    assert service.generation == 1
    assert service.observed_generation == 1
    assert service.create_time
    assert service.update_time
    assert service.creator
    assert service.etag
    assert service.labels == {"team": "core"}
    assert service.reconciling is False
    assert service.latest_created_revision == service.latest_ready_revision
    assert short(service.latest_ready_revision).startswith("echo-00001-")
    assert [(t.type_, t.percent) for t in service.traffic] == [(LATEST, 100)]
    [status] = service.traffic_statuses
    assert (status.type_, status.revision, status.percent) == (
        LATEST,
        short(service.latest_ready_revision),
        100,
    )
    assert service.terminal_condition.type_ == "Ready"
    assert service.terminal_condition.state == SUCCEEDED
    assert service.uri.startswith("http://127.0.0.1:")
    assert list(service.urls) == [service.uri]

    body = http.get(service.uri).json()
    assert body["greeting"] == "hello"
    assert body["service"] == "echo"
    assert body["revision"] == short(service.latest_ready_revision)
    assert services.get_service(name=service.name) == service


def test_list_services_pages(services: run_v2.ServicesClient, project: str) -> None:
    for service_id in ("alpha", "beta", "gamma"):
        create(services, project, service_id, echo())
    pager = services.list_services(
        request=run_v2.ListServicesRequest(parent=parent(project), page_size=2)
    )
    pages = list(pager.pages)
    assert [len(page.services) for page in pages] == [2, 1]
    assert [short(s.name) for page in pages for s in page.services] == ["alpha", "beta", "gamma"]
    assert pages[0].next_page_token
    assert [short(s.name) for s in services.list_services(parent=parent(project))] == [
        "alpha",
        "beta",
        "gamma",
    ]


def test_update_makes_a_revision_only_when_the_template_changes(
    services: run_v2.ServicesClient,
    revisions: run_v2.RevisionsClient,
    project: str,
    http: httpx.Client,
) -> None:
    first = create(services, project, "echo", echo(greeting="one"))
    service = services.get_service(name=first.name)
    service.template = echo(greeting="two")
    second = update(services, service)
    assert second.generation == 2
    assert second.observed_generation == 2
    assert second.etag != first.etag
    assert short(second.latest_ready_revision).startswith("echo-00002-")
    assert http.get(second.uri).json()["greeting"] == "two"
    assert second.uri == first.uri

    second.labels = {"only": "labels"}
    third = update(services, second)
    assert third.generation == 3
    assert third.latest_ready_revision == second.latest_ready_revision
    assert len(list(revisions.list_revisions(parent=first.name))) == 2

    with pytest.raises(exceptions.Conflict, match="etag"):
        update(services, second)  # the etag of generation 2 is stale now


def test_updates_in_a_row_queue_and_none_is_lost(
    services: run_v2.ServicesClient, project: str, http: httpx.Client
) -> None:
    first = create(services, project, "echo", echo(greeting="one"))
    first.template = echo(greeting="slow", startup_delay=0.4)
    slow = services.update_service(service=first)
    pending = slow.metadata  # the stored generation 2, with its etag
    assert pending.generation == 2
    pending.labels = {"second": "update"}
    quick = services.update_service(service=pending)
    final = quick.result(polling=FAST)
    assert slow.result(polling=FAST).generation >= 2
    final = services.get_service(name=first.name)
    assert final.generation == 3
    assert final.observed_generation == 3
    assert final.labels == {"second": "update"}
    assert final.reconciling is False
    assert short(final.latest_ready_revision).startswith("echo-00002-")
    assert http.get(final.uri).json()["greeting"] == "slow"


def test_update_mask_touches_only_the_named_fields(
    services: run_v2.ServicesClient, project: str
) -> None:
    first = create(services, project, "echo", echo(), labels={"a": "1"})
    patch = run_v2.Service(name=first.name, labels={"b": "2"}, description="ignored")
    updated = services.update_service(
        request=run_v2.UpdateServiceRequest(service=patch, update_mask={"paths": ["labels"]})
    ).result(polling=FAST)
    assert updated.labels == {"b": "2"}
    assert updated.description == ""
    assert updated.latest_ready_revision == first.latest_ready_revision


def test_allow_missing_creates_and_validate_only_stores_nothing(
    services: run_v2.ServicesClient, project: str
) -> None:
    name = f"{parent(project)}/services/made-by-update"
    with pytest.raises(exceptions.NotFound):
        update(services, run_v2.Service(name=name, template=echo()))
    made = services.update_service(
        request=run_v2.UpdateServiceRequest(
            service=run_v2.Service(name=name, template=echo()), allow_missing=True
        )
    ).result(polling=FAST)
    assert made.generation == 1

    services.create_service(
        request=run_v2.CreateServiceRequest(
            parent=parent(project),
            service_id="dry-run",
            service=run_v2.Service(template=echo()),
            validate_only=True,
        )
    ).result(polling=FAST)
    with pytest.raises(exceptions.NotFound):
        services.get_service(name=f"{parent(project)}/services/dry-run")


def test_delete_service_stops_its_processes_and_url(
    services: run_v2.ServicesClient, project: str, http: httpx.Client
) -> None:
    service = create(services, project, "echo", echo())
    pid = http.get(service.uri).json()["pid"]
    deleted = services.delete_service(name=service.name).result(polling=FAST)
    assert deleted.name == service.name
    with pytest.raises(exceptions.NotFound, match="does not exist"):
        services.get_service(name=service.name)
    assert gone(pid)
    with pytest.raises(httpx.ConnectError):
        http.get(service.uri)


def test_service_errors(services: run_v2.ServicesClient, project: str) -> None:
    with pytest.raises(exceptions.NotFound):
        services.get_service(name=f"{parent(project)}/services/nope")
    with pytest.raises(exceptions.NotFound):
        services.delete_service(name=f"{parent(project)}/services/nope")
    service = create(services, project, "echo", echo("echo-one"))
    with pytest.raises(exceptions.Conflict, match="already exists"):
        create(services, project, "echo", echo())
    with pytest.raises(exceptions.BadRequest, match="service_id"):
        create(services, project, "Bad_Name", echo())

    def rejected(match: str, error: type[Exception] = exceptions.BadRequest, **fields: Any) -> None:
        candidate = services.get_service(name=service.name)
        for key, value in fields.items():
            setattr(candidate, key, value)
        with pytest.raises(error, match=match):
            update(services, candidate)

    target = run_v2.TrafficTarget
    rejected(
        "Revision 'echo-nope' does not exist",
        traffic=[target(type_=REVISION, revision="echo-nope", percent=100)],
    )
    rejected("sum to 100, but they sum to 90", traffic=[target(type_=LATEST, percent=90)])
    rejected(
        "tag 'a' is used more than once",
        traffic=[
            target(type_=LATEST, percent=100, tag="a"),
            target(type_=REVISION, revision="echo-one", percent=0, tag="a"),
        ],
    )
    rejected(
        "reserved env names were provided: PORT",
        template=echo(env=[run_v2.EnvVar(name="PORT", value="1")]),
    )
    rejected("must be prefixed", template=echo("other-name"))
    rejected(
        "different configuration already exists",
        exceptions.Conflict,
        template=echo("echo-one", greeting="changed"),
    )
    # nothing of the rejected updates stuck
    assert services.get_service(name=service.name).generation == 1
    with pytest.raises(exceptions.Conflict, match="etag"):
        services.delete_service(
            request=run_v2.DeleteServiceRequest(name=service.name, etag='"stale"')
        )
    with pytest.raises(exceptions.NotFound):
        services.transport.operations_client.get_operation(f"{parent(project)}/operations/nope")


# -- revisions ---------------------------------------------------------------------------


def test_revisions_list_get_and_delete(
    services: run_v2.ServicesClient, revisions: run_v2.RevisionsClient, project: str
) -> None:
    service = create(services, project, "echo", echo("echo-a"))
    service.template = echo("echo-b", greeting="b")
    service = update(services, service)
    pager = revisions.list_revisions(
        request=run_v2.ListRevisionsRequest(parent=service.name, page_size=1)
    )
    assert [[short(r.name) for r in page.revisions] for page in pager.pages] == [
        ["echo-b"],
        ["echo-a"],
    ]
    revision = revisions.get_revision(name=f"{service.name}/revisions/echo-b")
    assert revision.service == service.name
    assert revision.generation == 1
    assert revision.create_time
    assert revision.log_uri
    assert revision.reconciling is False
    assert (revision.conditions[0].type_, revision.conditions[0].state) == ("Ready", SUCCEEDED)
    assert revision.containers[0].env[0].value == "b"

    with pytest.raises(exceptions.BadRequest, match="serving traffic"):
        revisions.delete_revision(name=revision.name).result(polling=FAST)
    deleted = revisions.delete_revision(name=f"{service.name}/revisions/echo-a").result(
        polling=FAST
    )
    assert short(deleted.name) == "echo-a"
    with pytest.raises(exceptions.NotFound, match="REVISION"):
        revisions.get_revision(name=f"{service.name}/revisions/echo-a")
    with pytest.raises(exceptions.NotFound):
        list(revisions.list_revisions(parent=f"{parent(project)}/services/nope"))


# -- operations --------------------------------------------------------------------------


def test_operations_list_get_delete(services: run_v2.ServicesClient, project: str) -> None:
    services.create_service(
        parent=parent(project), service_id="echo", service=run_v2.Service(template=echo())
    ).result(polling=FAST)
    ops = services.transport.operations_client
    listed = list(ops.list_operations(name=parent(project), filter_=""))
    assert len(listed) == 1
    assert listed[0].done is True
    ops.delete_operation(name=listed[0].name)
    with pytest.raises(exceptions.NotFound):
        ops.get_operation(name=listed[0].name)


def test_wait_operation_returns_when_done(
    services: run_v2.ServicesClient, project: str, http: httpx.Client, emulator: str
) -> None:
    operation = services.create_service(
        parent=parent(project),
        service_id="echo",
        service=run_v2.Service(template=echo(startup_delay=0.3)),
    )
    response = http.post(f"{emulator}/v2/{operation.operation.name}:wait", json={"timeout": "20s"})
    assert response.status_code == 200
    assert response.json()["done"] is True


# -- revisions as processes --------------------------------------------------------------


def test_exit_3_fails_the_revision_and_keeps_traffic(
    services: run_v2.ServicesClient,
    revisions: run_v2.RevisionsClient,
    project: str,
    http: httpx.Client,
) -> None:
    good = create(services, project, "backend", echo())
    service = services.get_service(name=good.name)
    service.template = exit3()
    with pytest.raises(exceptions.GoogleAPICallError) as failure:
        update(services, service)
    message = str(failure.value)
    assert "is not ready and cannot serve traffic." in message
    assert "failed to start and listen on the port defined provided by the PORT=" in message
    # Cloud Run's own words only: the exit code and the app's lines are in the logs
    # (tests/emulator/test_cloudrun_startup.py reads them)
    assert "exit(3)" not in message
    assert "insufficient entropy" not in message

    after = services.get_service(name=good.name)
    assert after.latest_ready_revision == good.latest_ready_revision
    assert after.latest_created_revision != good.latest_created_revision
    assert [(s.revision, s.percent) for s in after.traffic_statuses] == [
        (short(good.latest_ready_revision), 100)
    ]
    assert after.terminal_condition.state == FAILED
    assert after.terminal_condition.message == failure.value.message
    assert after.reconciling is False
    failed = revisions.get_revision(name=after.latest_created_revision)
    assert failed.conditions[0].state == FAILED
    assert failed.conditions[0].message.startswith("The user-provided container failed to start")
    assert answered_by(http.get(after.uri)) == short(good.latest_ready_revision)


def test_first_revision_failing_leaves_a_url_that_answers_503(
    services: run_v2.ServicesClient, project: str, http: httpx.Client
) -> None:
    with pytest.raises(exceptions.GoogleAPICallError, match="is not ready and cannot serve"):
        create(services, project, "broken", exit3())
    service = services.get_service(name=f"{parent(project)}/services/broken")
    assert service.latest_ready_revision == ""
    assert service.terminal_condition.state == FAILED
    assert http.get(service.uri).status_code == 503


def test_startup_probe_timeout_and_http_probe(
    services: run_v2.ServicesClient, project: str, http: httpx.Client
) -> None:
    probe = run_v2.Probe(
        http_get=run_v2.HTTPGetAction(path="/ready"), period_seconds=1, failure_threshold=2
    )
    ready = create(services, project, "probed", echo(startup_probe=probe))
    assert http.get(ready.uri).status_code == 200

    silent = run_v2.Container(
        image="x",
        command=["python", "-c", "import time; time.sleep(30)"],
        startup_probe=run_v2.Probe(
            tcp_socket=run_v2.TCPSocketAction(), period_seconds=1, failure_threshold=1
        ),
    )
    started = time.monotonic()
    with pytest.raises(exceptions.GoogleAPICallError, match="within the allocated timeout"):
        create(services, project, "silent", run_v2.RevisionTemplate(containers=[silent]))
    assert time.monotonic() - started < 10


def test_crashed_instance_is_restarted_and_the_crash_logged(
    services: run_v2.ServicesClient, emulator: str, project: str, http: httpx.Client
) -> None:
    service = create(services, project, "echo", echo())
    before = http.get(service.uri).json()["pid"]
    with contextlib.suppress(httpx.HTTPError):
        http.get(f"{service.uri}/crash")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        response = http.get(service.uri)
        if response.status_code == 200 and response.json()["pid"] != before:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the crashed instance was not restarted")
    # as on Cloud Run: the exit in the system log, the app's last words in its own output
    log_filter = (
        'resource.labels.service_name="echo" AND '
        f'logName="projects/{project}/logs/run.googleapis.com%2Fvarlog%2Fsystem"'
    )
    texts = log_texts(emulator, project, log_filter, "Container called exit(7).")
    assert "Container called exit(7)." in texts


def test_fifty_fifty_split_over_200_requests(
    services: run_v2.ServicesClient, project: str, http: httpx.Client
) -> None:
    service = create(services, project, "split", echo("split-a", greeting="a"))
    service.template = echo("split-b", greeting="b")
    service.traffic = [
        run_v2.TrafficTarget(type_=REVISION, revision="split-a", percent=50),
        run_v2.TrafficTarget(type_=REVISION, revision="split-b", percent=50),
    ]
    service = update(services, service)
    counts = Counter(answered_by(http.get(service.uri)) for _ in range(200))
    assert set(counts) == {"split-a", "split-b"}
    assert all(80 <= n <= 120 for n in counts.values()), counts
    assert sorted((s.revision, s.percent) for s in service.traffic_statuses) == [
        ("split-a", 50),
        ("split-b", 50),
    ]


def test_tag_url_reaches_its_revision_only(
    services: run_v2.ServicesClient, project: str, http: httpx.Client
) -> None:
    service = create(services, project, "tagged", echo("tagged-a"))
    service.template = echo("tagged-b", greeting="canary")
    service.traffic = [
        run_v2.TrafficTarget(type_=REVISION, revision="tagged-a", percent=100),
        run_v2.TrafficTarget(type_=REVISION, revision="tagged-b", percent=0, tag="canary"),
    ]
    service = update(services, service)
    [tagged] = [s for s in service.traffic_statuses if s.tag == "canary"]
    assert tagged.uri
    assert tagged.uri != service.uri
    assert {answered_by(http.get(tagged.uri)) for _ in range(20)} == {"tagged-b"}
    assert {answered_by(http.get(service.uri)) for _ in range(20)} == {"tagged-a"}
    # the tag keeps its URL when the traffic changes again
    service.traffic = [
        run_v2.TrafficTarget(type_=LATEST, percent=100),
        run_v2.TrafficTarget(type_=REVISION, revision="tagged-b", percent=0, tag="canary"),
    ]
    service = update(services, service)
    [again] = [s for s in service.traffic_statuses if s.tag == "canary"]
    assert again.uri == tagged.uri


def test_fastapi_app_with_env_from_a_value_and_a_secret(
    services: run_v2.ServicesClient, emulator: str, project: str, http: httpx.Client
) -> None:
    secretmanager = pytest.importorskip("google.cloud.secretmanager")
    sm = secretmanager.SecretManagerServiceClient(**client_kwargs(emulator))
    try:
        secret = sm.create_secret(
            parent=f"projects/{project}",
            secret_id="api-token",
            secret={"replication": {"automatic": {}}},
        )
        sm.add_secret_version(parent=secret.name, payload={"data": b"t" * 32})
    finally:
        sm.transport.close()
    container = run_v2.Container(
        image="ignored-locally",
        command=["python", "-m", "uvicorn", "fastapi_app:app"],
        args=["--host", "127.0.0.1", "--port", "${PORT}"],
        working_dir=str(APPS),
        env=[
            run_v2.EnvVar(name="GREETING", value="from-a-value"),
            run_v2.EnvVar(
                name="API_TOKEN",
                value_source=run_v2.EnvVarSource(
                    secret_key_ref=run_v2.SecretKeySelector(secret="api-token", version="1")
                ),
            ),
        ],
        # Cloud Run's default period (10 s) would wait that long after a first attempt made
        # before uvicorn listens
        startup_probe=run_v2.Probe(
            http_get=run_v2.HTTPGetAction(path="/health"), period_seconds=1, failure_threshold=30
        ),
    )
    service = create(services, project, "api", run_v2.RevisionTemplate(containers=[container]))
    assert http.get(f"{service.uri}/health").json()["status"] == "ok"
    assert http.get(f"{service.uri}/config").json() == {
        "greeting": "from-a-value",
        "token_length": 32,
    }

    container.env[1].value_source.secret_key_ref.secret = "missing-secret"
    with pytest.raises(exceptions.GoogleAPICallError, match="missing-secret"):
        create(services, project, "no-secret", run_v2.RevisionTemplate(containers=[container]))


def log_texts(emulator: str, project: str, log_filter: str, until: str) -> list[str]:
    """Payloads of the entries matching ``log_filter``, polled until one contains ``until``."""
    texts: list[str] = []
    deadline = time.monotonic() + 5
    with open_logging_client(emulator, project, global_resource=True) as client:
        while not any(until in t for t in texts) and time.monotonic() < deadline:
            entries = client.list_entries(
                resource_names=[f"projects/{project}"], filter_=log_filter
            )
            texts = [str(entry.payload) for entry in entries]
            time.sleep(0.05)
    return texts


def test_revision_output_becomes_log_entries(
    services: run_v2.ServicesClient, emulator: str, project: str, http: httpx.Client
) -> None:
    service = create(services, project, "logged", echo())
    http.get(f"{service.uri}/some/path")
    log_filter = 'resource.type="cloud_run_revision" AND resource.labels.service_name="logged"'
    texts = log_texts(emulator, project, log_filter, "/some/path")
    assert any("echo listening on" in t for t in texts)  # a plain line: textPayload
    assert any("/some/path" in t for t in texts)  # a JSON line: jsonPayload


# -- restart and stop --------------------------------------------------------------------


def _pgids(state_dir: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(state_dir / "emulator.sqlite3")) as conn:
        return [row[0] for row in conn.execute("SELECT pgid FROM processes")]


def test_restart_keeps_services_and_urls_and_stop_leaves_no_process(tmp_path: Path) -> None:
    endpoint = start_emulator(tmp_path).endpoint
    assert endpoint is not None
    client = run_v2.ServicesClient(**client_kwargs(endpoint))
    try:
        service = create(client, "restart", "echo", echo("echo-a"))
        service.template = echo("echo-b", greeting="tag")
        service.traffic = [
            run_v2.TrafficTarget(type_=REVISION, revision="echo-a", percent=100),
            run_v2.TrafficTarget(type_=REVISION, revision="echo-b", percent=0, tag="next"),
        ]
        service = update(client, service)
        make_public(client, service.name)  # the policy too must outlive the restart
        policy = client.get_iam_policy(request={"resource": service.name})
    finally:
        client.transport.close()
    [tag_uri] = [s.uri for s in service.traffic_statuses if s.tag == "next"]
    before = _pgids(tmp_path)
    assert len(before) == 2
    stop_emulator(tmp_path)
    assert all(gone(pgid) for pgid in before)

    endpoint = start_emulator(tmp_path).endpoint
    assert endpoint is not None
    try:
        with httpx.Client(timeout=5) as http:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if (
                        http.get(service.uri).status_code == 200
                        and http.get(tag_uri).status_code == 200
                    ):
                        break
                time.sleep(0.1)
            assert answered_by(http.get(service.uri)) == "echo-a"
            assert http.get(tag_uri).json()["greeting"] == "tag"
        client = run_v2.ServicesClient(**client_kwargs(endpoint))
        try:
            restored = client.get_service(name=service.name)
            assert client.get_iam_policy(request={"resource": service.name}) == policy
        finally:
            client.transport.close()
        assert restored.uri == service.uri
        assert restored.etag == service.etag
        assert restored.traffic_statuses == service.traffic_statuses
        after = _pgids(tmp_path)
        assert len(after) == 2
    finally:
        stop_emulator(tmp_path)
    assert all(gone(pgid) for pgid in after)
    assert _pgids(tmp_path) == []


def test_idle_revisions_stop_and_start_again_when_routed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLLSAFE_EMULATOR_IDLE_GRACE", "0.2")
    endpoint = start_emulator(tmp_path).endpoint
    assert endpoint is not None
    client = run_v2.ServicesClient(**client_kwargs(endpoint))
    try:
        with httpx.Client(timeout=5, auth=IdTokenAuth(endpoint)) as http:
            service = create(client, "idle", "echo", echo("echo-a"))
            old_pid = http.get(service.uri).json()["pid"]
            service.template = echo("echo-b")
            service = update(client, service)  # LATEST moves to echo-b: echo-a is idle
            deadline = time.monotonic() + 10
            while not gone(old_pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert gone(old_pid)
            service.traffic = [run_v2.TrafficTarget(type_=REVISION, revision="echo-a", percent=100)]
            service = update(client, service)
            body = http.get(service.uri).json()
            assert body["revision"] == "echo-a"
            assert body["pid"] != old_pid
    finally:
        client.transport.close()
        stop_emulator(tmp_path)


def test_an_emulator_killed_outright_leaves_nothing_after_the_next_start(tmp_path: Path) -> None:
    endpoint = start_emulator(tmp_path).endpoint
    assert endpoint is not None
    client = run_v2.ServicesClient(**client_kwargs(endpoint))
    try:
        service = create(client, "killed", "echo", echo())
    finally:
        client.transport.close()
    [orphan] = _pgids(tmp_path)
    emulator_pid = json.loads((tmp_path / "emulator.json").read_text())["pid"]
    os.kill(emulator_pid, signal.SIGKILL)  # no shutdown hook runs: the revision survives
    deadline = time.monotonic() + 5
    while emulator_status(tmp_path).running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not gone(orphan)
    try:
        endpoint = start_emulator(tmp_path).endpoint
        assert endpoint is not None
        assert gone(orphan)
        with httpx.Client(timeout=5, auth=IdTokenAuth(endpoint)) as http:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(service.uri).status_code == 200:
                        break
                time.sleep(0.05)
            assert http.get(service.uri).json()["pid"] != orphan
    finally:
        stop_emulator(tmp_path)
