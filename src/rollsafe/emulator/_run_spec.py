"""Cloud Run resources: services and revisions from requests, traffic, conditions.

Pure functions over ``google.cloud.run_v2`` messages; no I/O. The reconciler calls them.
Names follow Cloud Run: ``latest_*_revision`` and ``Revision.name`` are full resource names,
traffic targets and statuses name revisions by their short id.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from google.cloud import run_v2
from google.protobuf import field_mask_pb2  # type: ignore[import-untyped]

from rollsafe.emulator._google import GoogleError, invalid_argument
from rollsafe.emulator._instance import (
    DEFAULT_PROBE_SECONDS,
    InstanceSpec,
    ProbeSpec,
    SecretEnv,
)

__all__ = [
    "CREATOR",
    "LATEST",
    "REVISION_TYPE",
    "SETTABLE_FIELDS",
    "SPEC_FIELDS",
    "STATUS_FIELDS",
    "UNSPECIFIED",
    "Routing",
    "aborted",
    "condition",
    "container_name",
    "copy_fields",
    "default_probes",
    "ingress_index",
    "instance_spec",
    "mark_reconciling",
    "new_etag",
    "new_revision",
    "new_service",
    "next_generation",
    "parse_location",
    "parse_name",
    "resolve_traffic",
    "revision_id",
]

#: who the emulator says created and modified resources (Cloud Run puts the caller's email)
CREATOR = "rollsafe-emulator@localhost"
#: fields a client sets on a Service; everything else is output only
SPEC_FIELDS = (
    "description",
    "labels",
    "annotations",
    "client",
    "client_version",
    "ingress",
    "launch_stage",
    "binary_authorization",
    "template",
    "traffic",
    "scaling",
    "invoker_iam_disabled",
    "default_uri_disabled",
    "custom_audiences",
)
#: what reconciling writes on a service
STATUS_FIELDS = (
    "observed_generation",
    "terminal_condition",
    "conditions",
    "latest_ready_revision",
    "latest_created_revision",
    "traffic_statuses",
    "uri",
    "urls",
    "reconciling",
)
#: the spec fields this version of ``run_v2`` knows
SETTABLE_FIELDS = [f for f in SPEC_FIELDS if f in run_v2.Service.pb().DESCRIPTOR.fields_by_name]
#: Cloud Run's defaults for the fields of a probe a container declares
PROBE_DEFAULTS = {"period_seconds": 10, "timeout_seconds": 1, "failure_threshold": 3}

_LOCATION = re.compile(r"^projects/([^/]+)/locations/([^/]+)$")
_Type = run_v2.TrafficTargetAllocationType
LATEST = _Type(_Type.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST)
REVISION_TYPE = _Type(_Type.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION)
UNSPECIFIED = _Type(_Type.TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED)


def aborted(message: str) -> GoogleError:
    """409 ABORTED: an etag that does not match (AIP-154)."""
    return GoogleError(409, "ABORTED", message)


def parse_location(parent: str) -> tuple[str, str]:
    """``projects/P/locations/L`` -> (P, L)."""
    match = _LOCATION.match(parent)
    if match is None:
        raise invalid_argument(f"invalid parent {parent!r}: expected projects/*/locations/*")
    return match.group(1), match.group(2)


def parse_name(name: str) -> tuple[str, str, str]:
    """``projects/P/locations/L/services/S`` -> (P, L, S)."""
    parent, sep, service_id = name.rpartition("/services/")
    if not sep or not service_id or "/" in service_id:
        raise invalid_argument(f"invalid service name {name!r}")
    project, location = parse_location(parent)
    return project, location, service_id


def revision_id(service_id: str, generation: int) -> str:
    """``SERVICE-00002-xyz`` as Cloud Run names revisions."""
    suffix = "".join(secrets.choice(string.ascii_lowercase) for _ in range(3))
    return f"{service_id}-{generation:05d}-{suffix}"


def new_etag(uid: str, generation: int) -> str:
    digest = hashlib.sha256(f"{uid}/{generation}".encode()).hexdigest()[:24]
    return f'"{digest}"'


def condition(
    type_: str,
    state: int,
    message: str = "",
    *,
    when: datetime | None = None,
) -> run_v2.Condition:
    failed = state == run_v2.Condition.State.CONDITION_FAILED
    return run_v2.Condition(
        type_=type_,
        state=state,
        message=message,
        last_transition_time=when or datetime.now(UTC),
        severity=run_v2.Condition.Severity.ERROR if failed else None,
        reason=run_v2.Condition.CommonReason.REVISION_FAILED if failed else None,
    )


def new_revision(service: run_v2.Service, rid: str, now: datetime) -> run_v2.Revision:
    """The Revision a service's template makes, not ready yet."""
    template = service.template
    project, _, service_id = parse_name(service.name)
    name = f"{service.name}/revisions/{rid}"
    uid = str(uuid.uuid4())
    pending = run_v2.Condition.State.CONDITION_RECONCILING
    return run_v2.Revision(
        name=name,
        uid=uid,
        generation=1,
        labels=dict(template.labels),
        annotations=dict(template.annotations),
        create_time=now,
        update_time=now,
        launch_stage=service.launch_stage,
        service=service.name,
        scaling=template.scaling,
        vpc_access=template.vpc_access,
        max_instance_request_concurrency=template.max_instance_request_concurrency,
        timeout=template.timeout,
        service_account=template.service_account,
        containers=list(template.containers),
        volumes=list(template.volumes),
        execution_environment=template.execution_environment,
        encryption_key=template.encryption_key,
        session_affinity=template.session_affinity,
        reconciling=True,
        conditions=[
            condition("Ready", pending, when=now),
            condition("ContainerHealthy", pending, when=now),
        ],
        observed_generation=1,
        log_uri=(
            "https://console.cloud.google.com/logs/viewer?project="
            f"{project}&resource=cloud_run_revision/service_name/{service_id}/revision_name/{rid}"
        ),
        creator=CREATOR,
        etag=new_etag(uid, 1),
    )


