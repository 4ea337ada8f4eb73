"""Google's generated ``run_v2`` samples, call for call, against the emulator.

Source: googleapis/google-cloud-python
``packages/google-cloud-run/samples/generated_samples/run_v2_generated_*_sync.py`` (the
``_sync_<hash>`` files are the same calls under other region tags). Each test builds the
sample's request type and makes its call, then ``operation.result()`` where the sample waits;
only the client's construction differs (``gapic_client``). The generated requests hold
placeholders (``"parent_value"``): these are replaced with real names and the fields Cloud
Run requires (a container to run), as the samples' header says they must be. The one
exception, ``test_generated_create_service_request_as_is``, sends the request with only the
names filled in and expects Google's refusal.

Cloud Run Jobs (jobs, executions, tasks), worker pools, instances and builds are not served
by the emulator: their samples must get 501 UNIMPLEMENTED in Google's shape, never 404.
The long-running operations are reached through the ``ServicesClient`` mixins
(``list_operations``, ``get_operation``, ``wait_operation``, ``delete_operation``).
Services are private, as on Cloud Run: the service is invoked with an ID token for its URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import run_v2
from google.iam.v1 import iam_policy_pb2  # type: ignore[import-untyped]
from google.longrunning import operations_pb2  # type: ignore[import-untyped]

from tests.emulator.conftest import IdTokenAuth, gapic_client

APPS = Path(__file__).resolve().parent.parent / "apps"
LOCATION = "us-central1"
GEN = "googleapis/google-cloud-python packages/google-cloud-run/samples/generated_samples/"


def _template(greeting: str) -> run_v2.RevisionTemplate:
    """``apps/echo.py``: the container Cloud Run requires and the generated request lacks."""
    container = run_v2.Container(
        image="ignored-locally",
        command=["python", "echo.py"],
        working_dir=str(APPS),
        env=[run_v2.EnvVar(name="GREETING", value=greeting)],
    )
    return run_v2.RevisionTemplate(containers=[container])


@dataclass(frozen=True)
class Created:
    operation: str
    service: run_v2.Service


@pytest.fixture(scope="module")
def services(emulator: str) -> Iterator[run_v2.ServicesClient]:
    with gapic_client(run_v2.ServicesClient, emulator) as client:
        yield client


@pytest.fixture(scope="module")
def revisions(emulator: str) -> Iterator[run_v2.RevisionsClient]:
    with gapic_client(run_v2.RevisionsClient, emulator) as client:
        yield client


@pytest.fixture(scope="module")
def parent(sample_project: str) -> str:
    return f"projects/{sample_project}/locations/{LOCATION}"


@pytest.fixture(scope="module")
def created(services: run_v2.ServicesClient, parent: str) -> Created:
    # run_v2_generated_services_create_service_sync.py (sample_create_service)
    request = run_v2.CreateServiceRequest(
        parent=parent,
        service_id="hello",
        service=run_v2.Service(template=_template("hello")),
    )
    operation = services.create_service(request=request)
    response = operation.result()
    return Created(operation.operation.name, response)


@pytest.fixture(scope="module")
def updated(services: run_v2.ServicesClient, created: Created) -> run_v2.Service:
    # run_v2_generated_services_update_service_sync.py (sample_update_service)
    request = run_v2.UpdateServiceRequest(
        service=run_v2.Service(name=created.service.name, template=_template("bonjour")),
    )
    operation = services.update_service(request=request)
    response: run_v2.Service = operation.result()
    return response


@pytest.fixture(scope="module")
def http(emulator: str) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, auth=IdTokenAuth(emulator)) as client:
        yield client


READY = run_v2.Condition.State.CONDITION_SUCCEEDED


# -- services ----------------------------------------------------------------------------


def test_create_service(created: Created, parent: str) -> None:
    # run_v2_generated_services_create_service_sync.py
    service = created.service
    assert service.name == f"{parent}/services/hello"
    assert service.terminal_condition.state == READY
    assert service.latest_ready_revision.startswith(f"{service.name}/revisions/hello-")
    assert service.uri.startswith("http")
    assert service.etag


def test_generated_create_service_request_as_is(
    services: run_v2.ServicesClient, parent: str
) -> None:
    # run_v2_generated_services_create_service_sync.py with only parent and service_id
    # filled in, as generated: Cloud Run refuses a service with no container to run
    request = run_v2.CreateServiceRequest(parent=parent, service_id="service-id-value")
    with pytest.raises(exceptions.BadRequest) as refused:
        services.create_service(request=request)
    assert refused.value.response.json()["error"]["status"] == "INVALID_ARGUMENT"
    with pytest.raises(exceptions.NotFound):
        services.get_service(request={"name": f"{parent}/services/service-id-value"})


def test_get_service(services: run_v2.ServicesClient, created: Created) -> None:
    # run_v2_generated_services_get_service_sync.py
    request = run_v2.GetServiceRequest(name=created.service.name)
    response = services.get_service(request=request)
    assert response.name == created.service.name
    assert response.uri == created.service.uri


def test_list_services(services: run_v2.ServicesClient, created: Created, parent: str) -> None:
    # run_v2_generated_services_list_services_sync.py
    request = run_v2.ListServicesRequest(parent=parent)
    page_result = services.list_services(request=request)
    assert created.service.name in [response.name for response in page_result]


def test_get_iam_policy(services: run_v2.ServicesClient, created: Created) -> None:
    # run_v2_generated_services_get_iam_policy_sync.py
    request = iam_policy_pb2.GetIamPolicyRequest(resource=created.service.name)
    response = services.get_iam_policy(request=request)
    assert list(response.bindings) == []  # private: no invoker, as Cloud Run creates it
    assert response.etag


def test_set_iam_policy(services: run_v2.ServicesClient, created: Created) -> None:
    # run_v2_generated_services_set_iam_policy_sync.py (resource only, as generated: an
    # empty policy, which leaves the service private)
    request = iam_policy_pb2.SetIamPolicyRequest(resource=created.service.name)
    response = services.set_iam_policy(request=request)
    assert list(response.bindings) == []
    assert response.etag


def test_test_iam_permissions(services: run_v2.ServicesClient, created: Created) -> None:
    # run_v2_generated_services_test_iam_permissions_sync.py
    wanted = ["run.services.get", "run.routes.invoke"]
    request = iam_policy_pb2.TestIamPermissionsRequest(
        resource=created.service.name, permissions=wanted
    )
    response = services.test_iam_permissions(request=request)
    # the emulator's caller holds every permission, as a project owner does on Google
    assert list(response.permissions) == wanted


def test_invoke_private_service(http: httpx.Client, created: Created) -> None:
    # what the service answers once created: private, so only with an ID token for its URL
    anonymous = httpx.get(created.service.uri, timeout=10)
    assert anonymous.status_code == 403
    reply = http.get(created.service.uri)
    assert reply.status_code == 200, reply.text
    assert reply.json()["greeting"] == "hello"


def test_update_service(updated: run_v2.Service, created: Created, http: httpx.Client) -> None:
    # run_v2_generated_services_update_service_sync.py
    assert updated.name == created.service.name
    assert updated.latest_ready_revision != created.service.latest_ready_revision
    assert updated.terminal_condition.state == READY
    assert http.get(updated.uri).json()["greeting"] == "bonjour"


# -- revisions ---------------------------------------------------------------------------


def test_get_revision(revisions: run_v2.RevisionsClient, updated: run_v2.Service) -> None:
    # run_v2_generated_revisions_get_revision_sync.py
    request = run_v2.GetRevisionRequest(name=updated.latest_ready_revision)
    response = revisions.get_revision(request=request)
    assert response.name == updated.latest_ready_revision
    assert response.service == updated.name
    assert response.containers[0].env[0].value == "bonjour"


def test_list_revisions(
    revisions: run_v2.RevisionsClient, created: Created, updated: run_v2.Service
) -> None:
    # run_v2_generated_revisions_list_revisions_sync.py
    request = run_v2.ListRevisionsRequest(parent=created.service.name)
    page_result = revisions.list_revisions(request=request)
    listed = {response.name for response in page_result}
    assert {created.service.latest_ready_revision, updated.latest_ready_revision} <= listed


def test_delete_revision(
    revisions: run_v2.RevisionsClient, created: Created, updated: run_v2.Service
) -> None:
    # run_v2_generated_revisions_delete_revision_sync.py: the first revision, which no
    # longer serves (all traffic goes to the latest)
    request = run_v2.DeleteRevisionRequest(name=created.service.latest_ready_revision)
    operation = revisions.delete_revision(request=request)
    response = operation.result()
    assert response.name == created.service.latest_ready_revision
    with pytest.raises(exceptions.NotFound):
        revisions.get_revision(request={"name": created.service.latest_ready_revision})


def test_delete_serving_revision_is_refused(
    revisions: run_v2.RevisionsClient, updated: run_v2.Service
) -> None:
    # run_v2_generated_revisions_delete_revision_sync.py on the revision serving all traffic
    request = run_v2.DeleteRevisionRequest(name=updated.latest_ready_revision)
    with pytest.raises(exceptions.BadRequest) as refused:
        revisions.delete_revision(request=request)
    assert refused.value.response.json()["error"]["status"] == "FAILED_PRECONDITION"


def test_create_service_twice_conflicts(services: run_v2.ServicesClient, created: Created) -> None:
    # run_v2_generated_services_create_service_sync.py run a second time
    parent, _, service_id = created.service.name.rpartition("/services/")
    request = run_v2.CreateServiceRequest(
        parent=parent, service_id=service_id, service=run_v2.Service(template=_template("x"))
    )
    with pytest.raises(exceptions.Conflict) as refused:
        services.create_service(request=request)
    assert refused.value.response.json()["error"]["status"] == "ALREADY_EXISTS"


@pytest.mark.parametrize("verb", ["get_service", "update_service", "delete_service"])
def test_missing_service_is_not_found(
    services: run_v2.ServicesClient, parent: str, verb: str
) -> None:
    # run_v2_generated_services_{get,update,delete}_service_sync.py on a name that does not
    # exist (update_service without allow_missing)
    name = f"{parent}/services/missing"
    request: Any = {
        "get_service": run_v2.GetServiceRequest(name=name),
        "update_service": run_v2.UpdateServiceRequest(
            service=run_v2.Service(name=name, template=_template("x"))
        ),
        "delete_service": run_v2.DeleteServiceRequest(name=name),
    }[verb]
    with pytest.raises(exceptions.NotFound):
        getattr(services, verb)(request=request)


# -- long-running operations (the clients' operations mixin) -----------------------------


def test_operations(services: run_v2.ServicesClient, created: Created, parent: str) -> None:
    listed = services.list_operations(operations_pb2.ListOperationsRequest(name=parent))
    assert created.operation in [operation.name for operation in listed.operations]
    got = services.get_operation(operations_pb2.GetOperationRequest(name=created.operation))
    assert got.done
    assert not got.HasField("error")
    waited = services.wait_operation(operations_pb2.WaitOperationRequest(name=created.operation))
    assert waited.done
    services.delete_operation(operations_pb2.DeleteOperationRequest(name=created.operation))
    with pytest.raises(exceptions.NotFound):
        services.get_operation(operations_pb2.GetOperationRequest(name=created.operation))


def test_delete_service(
    services: run_v2.ServicesClient, created: Created, updated: run_v2.Service
) -> None:
    # run_v2_generated_services_delete_service_sync.py (last: the module's service goes)
    request = run_v2.DeleteServiceRequest(name=created.service.name)
    operation = services.delete_service(request=request)
    response = operation.result()
    assert response.name == created.service.name
    with pytest.raises(exceptions.NotFound):
        services.get_service(request={"name": created.service.name})


# -- what the emulator does not serve: 501, never 404 ------------------------------------

_IMAGE = "us-docker.pkg.dev/cloudrun/container/job:latest"
_CONTAINERS = [{"image": _IMAGE}]


def _unimplemented() -> list[Any]:
    """(client, method, request) for every other generated sync sample; ``{P}`` is the
    location's name."""
    job, wp = "{P}/jobs/job", "{P}/workerPools/pool"
    execution = f"{job}/executions/job-abcde"
    table: list[tuple[str, str, dict[str, Any]]] = [
        ("Jobs", "create_job", {"parent": "{P}", "job_id": "job",
                                "job": {"template": {"template": {"containers": _CONTAINERS}}}}),
        ("Jobs", "get_job", {"name": job}),
        ("Jobs", "list_jobs", {"parent": "{P}"}),
        ("Jobs", "update_job", {"job": {"name": job,
                                        "template": {"template": {"containers": _CONTAINERS}}}}),
        ("Jobs", "delete_job", {"name": job}),
        ("Jobs", "run_job", {"name": job}),
        ("Jobs", "get_iam_policy", {"resource": job}),
        ("Jobs", "set_iam_policy", {"resource": job}),
        ("Jobs", "test_iam_permissions", {"resource": job, "permissions": ["run.jobs.get"]}),
        ("Executions", "get_execution", {"name": execution}),
        ("Executions", "list_executions", {"parent": job}),
        ("Executions", "delete_execution", {"name": execution}),
        ("Executions", "cancel_execution", {"name": execution}),
        ("Tasks", "get_task", {"name": f"{execution}/tasks/job-abcde-task0"}),
        ("Tasks", "list_tasks", {"parent": execution}),
        ("WorkerPools", "create_worker_pool", {"parent": "{P}", "worker_pool_id": "pool",
                                               "worker_pool": {"template": {"containers": _CONTAINERS}}}),
        ("WorkerPools", "get_worker_pool", {"name": wp}),
        ("WorkerPools", "list_worker_pools", {"parent": "{P}"}),
        ("WorkerPools", "update_worker_pool", {"worker_pool": {"name": wp,
                                               "template": {"containers": _CONTAINERS}}}),
        ("WorkerPools", "delete_worker_pool", {"name": wp}),
        ("WorkerPools", "get_iam_policy", {"resource": wp}),
        ("WorkerPools", "set_iam_policy", {"resource": wp}),
        ("WorkerPools", "test_iam_permissions", {"resource": wp, "permissions": ["run.workerpools.get"]}),
        ("Instances", "create_instance", {"parent": "{P}", "instance_id": "inst",
                                          "instance": {"containers": _CONTAINERS}}),
        ("Instances", "get_instance", {"name": "{P}/instances/inst"}),
        ("Instances", "list_instances", {"parent": "{P}"}),
        ("Instances", "start_instance", {"name": "{P}/instances/inst"}),
        ("Instances", "stop_instance", {"name": "{P}/instances/inst"}),
        ("Instances", "delete_instance", {"name": "{P}/instances/inst"}),
        ("Builds", "submit_build", {"parent": "{P}", "image_uri": _IMAGE,
                                    "storage_source": {"bucket": "b", "object_": "o"}}),
    ]  # fmt: skip
    return [
        pytest.param(client, method, request, id=f"{client}.{method}")
        for client, method, request in table
    ]


def _fill(value: Any, parent: str) -> Any:
    if isinstance(value, str):
        return value.replace("{P}", parent)
    if isinstance(value, dict):
        return {key: _fill(item, parent) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, parent) for item in value]
    return value


@pytest.mark.parametrize(("client_name", "method", "request_fields"), _unimplemented())
def test_unimplemented_sample_answers_501(
    emulator: str, parent: str, client_name: str, method: str, request_fields: dict[str, Any]
) -> None:
    # run_v2_generated_{jobs,executions,tasks,worker_pools,instances,builds}_*_sync.py
    with (
        gapic_client(getattr(run_v2, f"{client_name}Client"), emulator) as client,
        pytest.raises(exceptions.MethodNotImplemented) as refused,
    ):
        getattr(client, method)(request=_fill(request_fields, parent))
    assert refused.value.code == 501
    assert refused.value.response.json()["error"]["status"] == "UNIMPLEMENTED"
