"""Knative serving v1 (what gcloud speaks) on the regional host, over the v2 API's state.

Services are made with the official ``run_v2`` client; the v1 side is read and written over
plain HTTP as gcloud does: to ``REGION-127.0.0.1:PORT``, by ``Host`` header or through the
emulator acting as gcloud's HTTP proxy (absolute-form request targets). gcloud itself is
driven in ``test_gcloud.py``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from google.cloud import run_v2, secretmanager

from rollsafe._gcp import client_kwargs
from rollsafe.emulator._hosts import split_regional_host
from rollsafe.emulator._knative import service_json, service_spec
from rollsafe.emulator._run_spec import new_service
from rollsafe.emulator._run_store import template_key
from tests.conftest import CANARY_STRONG
from tests.emulator.test_cloudrun import LOCATION, create, echo, short

REGIONAL = f"{LOCATION}-127.0.0.1"


@pytest.fixture
def v1(emulator: str) -> Iterator[httpx.Client]:
    """An HTTP client whose requests say ``Host: us-central1-127.0.0.1:PORT``."""
    port = urlsplit(emulator).port
    with httpx.Client(
        base_url=emulator, headers={"Host": f"{REGIONAL}:{port}"}, timeout=30
    ) as client:
        yield client


def _path(project: str, service: str = "") -> str:
    base = f"/apis/serving.knative.dev/v1/namespaces/{project}/services"
    return f"{base}/{service}" if service else base


def _wait_ready(v1: httpx.Client, project: str, name: str) -> dict[str, Any]:
    """Poll as gcloud does: until observedGeneration caught up and Ready is not Unknown."""
    for _ in range(600):
        body: dict[str, Any] = v1.get(_path(project, name)).json()
        ready = next(c for c in body["status"]["conditions"] if c["type"] == "Ready")
        caught_up = body["status"]["observedGeneration"] == body["metadata"]["generation"]
        if caught_up and ready["status"] != "Unknown":
            return body
        v1.get("/", timeout=1)  # a round trip instead of a sleep
    raise AssertionError(f"{name} never became ready")


def _raw(emulator: str, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as is (absolute-form targets, CONNECT) and read the answer."""
    parts = urlsplit(emulator)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                break
    data = b"".join(chunks)
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _add_secret(emulator: str, project: str, name: str) -> None:
    client = secretmanager.SecretManagerServiceClient(**client_kwargs(emulator))
    try:
        client.create_secret(
            parent=f"projects/{project}", secret_id=name, secret={"replication": {"automatic": {}}}
        )
        client.add_secret_version(
            parent=f"projects/{project}/secrets/{name}", payload={"data": CANARY_STRONG.encode()}
        )
    finally:
        client.transport.close()


def test_service_reads_as_knative_with_region_and_secret_refs(
    emulator: str, services: run_v2.ServicesClient, v1: httpx.Client, project: str
) -> None:
    _add_secret(emulator, project, "jwt")
    ref = run_v2.EnvVarSource(secret_key_ref=run_v2.SecretKeySelector(secret="jwt", version="1"))
    env = [run_v2.EnvVar(name="GREETING", value="hi"), run_v2.EnvVar(name="JWT", value_source=ref)]
    made = create(services, project, "kn-read", echo(env=env), labels={"team": "a"})
    body = v1.get(_path(project, "kn-read")).json()
    assert body["apiVersion"] == "serving.knative.dev/v1"
    assert body["kind"] == "Service"
    meta = body["metadata"]
    assert (meta["name"], meta["namespace"], meta["generation"]) == ("kn-read", project, 1)
    assert meta["labels"] == {"team": "a", "cloud.googleapis.com/location": LOCATION}
    assert meta["resourceVersion"] == made.etag.strip('"')
    container = body["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {"name": "GREETING", "value": "hi"},
        {"name": "JWT", "valueFrom": {"secretKeyRef": {"name": "jwt", "key": "1"}}},
    ]
    assert body["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]
    status = body["status"]
    assert status["latestReadyRevisionName"] == short(made.latest_ready_revision)
    assert status["url"] == status["address"]["url"] == made.uri
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "ConfigurationsReady": "True",
        "RoutesReady": "True",
    }
    assert CANARY_STRONG not in json.dumps(body)
    listed = v1.get(_path(project)).json()
    assert listed["kind"] == "ServiceList"
    assert [s["metadata"]["name"] for s in listed["items"]] == ["kn-read"]