def ingress_index(containers: list[run_v2.Container]) -> int:
    """The container that receives requests: the one declaring ports (else the first)."""
    return next((i for i, c in enumerate(containers) if c.ports), 0)


def container_port(container: run_v2.Container) -> int:
    return container.ports[0].container_port if container.ports else 8080


def container_name(service_id: str, container: run_v2.Container, index: int) -> str:
    """A container's name; Cloud Run names an unnamed one ``SERVICE-N``."""
    return container.name or f"{service_id}-{index + 1}"


def default_probes(service_id: str, template: run_v2.RevisionTemplate) -> None:
    """Fill in what Cloud Run fills in when it accepts a template.

    The ingress container without a startup probe gets Cloud Run's default TCP probe on its
    port (timeout 240 s, period 240 s, failure threshold 1); a declared probe gets the
    defaults of the fields it leaves out (period 10 s, timeout 1 s, failure threshold 3).
    Reading the service or the revision back shows them, as on Cloud Run.
    """
    if not template.containers:
        return
    containers = list(template.containers)
    for i, container in enumerate(containers):
        if "startup_probe" not in container:
            if i != ingress_index(containers):
                continue
            container.startup_probe = run_v2.Probe(
                tcp_socket=run_v2.TCPSocketAction(port=container_port(container)),
                timeout_seconds=DEFAULT_PROBE_SECONDS,
                period_seconds=DEFAULT_PROBE_SECONDS,
                failure_threshold=1,
            )
            continue
        probe = container.startup_probe
        for name, value in PROBE_DEFAULTS.items():
            if not getattr(probe, name):
                setattr(probe, name, value)
    template.containers = containers


def instance_spec(revision: run_v2.Revision) -> InstanceSpec:
    """How the supervisor runs a revision: its ingress container's command, env and probe."""
    project, location, service_id = parse_name(revision.service)
    rid = revision.name.rsplit("/", 1)[-1]
    containers = list(revision.containers)
    index = ingress_index(containers)
    container = containers[index] if containers else run_v2.Container()
    env: list[tuple[str, str]] = []
    refs: list[SecretEnv] = []
    for j, var in enumerate(container.env):
        if "value_source" in var:
            ref = var.value_source.secret_key_ref
            field_path = (
                f"spec.template.spec.containers[{index}].env[{j}].value_from.secret_key_ref.name"
            )
            refs.append(SecretEnv(var.name, ref.secret, ref.version or "latest", field_path))
        else:
            env.append((var.name, var.value))
    return InstanceSpec(
        project=project,
        location=location,
        service=service_id,
        revision=rid,
        name=revision.name,
        argv=(*container.command, *container.args),
        env=tuple(env),
        secrets=tuple(refs),
        working_dir=container.working_dir or None,
        probe=_probe(container),
        container=container_name(service_id, container, index),
        container_port=container_port(container),
    )


