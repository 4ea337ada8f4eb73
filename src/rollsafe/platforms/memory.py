"""An in-memory platform: the twin of Cloud Run for unit tests of deploy logic."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime

from rollsafe.platforms.base import (
    ALL_USERS,
    DEFAULT_STARTUP_PROBE,
    Platform,
    PlatformError,
    RevisionFailedError,
    RevisionInfo,
    RevisionSpec,
    ServiceInfo,
    TrafficTarget,
)

__all__ = ["InMemoryPlatform"]


class InMemoryPlatform(Platform):
    """Keeps services and revisions in dicts; nothing runs and nothing listens.

    ``fail_revisions`` maps a revision name to the failure message its start should give,
    to play a revision that never becomes ready (``not_ready_message`` words it as Cloud Run
    does). Startup probes are checked against Cloud Run's limits and reported back, with
    Cloud Run's default TCP probe when the spec sets none. Services are created private, as Cloud
    Run creates them: no member has the invoker role until ``set_public``.
    """

    description = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._services: dict[str, ServiceInfo] = {}
        self._revisions: dict[str, list[RevisionInfo]] = {}
        self._invokers: dict[str, frozenset[str]] = {}
        self.fail_revisions: dict[str, str] = {}

    def get_service(self, service: str) -> ServiceInfo | None:
        with self._lock:
            return self._services.get(service)

    def list_revisions(self, service: str) -> list[RevisionInfo]:
        with self._lock:
            return list(reversed(self._revisions.get(service, [])))

    def create_revision(self, spec: RevisionSpec, *, tag: str | None = None) -> ServiceInfo:
        with self._lock:
            revisions = self._revisions.setdefault(spec.service, [])
            if any(r.name == spec.revision for r in revisions):
                raise PlatformError(f"revision {spec.revision} already exists")
            probe = spec.startup_probe
            if probe is not None and probe.problems():
                raise PlatformError(
                    f"create revision {spec.revision}: startup probe: "
                    + "; ".join(probe.problems())
                )
            if probe is None:
                probe = replace(DEFAULT_STARTUP_PROBE, port=spec.container_port)
            failure = self.fail_revisions.get(spec.revision)
            info = RevisionInfo(
                name=spec.revision,
                service=spec.service,
                create_time=datetime.now(UTC),
                ready=failure is None,
                failed=failure is not None,
                message=failure or "",
                image=spec.image,
                env=dict(spec.env),
                secrets=dict(spec.secrets),
                annotations=dict(spec.annotations),
                startup_probe=probe,
            )
            revisions.append(info)
            current = self._services.get(spec.service)
            if failure is not None:
                if current is not None:
                    self._services[spec.service] = replace(
                        current,
                        latest_created_revision=spec.revision,
                        terminal_failed=True,
                        terminal_message=failure,
                    )
                raise RevisionFailedError(failure, revision=spec.revision)
            traffic: tuple[TrafficTarget, ...]
            if current is None or not current.split():
                traffic = (TrafficTarget(spec.revision, 100, tag, self._url(spec.service, tag)),)
                current = ServiceInfo(spec.service, self._url(spec.service, None))
            else:
                kept = tuple(t for t in current.traffic if t.percent or (t.tag and t.tag != tag))
                new = TrafficTarget(spec.revision, 0, tag, self._url(spec.service, tag))
                traffic = (*kept, new) if tag else kept
            updated = replace(
                current,
                traffic=traffic,
                latest_created_revision=spec.revision,
                latest_ready_revision=spec.revision,
                terminal_failed=False,
                terminal_message="",
            )
            self._services[spec.service] = updated
            return updated

    def set_traffic(
        self, service: str, split: dict[str, int], tags: dict[str, str] | None = None
    ) -> ServiceInfo:
        with self._lock:
            current = self._services.get(service)
            if current is None:
                raise PlatformError(f"service {service} not found")
            ready = {r.name for r in self._revisions[service] if r.ready}
            tags = tags or {}
            unknown = (set(split) | set(tags.values())) - ready
            if unknown:
                raise PlatformError(f"unknown or unready revisions: {', '.join(sorted(unknown))}")
            if sum(split.values()) != 100:
                raise PlatformError("traffic percents must sum to 100")
            targets = [TrafficTarget(rev, pct) for rev, pct in split.items() if pct]
            for tag_name, rev in tags.items():
                targets.append(TrafficTarget(rev, 0, tag_name, self._url(service, tag_name)))
            updated = replace(current, traffic=tuple(targets))
            self._services[service] = updated
            return updated

    def delete_service(self, service: str) -> None:
        with self._lock:
            if self._services.pop(service, None) is None:
                raise PlatformError(f"service {service} not found")
            self._revisions.pop(service, None)
            self._invokers.pop(service, None)

    @staticmethod
    def not_ready_message(revision: str, port: int = 8080) -> str:
        """Cloud Run's fixed message for a revision that exited or failed its probe."""
        return (
            f"Revision '{revision}' is not ready and cannot serve traffic. The user-provided "
            "container failed to start and listen on the port defined provided by the "
            f"PORT={port} environment variable within the allocated timeout. This can happen "
            "when the container port is misconfigured or if the timeout is too short. The "
            "health check timeout can be extended. Logs for this revision might contain more "
            "information."
        )

    @staticmethod
    def _url(service: str, tag: str | None) -> str:
        return f"memory://{tag + '---' if tag else ''}{service}"

    def get_invokers(self, service: str) -> frozenset[str]:
        with self._lock:
            if service not in self._services:
                raise PlatformError(f"service {service} not found")
            return self._invokers.get(service, frozenset())

    def set_public(self, service: str, public: bool) -> None:
        with self._lock:
            if service not in self._services:
                raise PlatformError(f"service {service} not found")
            members = self._invokers.get(service, frozenset())
            self._invokers[service] = members | {ALL_USERS} if public else members - {ALL_USERS}
