"""Cloud Run through the official ``google-cloud-run`` client (``run_v2``).

The ``local`` platform is this adapter pointed at the emulator's endpoint. Vendor errors
are mapped to ours in ``_map_errors`` only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rollsafe._gcp import client_kwargs, import_google
from rollsafe.platforms.base import (
    ALL_USERS,
    INVOKER_ROLE,
    Platform,
    PlatformError,
    PlatformUnavailableError,
    RevisionFailedError,
    RevisionInfo,
    RevisionSpec,
    SecretRef,
    ServiceInfo,
    StartupProbe,
    TrafficTarget,
)

__all__ = ["CloudRunPlatform"]

_OPERATION_TIMEOUT = 300.0
_CALL_TIMEOUT = 30.0
#: read-modify-write rounds of an IAM policy when another writer's etag wins (ABORTED)
_IAM_ATTEMPTS = 3


@contextmanager
def _map_errors(what: str) -> Iterator[None]:
    """The one place google.api_core errors become rollsafe errors."""
    exceptions = import_google("google.api_core.exceptions")
    try:
        yield
    except (
        exceptions.ServiceUnavailable,
        exceptions.RetryError,
        exceptions.DeadlineExceeded,
    ) as exc:
        raise PlatformUnavailableError(
            f"{what}: Cloud Run is unreachable ({exc.__class__.__name__})",
            hint="check the endpoint (for platform: local, `rollsafe emulator status`)",
        ) from exc
    except exceptions.GoogleAPICallError as exc:
        raise PlatformError(f"{what}: {exc.message or exc}") from exc
    except (ConnectionError, OSError) as exc:
        raise PlatformUnavailableError(f"{what}: Cloud Run is unreachable ({exc})") from exc


def _startup_probe(container: Any) -> StartupProbe | None:
    """The container's startup probe as Cloud Run reports it (HTTP and TCP kinds only)."""
    if "startup_probe" not in container:
        return None
    probe = container.startup_probe
    if "http_get" in probe:
        path: str | None = probe.http_get.path or "/"
        port = probe.http_get.port
    elif "tcp_socket" in probe:
        path, port = None, probe.tcp_socket.port
    else:
        return None
    return StartupProbe(
        path=path,
        initial_delay=probe.initial_delay_seconds,
        period=probe.period_seconds,
        timeout=probe.timeout_seconds,
        failure_threshold=probe.failure_threshold,
        port=port or None,
    )


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _condition(resource: Any) -> tuple[bool, bool, str]:
    """(ready, failed, message) from a Service's or Revision's Ready condition."""
    run_v2 = import_google("google.cloud.run_v2")
    state = run_v2.Condition.State
    for condition in resource.conditions:
        if condition.type_ == "Ready":
            ready = condition.state == state.CONDITION_SUCCEEDED
            failed = condition.state == state.CONDITION_FAILED
            return ready, failed, condition.message
    return False, False, ""