def _probe(container: run_v2.Container) -> ProbeSpec:
    """The container's startup probe; revisions stored before probes were defaulted get
    Cloud Run's default TCP probe."""
    if "startup_probe" not in container:
        return ProbeSpec()
    probe = container.startup_probe
    default = (
        "tcp_socket" in probe
        and probe.timeout_seconds == DEFAULT_PROBE_SECONDS
        and probe.period_seconds == DEFAULT_PROBE_SECONDS
        and probe.failure_threshold == 1
        and probe.initial_delay_seconds == 0
    )
    if "http_get" in probe:
        action = probe.http_get
        path: str | None = action.path or "/"
        port = action.port or None
        headers = tuple((h.name, h.value) for h in action.http_headers)
    else:
        path, port, headers = None, probe.tcp_socket.port or None, ()
    period = probe.period_seconds or PROBE_DEFAULTS["period_seconds"]
    return ProbeSpec(
        path=path,
        port=port,
        headers=headers,
        initial_delay=float(probe.initial_delay_seconds),
        period=float(period),
        timeout=float(probe.timeout_seconds or PROBE_DEFAULTS["timeout_seconds"]),
        failure_threshold=probe.failure_threshold or PROBE_DEFAULTS["failure_threshold"],
        default=default,
    )


@dataclass(frozen=True)
class Routing:
    """Where a service's traffic goes: the router's split and tags (full revision names),
    and the ``traffic_statuses`` to show (short ids, no URIs yet)."""

    split: list[tuple[str, int]]
    tags: dict[str, str]
    statuses: list[run_v2.TrafficTargetStatus]

    def revisions(self) -> set[str]:
        """Full names of the revisions that serve traffic or a tag."""
        return {name for name, percent in self.split if percent > 0} | set(self.tags.values())


def resolve_traffic(service: run_v2.Service) -> Routing:
    """LATEST means the latest ready revision; with none ready, nothing is routed (503)."""
    latest = service.latest_ready_revision.rsplit("/", 1)[-1]
    split: dict[str, int] = {}
    tags: dict[str, str] = {}
    statuses: list[run_v2.TrafficTargetStatus] = []
    complete = True
    for target in service.traffic:
        rid = latest if target.type_ == LATEST else target.revision
        statuses.append(
            run_v2.TrafficTargetStatus(
                type_=target.type_, revision=rid, percent=target.percent, tag=target.tag
            )
        )
        if not rid:
            complete = complete and target.percent == 0
            continue
        full = f"{service.name}/revisions/{rid}"
        if target.percent:
            split[full] = split.get(full, 0) + target.percent
        if target.tag:
            tags[target.tag] = full
    return Routing(list(split.items()) if complete else [], tags, statuses)


def new_service(name: str, body: run_v2.Service) -> run_v2.Service:
    """A service as first stored: the body's spec fields and fresh output fields."""
    service = run_v2.Service()
    copy_fields(body, service, SETTABLE_FIELDS)
    now = datetime.now(UTC)
    uid = str(uuid.uuid4())
    service.name = name
    service.uid = uid
    service.generation = 1
    service.create_time = now
    service.update_time = now
    service.creator = CREATOR
    service.last_modifier = CREATOR
    service.etag = new_etag(uid, 1)
    if not service.ingress:
        service.ingress = run_v2.IngressTraffic(run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL)
    mark_reconciling(service, now)
    return service


def copy_fields(
    source: run_v2.Service, target: run_v2.Service, paths: list[str] | tuple[str, ...]
) -> None:
    """Replace ``paths`` of ``target`` with those of ``source`` (absent there: cleared)."""
    mask = field_mask_pb2.FieldMask(paths=paths)
    mask.MergeMessage(
        run_v2.Service.pb(source),
        run_v2.Service.pb(target),
        replace_message_field=True,
        replace_repeated_field=True,
    )


def mark_reconciling(service: run_v2.Service, now: datetime) -> None:
    """A spec change was accepted: the service reconciles until its operation finishes."""
    state = run_v2.Condition.State.CONDITION_RECONCILING
    service.reconciling = True
    service.terminal_condition = condition("Ready", state, when=now)


def next_generation(
    current: run_v2.Service, wanted: run_v2.Service, paths: list[str] | tuple[str, ...]
) -> run_v2.Service:
    """``current`` with ``paths`` taken from ``wanted``, as its next generation: a new etag,
    update time and modifier, and Reconciling until its operation finishes. Both the v2
    update and the Knative v1 replace go through here, so they stamp a change alike."""
    service: run_v2.Service = run_v2.Service.deserialize(run_v2.Service.serialize(current))
    copy_fields(wanted, service, paths)
    now = datetime.now(UTC)
    service.generation = current.generation + 1
    service.update_time = now
    service.last_modifier = CREATOR
    service.etag = new_etag(service.uid, service.generation)
    mark_reconciling(service, now)
    return service
