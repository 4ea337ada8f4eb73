"""The deploy-target interface: read a service, create a revision, move traffic."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

from rollsafe._adapter import Adapter
from rollsafe.errors import RollsafeError

__all__ = [
    "ALL_USERS",
    "DEFAULT_STARTUP_PROBE",
    "INVOKER_ROLE",
    "STARTUP_PROBE_MAX",
    "Platform",
    "PlatformError",
    "PlatformUnavailableError",
    "RevisionFailedError",
    "RevisionInfo",
    "RevisionSpec",
    "SecretRef",
    "ServiceInfo",
    "StartupProbe",
    "TrafficTarget",
]


#: the member that means "anyone, signed in or not", and the role that lets it call a service
ALL_USERS = "allUsers"
INVOKER_ROLE = "roles/run.invoker"


class PlatformError(RollsafeError):
    """The platform refused a request or answered with an error."""

    exit_code = 1


class PlatformUnavailableError(PlatformError):
    """The platform cannot be reached (fail closed)."""


class RevisionFailedError(PlatformError):
    """A new revision never became ready. ``message`` carries the platform's reason, in its
    own fixed words (Cloud Run: ``Revision 'X' is not ready and cannot serve traffic. ...``);
    what the container printed, and its exit code, are in the revision's logs only (see
    ``rollsafe.platforms.logs``)."""

    def __init__(self, message: str, *, revision: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.revision = revision


@dataclass(frozen=True, slots=True)
class SecretRef:
    """An env var filled from Secret Manager: ``secret`` at ``version`` (a number or latest)."""

    secret: str
    version: str


#: Cloud Run's limit on a startup probe's delay and period, in seconds
STARTUP_PROBE_MAX = 240


@dataclass(frozen=True, slots=True)
class StartupProbe:
    """A startup probe: HTTP GET ``path`` (None: a TCP connect) on the container's port.

    The revision becomes ready once one attempt passes; attempts start every ``period``
    seconds after ``initial_delay``, each within ``timeout``; ``failure_threshold`` failures
    in a row fail the revision. Whole seconds, as Cloud Run's ``Probe`` fields are.
    """

    path: str | None = None
    initial_delay: int = 0
    period: int = 10
    timeout: int = 1
    failure_threshold: int = 3
    port: int | None = None

    def problems(self) -> list[str]:
        """What Cloud Run would refuse in this probe (empty when it is valid)."""
        found = []
        if not 0 <= self.initial_delay <= STARTUP_PROBE_MAX:
            found.append(f"initial_delay must be between 0 and {STARTUP_PROBE_MAX} seconds")
        if not 1 <= self.period <= STARTUP_PROBE_MAX:
            found.append(f"period must be between 1 and {STARTUP_PROBE_MAX} seconds")
        if not 1 <= self.timeout <= self.period:
            found.append("timeout must be at least 1 second and at most the period")
        if self.failure_threshold < 1:
            found.append("failure_threshold must be at least 1")
        if self.path is not None and not self.path.startswith("/"):
            found.append("path must start with '/'")
        return found


#: the probe Cloud Run gives a container that declares none (a TCP connect on its port)
DEFAULT_STARTUP_PROBE = StartupProbe(None, 0, STARTUP_PROBE_MAX, STARTUP_PROBE_MAX, 1, 8080)


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
    #: None: the platform's default (Cloud Run: a TCP probe on the container port)
    startup_probe: StartupProbe | None = None


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
    #: the probe the platform runs (its default when the spec set none)
    startup_probe: StartupProbe | None = None


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
    #: the service's terminal condition (Cloud Run's ``terminal_condition``, type Ready)
    #: failed: its last operation (a revision that never became ready) failed, and why
    terminal_failed: bool = False
    terminal_message: str = ""

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

    def delete_service(self, service: str) -> None:
        """Delete ``service`` and its revisions (a failed first deploy is undone so).
        Raises ``PlatformError`` where the platform cannot."""
        raise PlatformError(f"{self.description} cannot delete services")

    @abstractmethod
    def get_invokers(self, service: str) -> frozenset[str]:
        """The members granted ``roles/run.invoker`` on ``service`` by its IAM policy
        (``allUsers`` when it is public). Raises ``PlatformError`` if it does not exist."""

    @abstractmethod
    def set_public(self, service: str, public: bool) -> None:
        """Grant ``roles/run.invoker`` to ``allUsers`` (or take it away), keeping every other
        binding, as ``gcloud run services add-iam-policy-binding`` does."""

    def is_public(self, service: str) -> bool:
        """Whether anyone may call ``service`` without an ID token."""
        return ALL_USERS in self.get_invokers(service)