class CloudRunPlatform(Platform):
    """Services of one project and region. ``endpoint`` points at the emulator."""

    def __init__(self, project: str, region: str, *, endpoint: str | None = None) -> None:
        self.project = project
        self.region = region
        self.endpoint = endpoint
        self.description = f"cloudrun:{project}/{region}" + (f"@{endpoint}" if endpoint else "")
        self._run = import_google("google.cloud.run_v2")
        kwargs = client_kwargs(endpoint)
        self._services = self._run.ServicesClient(**kwargs)
        self._revisions = self._run.RevisionsClient(**kwargs)

    @property
    def _parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def _name(self, service: str) -> str:
        return f"{self._parent}/services/{service}"

    # -- reading --
    def _get(self, service: str) -> Any | None:
        exceptions = import_google("google.api_core.exceptions")
        try:
            with _map_errors(f"get service {service}"):
                return self._services.get_service(name=self._name(service), timeout=_CALL_TIMEOUT)
        except PlatformError as exc:
            if isinstance(exc.__cause__, exceptions.NotFound):
                return None
            raise

    def get_service(self, service: str) -> ServiceInfo | None:
        raw = self._get(service)
        return None if raw is None else self._service_info(raw)

    def list_revisions(self, service: str) -> list[RevisionInfo]:
        with _map_errors(f"list revisions of {service}"):
            pages = self._revisions.list_revisions(
                parent=self._name(service), timeout=_CALL_TIMEOUT
            )
            revisions = [self._revision_info(r) for r in pages]
        return sorted(revisions, key=lambda r: r.create_time or datetime.min, reverse=True)

    def _service_info(self, svc: Any) -> ServiceInfo:
        traffic = tuple(
            TrafficTarget(
                revision=_short(status.revision) if status.revision else "",
                percent=status.percent,
                tag=status.tag or None,
                url=status.uri or None,
            )
            for status in svc.traffic_statuses
        )
        terminal = svc.terminal_condition
        terminal_failed = terminal.state == self._run.Condition.State.CONDITION_FAILED
        terminal_message = terminal.message
        return ServiceInfo(
            name=_short(svc.name),
            url=svc.uri or None,
            traffic=traffic,
            latest_ready_revision=_short(svc.latest_ready_revision) or None,
            latest_created_revision=_short(svc.latest_created_revision) or None,
            annotations=dict(svc.annotations),
            terminal_failed=terminal_failed,
            terminal_message=terminal_message if terminal_failed else "",
        )

    def _revision_info(self, rev: Any) -> RevisionInfo:
        ready, failed, message = _condition(rev)
        env: dict[str, str] = {}
        secrets: dict[str, SecretRef] = {}
        image = None
        if rev.containers:
            container = rev.containers[0]
            image = container.image or None
            for var in container.env:
                ref = var.value_source.secret_key_ref if "value_source" in var else None
                if ref is not None and ref.secret:
                    secrets[var.name] = SecretRef(_short(ref.secret), ref.version or "latest")
                else:
                    env[var.name] = var.value
        created = rev.create_time if rev.create_time else None
        probe = _startup_probe(rev.containers[0]) if rev.containers else None
        return RevisionInfo(
            name=_short(rev.name),
            service=_short(rev.service),
            create_time=created,
            ready=ready,
            failed=failed,
            message=message,
            image=image,
            env=env,
            secrets=secrets,
            annotations=dict(rev.annotations),
            startup_probe=probe,
        )

    # -- writing --
    def _template(self, spec: RevisionSpec) -> Any:
        run = self._run
        env = [run.EnvVar(name=k, value=v) for k, v in sorted(spec.env.items())]
        for name, ref in sorted(spec.secrets.items()):
            selector = run.SecretKeySelector(secret=ref.secret, version=ref.version)
            env.append(
                run.EnvVar(name=name, value_source=run.EnvVarSource(secret_key_ref=selector))
            )
        command = list(spec.command or ())
        container = run.Container(
            image=spec.image or "rollsafe.local/command",
            command=command[:1],
            args=command[1:],
            env=env,
            ports=[run.ContainerPort(container_port=spec.container_port)],
        )
        if spec.workdir:
            container.working_dir = spec.workdir
        if spec.startup_probe is not None:
            container.startup_probe = self._probe(spec.startup_probe)
        return run.RevisionTemplate(
            revision=spec.revision,
            containers=[container],
            annotations=dict(spec.annotations),
        )

    def _probe(self, probe: StartupProbe) -> Any:
        run = self._run
        fields: dict[str, Any] = {
            "initial_delay_seconds": probe.initial_delay,
            "period_seconds": probe.period,
            "timeout_seconds": probe.timeout,
            "failure_threshold": probe.failure_threshold,
        }
        port = probe.port or 0  # unset: the container port, as Cloud Run defaults it
        if probe.path is None:
            fields["tcp_socket"] = run.TCPSocketAction(port=port)
        else:
            fields["http_get"] = run.HTTPGetAction(path=probe.path, port=port)
        return run.Probe(**fields)

    def _targets(self, split: dict[str, int], tags: dict[str, str]) -> list[Any]:
        run = self._run
        kind = run.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
        targets = []
        # a revision may carry several tags: each one past the first is a 0% target of its own
        tags_of: dict[str, list[str]] = {}
        for tag, rev in tags.items():
            tags_of.setdefault(rev, []).append(tag)
        for revision, percent in split.items():
            if percent <= 0:
                continue
            own = tags_of.get(revision, [])
            tag = own.pop(0) if own else ""
            targets.append(
                run.TrafficTarget(type_=kind, revision=revision, percent=percent, tag=tag)
            )
        for revision, rest in tags_of.items():
            for tag in rest:
                targets.append(run.TrafficTarget(type_=kind, revision=revision, percent=0, tag=tag))
        return targets

    def _wait(self, operation: Any, what: str, revision: str | None = None) -> Any:
        exceptions = import_google("google.api_core.exceptions")
        polling = import_google("google.api_core.future.polling")
        # the default polls after 1 s, then 1.5 s ...: too slow for a rollback budget of 1 s
        fast = polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=1.0, multiplier=1.5)
        try:
            with _map_errors(what):
                return operation.result(polling=fast.with_timeout(_OPERATION_TIMEOUT))
        except PlatformError as exc:
            cause = exc.__cause__
            if revision is not None and isinstance(cause, exceptions.GoogleAPICallError):
                raise RevisionFailedError(
                    f"revision {revision} did not become ready: {cause.message}",
                    revision=revision,
                    hint="read the revision's logs; traffic stayed where it was",
                ) from cause
            raise

    def create_revision(self, spec: RevisionSpec, *, tag: str | None = None) -> ServiceInfo:
        current = self._get(spec.service)
        template = self._template(spec)
        if current is None:
            service = self._run.Service(template=template)
            with _map_errors(f"create service {spec.service}"):
                operation = self._services.create_service(
                    parent=self._parent, service=service, service_id=spec.service
                )
            self._wait(operation, f"create service {spec.service}", spec.revision)
            if tag is None:
                info = self.get_service(spec.service)
                assert info is not None
                return info
            return self.set_traffic(spec.service, {spec.revision: 100}, {tag: spec.revision})
        info = self._service_info(current)
        split = info.split()
        tags = {t: r for t, r in info.tags().items() if t != tag}
        current.template = template
        del current.traffic[:]
        current.traffic.extend(self._targets(split, tags))
        with _map_errors(f"update service {spec.service}"):
            operation = self._services.update_service(service=current)
        self._wait(operation, f"update service {spec.service}", spec.revision)
        if tag is None:
            fresh = self.get_service(spec.service)
            assert fresh is not None
            return fresh
        return self.set_traffic(spec.service, split, {**tags, tag: spec.revision})

    def set_traffic(
        self, service: str, split: dict[str, int], tags: dict[str, str] | None = None
    ) -> ServiceInfo:
        current = self._get(service)
        if current is None:
            raise PlatformError(f"service {service} not found in {self.description}")
        del current.traffic[:]
        current.traffic.extend(self._targets(split, tags or {}))
        with _map_errors(f"set traffic of {service}"):
            operation = self._services.update_service(service=current)
        self._wait(operation, f"set traffic of {service}")
        fresh = self.get_service(service)
        assert fresh is not None
        return fresh

    def delete_service(self, service: str) -> None:
        with _map_errors(f"delete service {service}"):
            operation = self._services.delete_service(name=self._name(service))
        self._wait(operation, f"delete service {service}")

    # -- access (the service's IAM policy) --
    def _policy(self, service: str) -> Any:
        exceptions = import_google("google.api_core.exceptions")
        try:
            with _map_errors(f"get the IAM policy of {service}"):
                return self._services.get_iam_policy(
                    request={"resource": self._name(service)}, timeout=_CALL_TIMEOUT
                )
        except PlatformError as exc:
            if isinstance(exc.__cause__, exceptions.NotFound):
                raise PlatformError(f"service {service} not found in {self.description}") from exc
            raise

    def get_invokers(self, service: str) -> frozenset[str]:
        policy = self._policy(service)
        return frozenset(
            member
            for binding in policy.bindings
            if binding.role == INVOKER_ROLE and not binding.HasField("condition")
            for member in binding.members
        )

    def set_public(self, service: str, public: bool) -> None:
        exceptions = import_google("google.api_core.exceptions")
        for attempt in range(_IAM_ATTEMPTS):
            policy = self._policy(service)  # its etag makes the write fail if it changed since
            if not _with_all_users(policy, public):
                return
            try:
                with _map_errors(f"set the IAM policy of {service}"):
                    self._services.set_iam_policy(
                        request={"resource": self._name(service), "policy": policy},
                        timeout=_CALL_TIMEOUT,
                    )
                return
            except PlatformError as exc:
                conflict = isinstance(exc.__cause__, exceptions.Aborted)
                if not conflict or attempt == _IAM_ATTEMPTS - 1:
                    raise

    def close(self) -> None:
        for client in (self._services, self._revisions):
            client.transport.close()


def _with_all_users(policy: Any, public: bool) -> bool:
    """Add ``allUsers`` to (or take it from) the unconditional invoker binding of ``policy``,
    in place; False when there was nothing to change."""
    bindings = [
        b for b in policy.bindings if b.role == INVOKER_ROLE and not b.HasField("condition")
    ]
    has = any(ALL_USERS in b.members for b in bindings)
    if has == public:
        return False
    if public:
        if bindings:
            bindings[0].members.append(ALL_USERS)
        else:
            policy.bindings.add(role=INVOKER_ROLE, members=[ALL_USERS])
        return True
    for binding in bindings:
        kept = [m for m in binding.members if m != ALL_USERS]
        del binding.members[:]
        binding.members.extend(kept)
    # an invoker binding left with no member is dropped, as gcloud leaves the policy
    emptied = [i for i, b in enumerate(policy.bindings) if not b.members]
    for index in reversed(emptied):
        del policy.bindings[index]
    return True