def test_replace_makes_a_revision_v2_sees(
    services: run_v2.ServicesClient, v1: httpx.Client, project: str
) -> None:
    made = create(services, project, "kn-put", echo())
    first = short(made.latest_ready_revision)
    body = v1.get(_path(project, "kn-put")).json()
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["env"].append({"name": "A", "value": "1"})
    put = v1.put(_path(project, "kn-put"), json=body)
    assert put.status_code == 200, put.text
    answered = put.json()
    assert answered["metadata"]["generation"] == 2
    assert {c["status"] for c in answered["status"]["conditions"]} == {"Unknown"}
    ready = _wait_ready(v1, project, "kn-put")
    second = ready["status"]["latestReadyRevisionName"]
    assert second != first
    service = services.get_service(name=made.name)
    assert short(service.latest_ready_revision) == second
    assert [(e.name, e.value) for e in service.template.containers[0].env][-1] == ("A", "1")
    # traffic by revision through v1, seen by v2
    ready["spec"]["traffic"] = [
        {"revisionName": first, "percent": 40},
        {"revisionName": second, "percent": 60, "tag": "next"},
    ]
    assert v1.put(_path(project, "kn-put"), json=ready).status_code == 200
    routed = _wait_ready(v1, project, "kn-put")
    assert [(t["revisionName"], t["percent"]) for t in routed["status"]["traffic"]] == [
        (first, 40),
        (second, 60),
    ]
    assert routed["status"]["traffic"][1]["url"].startswith("http://127.0.0.1:")
    after = services.get_service(name=made.name)
    assert [(t.revision, t.percent) for t in after.traffic] == [(first, 40), (second, 60)]
    revisions = v1.get(
        f"/apis/serving.knative.dev/v1/namespaces/{project}/revisions",
        params={"labelSelector": "serving.knative.dev/service = kn-put"},
    ).json()
    active = {
        r["metadata"]["name"]: next(
            c["status"] for c in r["status"]["conditions"] if c["type"] == "Active"
        )
        for r in revisions["items"]
    }
    assert active == {first: "True", second: "True"}


@pytest.mark.parametrize(
    ("change", "status", "reason", "words"),
    [
        pytest.param(
            {"metadata": {"resourceVersion": "stale"}},
            409,
            "ABORTED",
            "the object has been modified",
            id="stale-resource-version",
        ),
        pytest.param(
            {"spec": {"traffic": [{"revisionName": "kn-err-nope", "percent": 100}]}},
            400,
            "INVALID_ARGUMENT",
            "Revision 'kn-err-nope' does not exist",
            id="unknown-revision",
        ),
        pytest.param(
            {"metadata": {"name": "other"}}, 400, "INVALID_ARGUMENT", "does not match", id="rename"
        ),
    ],
)
def test_replace_refusals(
    services: run_v2.ServicesClient,
    v1: httpx.Client,
    project: str,
    change: dict[str, Any],
    status: int,
    reason: str,
    words: str,
) -> None:
    create(services, project, "kn-err", echo())
    body = v1.get(_path(project, "kn-err")).json()
    for key, value in change.items():
        body[key].update(value)
    answer = v1.put(_path(project, "kn-err"), json=body)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (status, reason)
    assert words in error["message"]
    assert (
        services.get_service(
            name=f"projects/{project}/locations/{LOCATION}/services/kn-err"
        ).generation
        == 1
    )


def test_missing_service_and_global_host(emulator: str, v1: httpx.Client, project: str) -> None:
    missing = v1.get(_path(project, "nope"))
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": 404,
        "status": "NOT_FOUND",
        "message": f"Resource 'nope' of kind 'SERVICE' in region '{LOCATION}' in project "
        f"'{project}' does not exist.",
    }
    # the namespaced API lives on regional hosts only
    with httpx.Client(base_url=emulator, timeout=10) as plain:
        answer = plain.get(_path(project))
    assert answer.status_code == 400
    assert "regional" in answer.json()["error"]["message"]


