"""Cloud Run Admin API v1 (Knative serving) routes: what ``gcloud run`` calls.

``gcloud run services list|describe|update|update-traffic|delete`` and ``gcloud run
revisions list|describe|delete`` speak this API on a regional host
(``REGION-run.googleapis.com``; here ``REGION-127.0.0.1:PORT``, see ``_hosts``), and
``services list`` without ``--region`` the global ``/v1/projects/P/locations/-/services``.
The resources are the v2 API's (``cloudrun`` module): one store, one reconciler. A PUT
(replaceService) is a v2 update of labels, annotations, template and traffic, so a changed
template makes a new revision, and it answers the Service at once with every condition
``Unknown`` until reconciling ends, as Cloud Run does; gcloud then polls GET until
``observedGeneration`` catches up and ``Ready`` is ``True`` or ``False``.

Errors have Google's JSON shape (``{"error": {"code", "message", "status"}}``), which is what
Cloud Run's v1 endpoint answers and what gcloud reads. ``metadata.namespace`` is the project
id (Cloud Run answers the project number; the emulator has no numbers).
"""

from __future__ import annotations

import json
from typing import Any

from google.cloud import run_v2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rollsafe.emulator import _run_iam
from rollsafe.emulator._google import GoogleError, invalid_argument, not_found, unimplemented
from rollsafe.emulator._hosts import REGION_KEY
from rollsafe.emulator._knative import (
    API_VERSION,
    LOCATION_LABEL,
    revision_json,
    service_json,
    service_spec,
)
from rollsafe.emulator._reconcile import Reconciler
from rollsafe.emulator._run_spec import (
    SETTABLE_FIELDS,
    aborted,
    next_generation,
    parse_name,
)
from rollsafe.emulator._run_store import MAX_PAGE_SIZE
from rollsafe.emulator._run_validate import check_service
from rollsafe.emulator.cloudrun import reconciler
from rollsafe.emulator.state import EmulatorState

__all__ = ["routes"]

_NS = f"/apis/{API_VERSION}/namespaces/{{namespace}}"
#: what a replaceService changes: the rest of a v2 Service has no v1 form here
_REPLACED: list[str] = [
    f for f in ("labels", "annotations", "template", "traffic") if f in SETTABLE_FIELDS
]


def _region(request: Request) -> str:
    """The region of the regional host the request came to; the namespaced API has no other."""
    region = getattr(request.state, REGION_KEY, None)
    if not region:
        host = request.headers.get("host", "")
        raise invalid_argument(
            f"The Knative serving API is served on regional endpoints only: call "
            f"http://REGION-{host}/ (gcloud does, with `rollsafe emulator gcloud-config`)."
        )
    return str(region)


def _missing(kind: str, name: str, region: str, project: str) -> GoogleError:
    return not_found(
        f"Resource '{name}' of kind '{kind}' in region '{region}' in project '{project}' "
        "does not exist."
    )


def _list_body(kind: str, items: list[dict[str, Any]], path: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"selfLink": path},
        "items": items,
    }


def _deleted(kind: str, name: str, uid: str) -> dict[str, Any]:
    """The Kubernetes ``Status`` a delete answers."""
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Success",
        "details": {"name": name, "group": API_VERSION.split("/")[0], "kind": kind, "uid": uid},
    }


def _label_selector(request: Request) -> dict[str, str]:
    """``labelSelector=a=b,c=d`` (equality only, as gcloud sends it)."""
    raw = request.query_params.get("labelSelector", "")
    selector: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or key.strip().endswith("!"):
            raise invalid_argument(f"labelSelector: unsupported requirement {part!r}")
        selector[key.strip()] = value.strip().lstrip("=")
    return selector


def _matches(obj: dict[str, Any], selector: dict[str, str]) -> bool:
    labels = obj.get("metadata", {}).get("labels", {})
    return all(labels.get(k) == v for k, v in selector.items())


def _list(request: Request, kind: str, items: list[dict[str, Any]]) -> Response:
    """A v1 ``kind`` list of the ``items`` the request's labelSelector matches (one page:
    gcloud sends no limit, and the v2 API's largest page bounds it)."""
    selector = _label_selector(request)
    matching = [item for item in items if _matches(item, selector)][:MAX_PAGE_SIZE]
    return JSONResponse(_list_body(kind, matching, request.url.path))


