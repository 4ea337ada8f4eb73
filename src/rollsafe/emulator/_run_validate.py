"""Checks Cloud Run makes before it accepts a service: ids, templates, env, traffic.

Each failure is 400 INVALID_ARGUMENT naming the field (409 ALREADY_EXISTS for a revision
name reused with another template), raised before anything is stored.
"""

from __future__ import annotations

import re

from google.cloud import run_v2
from google.protobuf import field_mask_pb2  # type: ignore[import-untyped]

from rollsafe.emulator._google import GoogleError, already_exists, invalid_argument
from rollsafe.emulator._run_spec import (
    LATEST,
    PROBE_DEFAULTS,
    REVISION_TYPE,
    SETTABLE_FIELDS,
    UNSPECIFIED,
    default_probes,
    parse_name,
)
from rollsafe.emulator._run_store import RunStore, template_key

__all__ = [
    "RESERVED_ENV",
    "check_service",
    "conflict_if_renamed",
    "normalize_traffic",
    "update_paths",
    "validate_probe",
    "validate_service_id",
    "validate_template",
    "validate_traffic",
]

RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")
_ID = re.compile(r"^[a-z](?:[-a-z0-9]{0,47}[a-z0-9])?$")
_REVISION = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_TAG = re.compile(r"^[a-z](?:[-a-z0-9]{0,44}[a-z0-9])?$")


def validate_service_id(service_id: str) -> None:
    if not service_id:
        raise invalid_argument("service_id is required: set ?serviceId= on the create request")
    if not _ID.match(service_id):
        raise invalid_argument(
            f"service_id {service_id!r} is invalid: up to 49 lowercase letters, digits and "
            "hyphens, starting with a letter and not ending with a hyphen"
        )


def validate_template(service_id: str, template: run_v2.RevisionTemplate) -> None:
    """The checks Cloud Run makes on a template before it accepts a deploy."""
    if template.revision:
        if not template.revision.startswith(f"{service_id}-"):
            raise invalid_argument(
                f"template.revision: revision name {template.revision!r} must be prefixed "
                f"by the name of the enclosing service, '{service_id}-'"
            )
        if not _REVISION.match(template.revision):
            raise invalid_argument(f"template.revision: {template.revision!r} is not a valid name")
    if not template.containers:
        raise invalid_argument("template.containers: at least one container is required")
    with_ports = [c for c in template.containers if c.ports]
    if len(with_ports) > 1:
        raise invalid_argument("template.containers: only one container may declare ports")
    for i, container in enumerate(template.containers):
        where = f"template.containers[{i}]"
        for port in container.ports:
            if not 0 <= port.container_port <= 65535:
                raise invalid_argument(f"{where}.ports: {port.container_port} is not a port")
        reserved = [env.name for env in container.env if env.name in RESERVED_ENV]
        if reserved:
            raise invalid_argument(
                f"{where}.env: the following reserved env names were provided: "
                f"{', '.join(reserved)}. These values are automatically set by the system."
            )
        seen: set[str] = set()
        for j, env in enumerate(container.env):
            if not env.name:
                raise invalid_argument(f"{where}.env[{j}].name: required")
            if env.name in seen:
                raise invalid_argument(f"{where}.env: {env.name!r} is set more than once")
            seen.add(env.name)
            if "value_source" in env and not env.value_source.secret_key_ref.secret:
                raise invalid_argument(
                    f"{where}.env[{j}].value_source.secret_key_ref.secret: required"
                )
        if "startup_probe" in container:
            validate_probe(f"{where}.startup_probe", container.startup_probe)


#: the largest value Cloud Run accepts for a startup probe's delay and period
_STARTUP_MAX = 240