def test_proxy_requests_for_own_hosts_only(emulator: str, project: str) -> None:
    port = urlsplit(emulator).port
    own = f"http://{REGIONAL}:{port}{_path(project)}"
    status, body = _raw(emulator, f"GET {own} HTTP/1.1\r\nHost: {REGIONAL}:{port}\r\n\r\n".encode())
    assert status == 200
    assert json.loads(body)["kind"] == "ServiceList"
    status, body = _raw(emulator, b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert status == 502
    assert "does not forward" in json.loads(body)["error"]["message"]
    other_port = f"http://127.0.0.1:{port + 1}/"
    status, _ = _raw(emulator, f"GET {other_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 502
    status, body = _raw(
        emulator, b"CONNECT run.googleapis.com:443 HTTP/1.1\r\nHost: run.googleapis.com:443\r\n\r\n"
    )
    assert status == 403
    assert "not a proxy" in json.loads(body)["error"]["message"]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("us-central1-127.0.0.1:8790", ("us-central1", "127.0.0.1:8790"), id="ipv4"),
        pytest.param("europe-west1-localhost:1", ("europe-west1", "localhost:1"), id="localhost"),
        pytest.param("us-central1-[::1]:5", ("us-central1", "[::1]:5"), id="ipv6"),
        pytest.param("127.0.0.1:8790", (None, "127.0.0.1:8790"), id="plain"),
        pytest.param(
            "us-central1-example.com:80", (None, "us-central1-example.com:80"), id="foreign"
        ),
    ],
)
def test_split_regional_host(host: str, expected: tuple[str | None, str]) -> None:
    assert split_regional_host(host) == expected


def _rich_service() -> run_v2.Service:
    probe = run_v2.Probe(
        http_get=run_v2.HTTPGetAction(path="/health", port=8080),
        period_seconds=2,
        failure_threshold=5,
        timeout_seconds=1,
    )
    secret = run_v2.SecretKeySelector(secret="s", version="2")
    container = run_v2.Container(
        name="app",
        image="img",
        command=["python"],
        args=["a.py"],
        working_dir="/w",
        env=[
            run_v2.EnvVar(name="A", value="1"),
            run_v2.EnvVar(name="S", value_source=run_v2.EnvVarSource(secret_key_ref=secret)),
        ],
        ports=[run_v2.ContainerPort(name="http1", container_port=8080)],
        resources=run_v2.ResourceRequirements(
            limits={"cpu": "1", "memory": "512Mi"}, cpu_idle=True, startup_cpu_boost=True
        ),
        startup_probe=probe,
        liveness_probe=run_v2.Probe(tcp_socket=run_v2.TCPSocketAction(port=8080)),
    )
    template = run_v2.RevisionTemplate(
        revision="svc-abc",
        labels={"l": "v"},
        annotations={"a": "b"},
        containers=[container],
        scaling=run_v2.RevisionScaling(min_instance_count=1, max_instance_count=5),
        timeout=timedelta(seconds=120),
        service_account="sa@example.iam.gserviceaccount.com",
        max_instance_request_concurrency=10,
        execution_environment=run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2,
    )
    body = run_v2.Service(template=template, labels={"x": "y"}, annotations={"q": "r"})
    return new_service(f"projects/p/locations/{LOCATION}/services/svc", body)


def test_a_read_then_replace_round_trip_changes_nothing() -> None:
    """gcloud's update-traffic PUTs back the template it read: no new revision may follow."""
    service = _rich_service()
    back = service_spec(service_json(service), service)
    assert template_key(back.template) == template_key(service.template)
    assert (dict(back.labels), dict(back.annotations)) == ({"x": "y"}, {"q": "r"})
    annotations = service_json(service)["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "a": "b",
        "autoscaling.knative.dev/minScale": "1",
        "autoscaling.knative.dev/maxScale": "5",
        "run.googleapis.com/cpu-throttling": "true",
        "run.googleapis.com/startup-cpu-boost": "true",
    }


def test_located_service_and_its_iam_policy(
    emulator: str, services: run_v2.ServicesClient, project: str
) -> None:
    made = create(services, project, "kn-iam", echo())
    base = f"/v1/projects/{project}/locations/{LOCATION}/services"
    with httpx.Client(base_url=emulator, timeout=10) as http:
        assert http.get(f"{base}/kn-iam").json()["metadata"]["uid"] == made.uid
        policy = http.get(f"{base}/kn-iam:getIamPolicy").json()
        binding = {"role": "roles/run.invoker", "members": ["allUsers"]}
        body = {"policy": {"bindings": [binding], "etag": policy["etag"]}}
        assert http.post(f"{base}/kn-iam:setIamPolicy", json=body).status_code == 200
        assert http.get(f"{base}/kn-iam:getIamPolicy").json()["bindings"] == [binding]
        missing = http.get(f"{base}/nope")
        assert (missing.status_code, missing.json()["error"]["status"]) == (404, "NOT_FOUND")
