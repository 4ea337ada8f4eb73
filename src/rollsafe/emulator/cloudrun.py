"""Cloud Run Admin API v2 routes: services, revisions and their long-running operations.

Paths and shapes are those of ``google.cloud.run_v2``'s REST transport. Changes to a service
answer a pending ``Operation`` at once (its metadata is the Service) and finish in the
background (see ``_reconcile``); ``operations/{id}`` reports pending, then ``done`` with the
Service as ``response`` or an ``error`` (code 9 FAILED_PRECONDITION when the new revision
did not start, with Cloud Run's message, its exit code and its last log lines).

Emulator specifics: the container's ``command`` + ``args`` run locally (the image is
ignored), ``${PORT}``/``$PORT`` in them are expanded, and service URLs are loopback ports of
the router. An ``etag`` that does not match is 409 ABORTED, as AIP-154 asks.
"""

from __future__ import annotations

import os

from google.cloud import run_v2
from google.longrunning import operations_pb2  # type: ignore[import-untyped]
from google.protobuf import json_format  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rollsafe.emulator import _run_iam
from rollsafe.emulator._google import (
    already_exists,
    invalid_argument,
    message_response,
    not_found,
    parse_message,
    unimplemented,
    wants_int_enums,
)
from rollsafe.emulator._reconcile import Reconciler
from rollsafe.emulator._request_log import RequestLog
from rollsafe.emulator._run_spec import (
    aborted,
    new_service,
    next_generation,
    parse_name,
)
from rollsafe.emulator._run_store import RunStore, page_size
from rollsafe.emulator._run_validate import check_service, update_paths, validate_service_id
from rollsafe.emulator.router import Router
from rollsafe.emulator.state import EmulatorState
from rollsafe.emulator.supervisor import SecretResolver, Supervisor

__all__ = [
    "DEFAULT_IDLE_GRACE",
    "EXTENSION",
    "IDLE_GRACE_ENV",
    "reconciler",
    "routes",
    "shutdown",
    "startup",
]

#: key of the ``Reconciler`` in ``EmulatorState.extensions``
EXTENSION = "cloudrun"
REQUEST_LOG = "cloudrun.request_log"
_BASE = "/v2/projects/{project}/locations/{location}"
#: seconds before the instance of a revision that lost its traffic and tags is stopped
DEFAULT_IDLE_GRACE = 30.0
IDLE_GRACE_ENV = "ROLLSAFE_EMULATOR_IDLE_GRACE"
_WAIT_DEFAULT = 60.0
_WAIT_MAX = 600.0


def reconciler(state: EmulatorState) -> Reconciler:
    """The running emulator's Cloud Run reconciler (created by ``startup``)."""
    found = state.extensions.get(EXTENSION)
    if not isinstance(found, Reconciler):
        raise RuntimeError("the Cloud Run API has not started")
    return found


def _secret_resolver(state: EmulatorState) -> SecretResolver:
    def resolve(project: str, secret: str, version: str) -> bytes:
        # imported late: the Secret Manager API is its own module and may be absent
        from rollsafe.emulator import secretmanager

        resolver = getattr(secretmanager, "resolve_secret_env", None)
        if resolver is None:
            raise RuntimeError("Secret Manager is not available in this emulator")
        payload: bytes = resolver(state, project, secret, version)
        return payload

    return resolve


def _idle_grace() -> float:
    raw = os.environ.get(IDLE_GRACE_ENV, "")
    try:
        return float(raw) if raw else DEFAULT_IDLE_GRACE
    except ValueError:
        return DEFAULT_IDLE_GRACE


async def startup(state: EmulatorState) -> None:
    """Create the supervisor and router; restore services and restart their revisions."""
    supervisor = Supervisor(state, _secret_resolver(state))
    # every request through a service URL is checked for an ID token and logged
    request_log = RequestLog(state.logs)
    state.extensions[REQUEST_LOG] = request_log
    router = Router(
        supervisor.port, access=_run_iam.ServiceAccess(state), request_log=request_log.add
    )
    grace = _idle_grace()
    reconciler_ = Reconciler(state, RunStore(state.db), supervisor, router, idle_grace=grace)
    state.extensions[EXTENSION] = reconciler_
    await reconciler_.restore()


async def shutdown(state: EmulatorState) -> None:
    """Stop every revision process (SIGTERM, then SIGKILL after 5 s) and the router."""
    found = state.extensions.pop(EXTENSION, None)
    if isinstance(found, Reconciler):
        await found.close()
    request_log = state.extensions.pop(REQUEST_LOG, None)
    if isinstance(request_log, RequestLog):
        await request_log.close()


