"""The Cloud Run control loop: revisions from templates, readiness, traffic, conditions.

Every change to a service is answered at once with a pending long-running operation and
finished by a background task, one service at a time (a lock per service). A new revision
is made only when the template changed; it must pass its startup probe before it can take
traffic. When it fails, the operation fails with the revision's message, the service keeps
its previous traffic and ``latest_ready_revision``, and ``terminal_condition`` says why, in
Cloud Run's own words (``Revision 'X' is not ready and cannot serve traffic. ...``); the
revision's Ready condition carries the same text without that first sentence. Neither quotes
the application: its output is in the revision's logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from google.cloud import run_v2
from google.longrunning import operations_pb2  # type: ignore[import-untyped]
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped]

from rollsafe.emulator import _run_iam
from rollsafe.emulator._google import GoogleError
from rollsafe.emulator._run_spec import (
    LATEST,
    STATUS_FIELDS,
    condition,
    copy_fields,
    instance_spec,
    new_revision,
    parse_name,
    resolve_traffic,
    revision_id,
)
from rollsafe.emulator._run_store import RunStore, ServicePorts, template_key
from rollsafe.emulator.logs import SEVERITIES
from rollsafe.emulator.router import Router
from rollsafe.emulator.state import EmulatorState
from rollsafe.emulator.supervisor import SYSTEM_LOG, RevisionStartError, Supervisor

__all__ = ["Reconciler"]

logger = logging.getLogger("rollsafe.emulator.cloudrun")

_OK = run_v2.Condition.State.CONDITION_SUCCEEDED
_FAILED = run_v2.Condition.State.CONDITION_FAILED
_RECONCILING = run_v2.Condition.State.CONDITION_RECONCILING


def _now() -> datetime:
    return datetime.now(UTC)


class Reconciler:
    """Runs operations on services and keeps revisions, processes and routes in step."""

    def __init__(
        self,
        state: EmulatorState,
        store: RunStore,
        supervisor: Supervisor,
        router: Router,
        *,
        idle_grace: float = 30.0,
    ) -> None:
        self.state = state
        self.store = store
        self.supervisor = supervisor
        self.router = router
        self.idle_grace = idle_grace
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: dict[str, asyncio.Event] = {}
        self._idle: dict[str, asyncio.Task[None]] = {}

    # -- operations ----------------------------------------------------------------------

    def new_operation(self, parent: str, metadata: run_v2.Service | run_v2.Revision) -> str:
        """Store a pending operation under ``parent`` (projects/P/locations/L)."""
        operation = operations_pb2.Operation(name=f"{parent}/operations/{uuid.uuid4()}")
        operation.metadata.Pack(type(metadata).pb(metadata))
        self.store.put_operation(operation)
        name: str = operation.name
        self._done[name] = asyncio.Event()
        return name

    def finish(
        self, name: str, result: run_v2.Service | run_v2.Revision | GoogleError
    ) -> operations_pb2.Operation:
        """Mark an operation done with its response or error, and wake its waiters."""
        operation = self.store.get_operation(name) or operations_pb2.Operation(name=name)
        operation.done = True
        if isinstance(result, GoogleError):
            code = getattr(code_pb2, result.status, code_pb2.UNKNOWN)
            operation.error.CopyFrom(status_pb2.Status(code=code, message=result.message))
        else:
            operation.response.Pack(type(result).pb(result))
            operation.metadata.Pack(type(result).pb(result))
        self.store.put_operation(operation)
        event = self._done.pop(name, None)
        if event is not None:
            event.set()
        return operation

    async def wait(self, name: str, timeout: float) -> None:
        """Until the operation is done or ``timeout`` passed (``operations/*:wait``)."""
        event = self._done.get(name)
        if event is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background; the emulator's shutdown cancels it."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def lock(self, service: str) -> asyncio.Lock:
        return self._locks.setdefault(service, asyncio.Lock())

    # -- the control loop ----------------------------------------------------------------

    async def reconcile(self, name: str, operation: str) -> None:
        """Bring ``name`` to its stored spec and finish ``operation`` with the outcome."""
        try:
            async with self.lock(name):
                result = await self._reconcile(name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must fail the operation, not hang its pollers
            logger.exception("reconciling %s failed", name)
            result = GoogleError(500, "INTERNAL", f"the emulator failed: {exc}")
        self.finish(operation, result)

    async def _reconcile(self, name: str) -> run_v2.Service | GoogleError:
        service = self.store.get_service(name)
        if service is None:
            return GoogleError(404, "NOT_FOUND", f"Service '{name}' was deleted meanwhile.")
        try:
            if self._needs_revision(service):
                await self._deploy_revision(service)
            await self.route(service, start=True)
        except RevisionStartError as exc:
            return await self._fail(service, exc.message)
        now = _now()
        service.terminal_condition = condition("Ready", _OK, when=now)
        service.conditions = [
            condition("ConfigurationsReady", _OK, when=now),
            condition("RoutesReady", _OK, when=now),
        ]
        service.reconciling = False
        service.observed_generation = service.generation
        self._save(service)
        self._schedule_idle_stop(name)
        return service

    def _needs_revision(self, service: run_v2.Service) -> bool:
        wanted = template_key(service.template)
        if service.template.revision:
            name = f"{service.name}/revisions/{service.template.revision}"
            return self.store.revision_template(name) is None
        latest = service.latest_created_revision
        return not latest or self.store.revision_template(latest) != wanted

    async def _deploy_revision(self, service: run_v2.Service) -> None:
        """Create the template's revision and start it; raises RevisionStartError."""
        _, _, service_id = parse_name(service.name)
        rid = service.template.revision
        while not rid or self.store.get_revision(f"{service.name}/revisions/{rid}"):
            rid = revision_id(service_id, service.generation)
        now = _now()
        revision = new_revision(service, rid, now)
        self.store.put_revision(revision, template_key(service.template))
        service.latest_created_revision = revision.name
        self._save(service)
        try:
            await self.supervisor.start(instance_spec(revision))
        except RevisionStartError as exc:
            self._mark_revision(revision, exc.condition)
            raise
        self._mark_revision(revision, None)
        service.latest_ready_revision = revision.name

    def _mark_revision(self, revision: run_v2.Revision, failure: str | None) -> None:
        now = _now()
        state = _FAILED if failure else _OK
        revision.reconciling = False
        revision.update_time = now
        revision.conditions = [
            condition("Ready", state, failure or "", when=now),
            condition("ContainerHealthy", state, failure or "", when=now),
        ]
        self.store.put_revision(revision)

    async def _fail(self, service: run_v2.Service, message: str) -> GoogleError:
        """Keep traffic where it was (the last reconciled split); record the failure."""
        if service.traffic_statuses:
            service.traffic = [
                run_v2.TrafficTarget(
                    type_=status.type_,
                    revision="" if status.type_ == LATEST else status.revision,
                    percent=status.percent,
                    tag=status.tag,
                )
                for status in service.traffic_statuses
            ]
        with contextlib.suppress(RevisionStartError):
            await self.route(service, start=False)
        now = _now()
        service.terminal_condition = condition("Ready", _FAILED, message, when=now)
        service.conditions = [
            condition("ConfigurationsReady", _FAILED, message, when=now),
            condition("RoutesReady", _OK if service.latest_ready_revision else _FAILED, when=now),
        ]
        service.reconciling = False
        service.observed_generation = service.generation
        self._save(service)
        return GoogleError(400, "FAILED_PRECONDITION", message)

    def _save(self, service: run_v2.Service) -> None:
        """Store what reconciling found, without losing a spec stored meanwhile.

        A request may store a newer generation while this one reconciles (it waits for the
        lock, its operation queued): then only the status is written onto it, and it stays
        ``reconciling`` until its own operation runs.
        """
        stored = self.store.get_service(service.name)
        if stored is None:
            return  # deleted meanwhile
        if stored.generation != service.generation:
            copy_fields(service, stored, STATUS_FIELDS)
            stored.reconciling = True
            service = stored
        self.store.put_service(service)

    async def route(self, service: run_v2.Service, *, start: bool) -> None:
        """Point the router at the revisions the traffic names; record URLs on ``service``.

        With ``start``, revisions that serve traffic but have no instance (stopped while
        idle, or not restarted yet) are started first and must become ready.
        """
        routing = resolve_traffic(service)
        if start:
            for name in sorted(routing.revisions()):
                await self._ensure_running(name)
        ports = self.store.ports(service.name)
        preferred = {t: p for t, p in ports.tag_ports.items() if t in routing.tags}
        routes = await self.router.set_service(
            service.name, routing.split, routing.tags, port=ports.port, tag_ports=preferred
        )
        self.store.set_ports(service.name, ServicePorts(routes.port, routes.tag_ports))
        service.uri = routes.url
        service.urls = [routes.url]
        for status in routing.statuses:
            if status.tag:
                status.uri = routes.tag_urls.get(status.tag, "")
        service.traffic_statuses = routing.statuses

    async def _ensure_running(self, name: str) -> None:
        if name in self.supervisor.running():
            return
        revision = self.store.get_revision(name)
        if revision is None:
            rid = name.rsplit("/", 1)[-1]
            raise RevisionStartError(f"Revision '{rid}' does not exist.")
        await self.supervisor.start(instance_spec(revision))

    # -- idle revisions ------------------------------------------------------------------

    def _schedule_idle_stop(self, name: str) -> None:
        """Stop, after a grace period, instances of revisions nothing routes to."""
        previous = self._idle.pop(name, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(self._stop_idle(name))
        self._idle[name] = task
        task.add_done_callback(
            lambda done: self._idle.pop(name, None) if done is self._idle.get(name) else None
        )

    async def _stop_idle(self, name: str) -> None:
        await asyncio.sleep(self.idle_grace)
        async with self.lock(name):
            service = self.store.get_service(name)
            if service is None:
                return
            serving = resolve_traffic(service).revisions()
            busy = self.router.in_flight()
            prefix = f"{name}/revisions/"
            for running in self.supervisor.running():
                if running.startswith(prefix) and running not in serving and not busy.get(running):
                    await self.supervisor.stop(running)

    # -- deletion and restart --------------------------------------------------------------

    async def delete_service(self, service: run_v2.Service, operation: str) -> None:
        """Stop its instances, close its URLs, forget it; the operation answers the service."""
        async with self.lock(service.name):
            prefix = f"{service.name}/revisions/"
            for running in self.supervisor.running():
                if running.startswith(prefix):
                    await self.supervisor.stop(running)
            await self.router.remove_service(service.name)
            self.store.delete_service(service.name)
            _run_iam.policies(self.state).delete(service.name)
        service.delete_time = _now()
        service.reconciling = False
        self.finish(operation, service)

    async def delete_revision(self, revision: run_v2.Revision) -> None:
        """Stop and forget a revision; one that serves traffic or a tag cannot go (400)."""
        async with self.lock(revision.service):
            service = self.store.get_service(revision.service)
            rid = revision.name.rsplit("/", 1)[-1]
            if service is not None and (
                any(status.revision == rid for status in service.traffic_statuses)
                or any(target.revision == rid for target in service.traffic)
            ):
                raise GoogleError(
                    400,
                    "FAILED_PRECONDITION",
                    f"Revision {rid} is currently serving traffic and cannot be deleted. "
                    "Update the service's traffic so that it no longer names it.",
                )
            await self.supervisor.stop(revision.name)
            self.store.delete_revision(revision.name)

    async def restore(self) -> None:
        """After a restart: fail interrupted operations, re-open URLs, restart revisions."""
        for operation in self.store.pending_operations():
            self.finish(
                operation.name,
                GoogleError(409, "ABORTED", "The emulator stopped before the operation finished."),
            )
        for service in self.store.all_services():
            for revision in self.store.service_revisions(service.name):
                if revision.reconciling:
                    self._mark_revision(revision, "The emulator stopped while it was starting.")
            if service.reconciling:
                service.reconciling = False
                service.observed_generation = service.generation
            # the URLs answer at once (503 until an instance is ready), as before the stop
            await self.route(service, start=False)
            self.store.put_service(service)
            self.spawn(self._restart(service))

    async def _restart(self, service: run_v2.Service) -> None:
        async with self.lock(service.name):
            for name in sorted(resolve_traffic(service).revisions()):
                try:
                    await self._ensure_running(name)
                except RevisionStartError as exc:
                    project, location, service_id = parse_name(service.name)
                    self.state.logs.write_entry(
                        project=project,
                        location=location,
                        service=service_id,
                        revision=name.rsplit("/", 1)[-1],
                        log_name=f"projects/{project}/logs/{SYSTEM_LOG}",
                        severity=SEVERITIES["ERROR"],
                        timestamp=_now(),
                        text_payload=f"Not restarted after the emulator restarted: {exc.message}",
                    )

    async def close(self) -> None:
        """Cancel background work, stop every instance, close the router."""
        tasks = [*self._tasks, *self._idle.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.supervisor.close()
        await self.router.close()