def validate_probe(where: str, probe: run_v2.Probe) -> None:
    """A startup probe's limits, as the Probe fields document them."""
    kinds = [kind for kind in ("http_get", "tcp_socket", "grpc") if kind in probe]
    if len(kinds) != 1:
        raise invalid_argument(
            f"{where}: exactly one of http_get, tcp_socket or grpc must be specified"
        )
    if kinds == ["grpc"]:
        raise GoogleError(
            501, "UNIMPLEMENTED", f"{where}.grpc: the emulator does not run gRPC probes"
        )
    if not 0 <= probe.initial_delay_seconds <= _STARTUP_MAX:
        raise invalid_argument(
            f"{where}.initial_delay_seconds: must be between 0 and {_STARTUP_MAX} for a "
            f"startup probe, got {probe.initial_delay_seconds}"
        )
    if probe.period_seconds and not 1 <= probe.period_seconds <= _STARTUP_MAX:
        raise invalid_argument(
            f"{where}.period_seconds: must be between 1 and {_STARTUP_MAX} for a startup "
            f"probe, got {probe.period_seconds}"
        )
    if probe.timeout_seconds and not 1 <= probe.timeout_seconds <= 3600:
        raise invalid_argument(
            f"{where}.timeout_seconds: must be between 1 and 3600, got {probe.timeout_seconds}"
        )
    period = probe.period_seconds or PROBE_DEFAULTS["period_seconds"]
    timeout = probe.timeout_seconds or PROBE_DEFAULTS["timeout_seconds"]
    if timeout > period:
        raise invalid_argument(
            f"{where}.timeout_seconds: must be less than or equal to period_seconds "
            f"({timeout} > {period})"
        )
    if probe.failure_threshold < 0:
        raise invalid_argument(
            f"{where}.failure_threshold: must be at least 1, got {probe.failure_threshold}"
        )
    action = probe.http_get if kinds == ["http_get"] else probe.tcp_socket
    if action.port and not 1 <= action.port <= 65535:
        raise invalid_argument(f"{where}.{kinds[0]}.port: {action.port} is not within 1-65535")
    if kinds == ["http_get"] and probe.http_get.path and not probe.http_get.path.startswith("/"):
        raise invalid_argument(f"{where}.http_get.path must start with '/'")


def normalize_traffic(service: run_v2.Service) -> None:
    """No traffic means 100% to LATEST; a target without a type is typed by its revision."""
    if not service.traffic:
        service.traffic = [run_v2.TrafficTarget(type_=LATEST, percent=100)]
    for target in service.traffic:
        if target.type_ == UNSPECIFIED:
            target.type_ = REVISION_TYPE if target.revision else LATEST


def validate_traffic(service: run_v2.Service, revisions: set[str]) -> None:
    """``revisions``: short ids a target may name (existing ones and the one being made)."""
    total = 0
    tags: set[str] = set()
    service_id = service.name.rsplit("/", 1)[-1]
    for i, target in enumerate(service.traffic):
        where = f"traffic[{i}]"
        if target.type_ == LATEST and target.revision:
            raise invalid_argument(f"{where}: a LATEST target must not name a revision")
        if target.type_ == REVISION_TYPE:
            if not target.revision:
                raise invalid_argument(f"{where}.revision: required for a REVISION target")
            if target.revision not in revisions:
                raise invalid_argument(
                    f"{where}.revision: Revision '{target.revision}' does not exist in "
                    f"service '{service_id}'"
                )
        if not 0 <= target.percent <= 100:
            raise invalid_argument(f"{where}.percent: {target.percent} is not within 0-100")
        total += target.percent
        if target.tag:
            if not _TAG.match(target.tag):
                raise invalid_argument(
                    f"{where}.tag: {target.tag!r} is invalid: lowercase letters, digits and "
                    "hyphens, starting with a letter"
                )
            if target.tag in tags:
                raise invalid_argument(f"traffic: tag '{target.tag}' is used more than once")
            tags.add(target.tag)
    if total != 100:
        raise invalid_argument(
            f"traffic: the percents of all targets must sum to 100, but they sum to {total}"
        )


def conflict_if_renamed(existing_template: str | None, new_template: str, revision: str) -> None:
    """An explicit revision name that exists with another template is a conflict."""
    if existing_template is not None and existing_template != new_template:
        raise already_exists(
            f"Revision named '{revision}' with different configuration already exists."
        )


def update_paths(raw: str | None) -> list[str]:
    """``updateMask`` (camelCase in REST) as field paths; none means every spec field."""
    if not raw:
        return SETTABLE_FIELDS
    mask = field_mask_pb2.FieldMask()
    try:
        mask.FromJsonString(raw)
    except ValueError as exc:
        raise invalid_argument(f"invalid update_mask {raw!r}: {exc}") from None
    paths = []
    for path in mask.paths:
        if path.split(".", 1)[0] not in SETTABLE_FIELDS:
            raise invalid_argument(f"update_mask: {path!r} is not a field a client may set")
        paths.append(path)
    return paths


def check_service(service: run_v2.Service, store: RunStore) -> None:
    """Validate template and traffic against the revisions the service has or will have."""
    _, _, service_id = parse_name(service.name)
    validate_template(service_id, service.template)
    default_probes(service_id, service.template)
    normalize_traffic(service)
    known = {r.name.rsplit("/", 1)[-1] for r in store.service_revisions(service.name)}
    wanted = service.template.revision
    if wanted:
        existing = store.revision_template(f"{service.name}/revisions/{wanted}")
        conflict_if_renamed(existing, template_key(service.template), wanted)
        known.add(wanted)
    validate_traffic(service, known)