# -- helpers ----------------------------------------------------------------------------


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("true", "1")


def _int(request: Request, name: str) -> int:
    raw = request.query_params.get(name, "0") or "0"
    try:
        return int(raw)
    except ValueError:
        raise invalid_argument(f"{name} must be an integer, got {raw!r}") from None


def _operation_response(operation: operations_pb2.Operation, request: Request) -> Response:
    body = json_format.MessageToDict(operation, use_integers_for_enums=wants_int_enums(request))
    return JSONResponse(body)


def _service_missing(name: str) -> Exception:
    project, location, service_id = parse_name(name)
    return not_found(
        f"Resource '{service_id}' of kind 'SERVICE' in region '{location}' in project "
        f"'{project}' does not exist."
    )


def _names(request: Request) -> tuple[str, str]:
    """(parent, service name) from the path."""
    params = request.path_params
    parent = f"projects/{params['project']}/locations/{params['location']}"
    return parent, f"{parent}/services/{params.get('service', '')}"


def _start(
    rec: Reconciler,
    request: Request,
    service: run_v2.Service,
) -> Response:
    """Store the service and answer the pending operation that reconciles it."""
    parent = service.name.rsplit("/services/", 1)[0]
    if _flag(request, "validateOnly"):
        name = rec.new_operation(parent, service)
        return _operation_response(rec.finish(name, service), request)
    rec.store.put_service(service)
    name = rec.new_operation(parent, service)
    rec.spawn(rec.reconcile(service.name, name))
    operation = rec.store.get_operation(name)
    assert operation is not None
    return _operation_response(operation, request)


