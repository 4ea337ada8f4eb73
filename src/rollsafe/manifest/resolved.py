"""A manifest resolved for one environment: overrides merged, ``{env}`` expanded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollsafe.manifest._monitor_resolved import ResolvedMonitor, ResolvedReceiver
from rollsafe.rules import RuleRef

__all__ = [
    "ResolvedAnalysis",
    "ResolvedEnvironment",
    "ResolvedJwtSecret",
    "ResolvedSecret",
    "ResolvedService",
    "ResolvedStartup",
    "ResolvedVar",
]


@dataclass(frozen=True, slots=True)
class ResolvedVar:
    """A plain environment variable as the service will see it."""

    name: str
    value: str
    rules: tuple[RuleRef, ...] = ()
    line: int | None = None


@dataclass(frozen=True, slots=True)
class ResolvedSecret:
    """An environment variable filled from the secret store."""

    name: str
    secret: str
    version: str = "latest"
    rules: tuple[RuleRef, ...] = ()
    line: int | None = None

    @property
    def reference(self) -> str:
        """``secret-name:VERSION``, as ``gcloud run deploy --set-secrets`` takes it."""
        return f"{self.secret}:{self.version}"


@dataclass(frozen=True, slots=True)
class ResolvedStartup:
    """The startup probe on the health path, in whole seconds (``health.startup``)."""

    initial_delay: int = 0
    period: int = 1
    timeout: int = 1
    failure_threshold: int = 60


@dataclass(frozen=True, slots=True)
class ResolvedHealth:
    """The health check of a service."""

    path: str = "/health"
    expect_status: int = 200
    timeout: float = 2.0
    expect_json: dict[str, Any] = field(default_factory=dict)
    max_latency: float | None = None
    consecutive: int = 3
    interval: float = 0.5
    verify_timeout: float = 30.0
    startup: ResolvedStartup = field(default_factory=ResolvedStartup)
    #: how long the first probe after Ready or a scale from zero may take (not max_latency)
    cold_start: float = 10.0


@dataclass(frozen=True, slots=True)
class ResolvedAnalysis:
    """How a canary step judges the new revision's requests (``analysis:``)."""

    max_error_rate: float = 0.01
    max_p95_latency: float | None = None
    min_requests: int = 20
    step_seconds: float = 10.0
    require_traffic: bool = False


@dataclass(frozen=True, slots=True)
class ResolvedJwtSecret:
    """Where the service's JWT signing secret may be (names expanded), in order."""

    names: tuple[str, ...]
    algorithm: str = "HS256"
    line: int | None = None


@dataclass(frozen=True, slots=True)
class ResolvedService:
    """One service in one environment."""

    name: str
    env_name: str
    image: str | None
    command: tuple[str, ...] | None
    workdir: Path | None
    health: ResolvedHealth
    env: dict[str, ResolvedVar] = field(default_factory=dict)
    secrets: dict[str, ResolvedSecret] = field(default_factory=dict)
    line: int | None = None
    jwt_secret: ResolvedJwtSecret | None = None
    #: anyone may call it (``allUsers`` has ``roles/run.invoker``); private by default
    public: bool = False
    analysis: ResolvedAnalysis = field(default_factory=ResolvedAnalysis)
    monitor: ResolvedMonitor = field(default_factory=ResolvedMonitor)

    def plain_values(self) -> dict[str, str]:
        """Name to value of every plain variable (never secrets)."""
        return {name: var.value for name, var in self.env.items()}


@dataclass(frozen=True, slots=True)
class ResolvedEnvironment:
    """Everything a command needs to act on one environment."""

    name: str
    project: str
    platform: str
    strict: bool
    gcp_project: str
    region: str
    store: str | None
    manifest_path: Path
    services: dict[str, ResolvedService] = field(default_factory=dict)
    line: int | None = None
    watch: float = 0.0
    #: the manifest's top-level ``state:`` (``sqlite:PATH`` or a PostgreSQL URL), if any
    state: str | None = None
    #: where ``rollsafe monitor`` sends alerts (``alerts:``)
    alerts: tuple[ResolvedReceiver, ...] = ()