class _Api:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    @property
    def rec(self) -> Reconciler:
        return reconciler(self.state)

    def _services(self, project: str, region: str) -> list[run_v2.Service]:
        """Every service of ``project`` in ``region`` (``-``: all regions)."""
        found = []
        for service in self.rec.store.all_services():
            p, location, _ = parse_name(service.name)
            if p == project and region in ("-", location):
                found.append(service)
        return found

    # -- services ------------------------------------------------------------------------

    async def list_services(self, request: Request) -> Response:
        project = request.path_params["namespace"]
        services = self._services(project, _region(request))
        return _list(request, "ServiceList", [service_json(s) for s in services])

    async def list_global(self, request: Request) -> Response:
        """``projects.locations.services.list``: one region, or ``-`` for all of them."""
        params = request.path_params
        services = self._services(params["project"], params["location"])
        return _list(request, "ServiceList", [service_json(s) for s in services])

    async def service(self, request: Request) -> Response:
        project = request.path_params["namespace"]
        service_id = request.path_params["service"]
        region = _region(request)
        name = f"projects/{project}/locations/{region}/services/{service_id}"
        current = self.rec.store.get_service(name)
        if current is None:
            raise _missing("SERVICE", service_id, region, project)
        if request.method == "PUT":
            return await self._replace(request, current)
        if request.method == "DELETE":
            rec = self.rec
            parent = current.name.rsplit("/services/", 1)[0]
            # answered once it is gone, so the next gcloud command no longer finds it
            await rec.delete_service(current, rec.new_operation(parent, current))
            return JSONResponse(_deleted("services", service_id, current.uid))
        return JSONResponse(service_json(current))

    async def _replace(self, request: Request, current: run_v2.Service) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            raise invalid_argument("the body of the Service is not valid JSON") from None
        if not isinstance(body, dict):
            raise invalid_argument("the body of the Service must be a JSON object")
        if body.get("apiVersion", API_VERSION) != API_VERSION or body.get("kind") not in (
            None,
            "Service",
        ):
            raise invalid_argument(
                f"apiVersion/kind must be {API_VERSION}/Service, got "
                f"{body.get('apiVersion')}/{body.get('kind')}"
            )
        found = body.get("metadata")
        meta: dict[str, Any] = found if isinstance(found, dict) else {}
        _, location, service_id = parse_name(current.name)
        if meta.get("name", service_id) != service_id:
            raise invalid_argument(
                f"metadata.name '{meta.get('name')}' does not match the service '{service_id}' "
                "of the request path."
            )
        labels = meta.get("labels") or {}
        if isinstance(labels, dict) and labels.get(LOCATION_LABEL, location) != location:
            raise invalid_argument(
                f"metadata.labels.{LOCATION_LABEL} '{labels[LOCATION_LABEL]}' does not match "
                f"the region '{location}' of the endpoint."
            )
        version = meta.get("resourceVersion")
        if version and version != current.etag.strip('"'):
            raise aborted(
                f"Operation cannot be fulfilled on services.{API_VERSION.split('/')[0]} "
                f'"{service_id}": the object has been modified; please apply your changes to '
                "the latest version and try again"
            )
        rec = self.rec
        service = next_generation(current, service_spec(body, current), _REPLACED)
        check_service(service, rec.store)
        rec.store.put_service(service)
        parent = service.name.rsplit("/services/", 1)[0]
        operation = rec.new_operation(parent, service)
        rec.spawn(rec.reconcile(service.name, operation))
        return JSONResponse(service_json(service))

    async def located_service(self, request: Request) -> Response:
        """``projects.locations.services`` get, and its IAM methods (``S:getIamPolicy`` ...,
        what ``gcloud run services add-iam-policy-binding`` calls), on the v2 state."""
        params = request.path_params
        service_id, _, method = params["service"].partition(":")
        name = f"projects/{params['project']}/locations/{params['location']}/services/{service_id}"
        current = self.rec.store.get_service(name)
        if method:
            return await _run_iam.handle(request, self.state, name, method, current is not None)
        if request.method != "GET":
            raise unimplemented(request.method, request.url.path)
        if current is None:
            raise _missing("SERVICE", service_id, params["location"], params["project"])
        return JSONResponse(service_json(current))

    # -- revisions -----------------------------------------------------------------------

    def _revisions(self, project: str, region: str) -> list[dict[str, Any]]:
        store = self.rec.store
        items: list[dict[str, Any]] = []
        for service in self._services(project, region):
            serving = {
                s.revision for s in service.traffic_statuses if s.revision and (s.percent or s.tag)
            }
            revisions = store.service_revisions(service.name)
            for generation, revision in enumerate(revisions, start=1):
                rid = revision.name.rsplit("/", 1)[-1]
                items.append(revision_json(revision, generation, active=rid in serving))
        # newest first, as Cloud Run lists them
        items.sort(key=lambda r: str(r["metadata"].get("creationTimestamp")), reverse=True)
        return items

    async def list_revisions(self, request: Request) -> Response:
        project = request.path_params["namespace"]
        return _list(request, "RevisionList", self._revisions(project, _region(request)))

    async def revision(self, request: Request) -> Response:
        project = request.path_params["namespace"]
        rid = request.path_params["revision"]
        region = _region(request)
        for item in self._revisions(project, region):
            if item["metadata"]["name"] != rid:
                continue
            if request.method == "GET":
                return JSONResponse(item)
            service_id = item["metadata"]["labels"]["serving.knative.dev/service"]
            name = f"projects/{project}/locations/{region}/services/{service_id}/revisions/{rid}"
            revision = self.rec.store.get_revision(name)
            if revision is not None:
                await self.rec.delete_revision(revision)
            return JSONResponse(_deleted("revisions", rid, item["metadata"]["uid"]))
        raise _missing("REVISION", rid, region, project)


def routes(state: EmulatorState) -> list[BaseRoute]:
    """The Knative serving v1 routes gcloud uses, and the global services list."""
    api = _Api(state)
    return [
        Route(f"{_NS}/services", api.list_services, methods=["GET"]),
        Route(f"{_NS}/services/{{service}}", api.service, methods=["GET", "PUT", "DELETE"]),
        Route(f"{_NS}/revisions", api.list_revisions, methods=["GET"]),
        Route(f"{_NS}/revisions/{{revision}}", api.revision, methods=["GET", "DELETE"]),
        Route(
            "/v1/projects/{project}/locations/{location}/services",
            api.list_global,
            methods=["GET"],
        ),
        Route(
            "/v1/projects/{project}/locations/{location}/services/{service}",
            api.located_service,
            methods=["GET", "POST"],
        ),
    ]