class _Api:
    """The request handlers, bound to one emulator's state."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    @property
    def rec(self) -> Reconciler:
        return reconciler(self.state)

    # -- services ------------------------------------------------------------------------

    async def services(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.create_service(request)
        parent, _ = _names(request)
        page = self.rec.store.list_services(
            parent, page_size(_int(request, "pageSize")), request.query_params.get("pageToken", "")
        )
        reply = run_v2.ListServicesResponse(
            services=page.items, next_page_token=page.next_page_token
        )
        return message_response(reply, request)

    async def create_service(self, request: Request) -> Response:
        parent, _ = _names(request)
        service_id = request.query_params.get("serviceId", "")
        validate_service_id(service_id)
        body = parse_message(run_v2.Service, await request.body())
        rec = self.rec
        name = f"{parent}/services/{service_id}"
        # no await from here to the store: two creates of one name cannot interleave
        if rec.store.get_service(name) is not None:
            raise already_exists(f"Resource '{service_id}' already exists.")
        service = new_service(name, body)
        check_service(service, rec.store)
        if not _flag(request, "validateOnly"):
            _run_iam.policies(self.state).delete(name)  # a new service starts private
        return _start(rec, request, service)

    async def service(self, request: Request) -> Response:
        service_id = request.path_params["service"]
        if ":" in service_id:
            return await self.iam(request)
        if request.method == "POST":
            raise unimplemented("POST", request.url.path)
        _, name = _names(request)
        parse_name(name)
        if request.method == "PATCH":
            return await self.update_service(request, name)
        current = self.rec.store.get_service(name)
        if current is None:
            raise _service_missing(name)
        if request.method == "DELETE":
            return self.delete_service(request, current)
        return message_response(current, request)

    async def update_service(self, request: Request, name: str) -> Response:
        body = parse_message(run_v2.Service, await request.body())
        paths = update_paths(request.query_params.get("updateMask"))
        rec = self.rec
        current = rec.store.get_service(name)
        if current is None:
            if not _flag(request, "allowMissing"):
                raise _service_missing(name)
            service = new_service(name, body)
            check_service(service, rec.store)
            if not _flag(request, "validateOnly"):
                _run_iam.policies(self.state).delete(name)  # a new service starts private
            return _start(rec, request, service)
        if body.etag and body.etag != current.etag:
            raise aborted(
                f"The etag {body.etag} does not match the service's current etag {current.etag}:"
                " it changed since it was read."
            )
        service = next_generation(current, body, paths)
        check_service(service, rec.store)
        return _start(rec, request, service)

    def delete_service(self, request: Request, current: run_v2.Service) -> Response:
        etag = request.query_params.get("etag", "")
        if etag and etag != current.etag:
            raise aborted(f"The etag {etag} does not match the service's current etag.")
        rec = self.rec
        parent = current.name.rsplit("/services/", 1)[0]
        name = rec.new_operation(parent, current)
        if _flag(request, "validateOnly"):
            return _operation_response(rec.finish(name, current), request)
        rec.spawn(rec.delete_service(current, name))
        operation = rec.store.get_operation(name)
        assert operation is not None
        return _operation_response(operation, request)

    async def iam(self, request: Request) -> Response:
        """``:getIamPolicy`` / ``:setIamPolicy`` / ``:testIamPermissions`` (see ``_run_iam``)."""
        _, name = _names(request)
        name, _, method = name.partition(":")
        exists = self.rec.store.get_service(name) is not None
        return await _run_iam.handle(request, self.state, name, method, exists)

    # -- revisions -----------------------------------------------------------------------

    async def revisions(self, request: Request) -> Response:
        _, service = _names(request)
        store = self.rec.store
        if store.get_service(service) is None:
            raise _service_missing(service)
        page = store.list_revisions(
            service, page_size(_int(request, "pageSize")), request.query_params.get("pageToken", "")
        )
        reply = run_v2.ListRevisionsResponse(
            revisions=page.items, next_page_token=page.next_page_token
        )
        return message_response(reply, request)

    async def revision(self, request: Request) -> Response:
        _, service = _names(request)
        rid = request.path_params["revision"]
        name = f"{service}/revisions/{rid}"
        rec = self.rec
        revision = rec.store.get_revision(name)
        if revision is None:
            project, location, _ = parse_name(service)
            raise not_found(
                f"Resource '{rid}' of kind 'REVISION' in region '{location}' in project "
                f"'{project}' does not exist."
            )
        if request.method == "GET":
            return message_response(revision, request)
        etag = request.query_params.get("etag", "")
        if etag and etag != revision.etag:
            raise aborted(f"The etag {etag} does not match the revision's current etag.")
        if not _flag(request, "validateOnly"):
            await rec.delete_revision(revision)
        parent = service.rsplit("/services/", 1)[0]
        operation = rec.finish(rec.new_operation(parent, revision), revision)
        return _operation_response(operation, request)

    # -- operations ----------------------------------------------------------------------

    async def operations(self, request: Request) -> Response:
        parent, _ = _names(request)
        page = self.rec.store.list_operations(
            parent, page_size(_int(request, "pageSize")), request.query_params.get("pageToken", "")
        )
        reply = operations_pb2.ListOperationsResponse(
            operations=page.items, next_page_token=page.next_page_token
        )
        body = json_format.MessageToDict(reply, use_integers_for_enums=wants_int_enums(request))
        return JSONResponse(body)

    async def operation(self, request: Request) -> Response:
        parent, _ = _names(request)
        op_id, _, method = request.path_params["operation"].partition(":")
        name = f"{parent}/operations/{op_id}"
        rec = self.rec
        if method == "wait" and request.method == "POST":
            await rec.wait(name, _wait_timeout(await request.body()))
        elif method or request.method == "POST":
            raise unimplemented(request.method, request.url.path)
        if request.method == "DELETE":
            if not rec.store.delete_operation(name):
                raise not_found(f"Operation '{name}' not found.")
            return JSONResponse({})
        operation = rec.store.get_operation(name)
        if operation is None:
            raise not_found(f"Operation '{name}' not found.")
        return _operation_response(operation, request)


def _wait_timeout(body: bytes) -> float:
    request = operations_pb2.WaitOperationRequest()
    if body.strip():
        try:
            json_format.Parse(body, request, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise invalid_argument(f"invalid WaitOperation body: {exc}") from None
    if not request.HasField("timeout"):
        return _WAIT_DEFAULT
    seconds = float(request.timeout.ToTimedelta().total_seconds())
    return min(max(seconds, 0.0), _WAIT_MAX)


def routes(state: EmulatorState) -> list[BaseRoute]:
    """The Cloud Run Admin API v2 routes (REST paths of ``run_v2``'s transports)."""
    api = _Api(state)
    return [
        Route(f"{_BASE}/services", api.services, methods=["GET", "POST"]),
        Route(
            f"{_BASE}/services/{{service}}", api.service, methods=["GET", "PATCH", "DELETE", "POST"]
        ),
        Route(f"{_BASE}/services/{{service}}/revisions", api.revisions, methods=["GET"]),
        Route(
            f"{_BASE}/services/{{service}}/revisions/{{revision}}",
            api.revision,
            methods=["GET", "DELETE"],
        ),
        Route(f"{_BASE}/operations", api.operations, methods=["GET"]),
        Route(
            f"{_BASE}/operations/{{operation}}", api.operation, methods=["GET", "POST", "DELETE"]
        ),
    ]
