"""The deploy-target interface: read a service, create a revision, move traffic."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

from rollsafe._adapter import Adapter
from rollsafe.errors import RollsafeError

__all__ = [
    "Platform",
    "PlatformError",
    "PlatformUnavailableError",
    "RevisionFailedError",
    "RevisionInfo",
    "RevisionSpec",
    "SecretRef",
    "ServiceInfo",
    "TrafficTarget",
]


class PlatformError(RollsafeError):
    """The platform refused a request or answered with an error."""

    exit_code = 1


class PlatformUnavailableError(PlatformError):
    """The platform cannot be reached (fail closed)."""


class RevisionFailedError(PlatformError):
    """A new revision never became ready. ``message`` carries the platform's reason
    (for a container that exited: ``Container called exit(3).`` and its last log lines)."""

    def __init__(self, message: str, *, revision: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.revision = revision


@dataclass(frozen=True, slots=True)
class SecretRef:
    """An env var filled from Secret Manager: ``secret`` at ``version`` (a number or latest)."""

    secret: str
    version: str


@dataclass(frozen=True, slots=True)
class RevisionSpec:
    """What a new revision runs. ``command`` is used locally, ``image`` on Cloud Run."""

    service: str
    revision: str
    image: str | None = None
    command: tuple[str, ...] | None = None
    workdir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, SecretRef] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    health_path: str | None = None
    container_port: int = 8080


@dataclass(frozen=True, slots=True)
class RevisionInfo:
    """A revision as the platform reports it. Never holds secret values, only references."""

    name: str
    service: str
    create_time: datetime | None
    ready: bool
    failed: bool = False
    message: str = ""
    image: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, SecretRef] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrafficTarget:
    """Where a share of requests goes: a revision with a percent, maybe a tag and its URL."""

    revision: str
    percent: int
    tag: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """A service: its URL and the resolved traffic split."""

    name: str
    url: str | None
    traffic: tuple[TrafficTarget, ...] = ()
    latest_ready_revision: str | None = None
    latest_created_revision: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    def split(self) -> dict[str, int]:
        """Revision to percent, for revisions with a share of traffic."""
        out: dict[str, int] = {}
        for target in self.traffic:
            if target.percent:
                out[target.revision] = out.get(target.revision, 0) + target.percent
        return out

    def tags(self) -> dict[str, str]:
        """Tag to revision."""
        return {t.tag: t.revision for t in self.traffic if t.tag}

    def tag_url(self, tag: str) -> str | None:
        return next((t.url for t in self.traffic if t.tag == tag), None)


class Platform(Adapter):
    """A deploy target (Cloud Run, the emulator, or the in-memory twin)."""

    description: str = "platform"

    @abstractmethod
    def get_service(self, service: str) -> ServiceInfo | None:
        """The service, or None if it does not exist."""

    @abstractmethod
    def list_revisions(self, service: str) -> list[RevisionInfo]:
        """Every revision of ``service``, newest first."""

    @abstractmethod
    def create_revision(self, spec: RevisionSpec, *, tag: str | None = None) -> ServiceInfo:
        """Create ``spec.revision`` with no traffic (all of it if the service is new), give it
        ``tag``, and wait until it is ready. Raises ``RevisionFailedError`` if it never is;
        traffic then stays where it was."""

    @abstractmethod
    def set_traffic(
        self, service: str, split: dict[str, int], tags: dict[str, str] | None = None
    ) -> ServiceInfo:
        """Route ``split`` (revision -> percent, summing to 100) and exactly ``tags``."""
