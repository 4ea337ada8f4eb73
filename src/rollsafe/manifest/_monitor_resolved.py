"""The resolved ``monitor:`` of a service and ``alerts:`` of an environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from rollsafe.manifest._monitor_models import FromSecret, Monitor, Receiver

__all__ = [
    "DEFAULT_ROLLBACK_WITHIN",
    "ResolvedLogAlert",
    "ResolvedMonitor",
    "ResolvedReceiver",
    "ResolvedRetention",
    "resolve_monitor",
    "resolve_receiver",
]

#: ``monitor.rollback_within`` in strict environments when the manifest does not say
DEFAULT_ROLLBACK_WITHIN = 15 * 60.0


@dataclass(frozen=True, slots=True)
class ResolvedLogAlert:
    """One log alert: ``match`` (a regex) or ``filter`` (a Logging filter), and its
    threshold: ``count`` matching lines within ``window`` seconds."""

    name: str
    severity: str
    match: str | None = None
    filter: str | None = None
    count: int = 1
    window: float = 300.0


@dataclass(frozen=True, slots=True)
class ResolvedRetention:
    """How long the monitor keeps its records, in seconds: one-minute probe buckets
    (``raw``), hourly rollups (``hourly``), daily rollups and alert history (``daily``)."""

    raw: float = 2 * 86400.0
    hourly: float = 30 * 86400.0
    daily: float = 90 * 86400.0


@dataclass(frozen=True, slots=True)
class ResolvedMonitor:
    """How the monitor watches one service in one environment."""

    interval: float = 30.0
    failure_threshold: int = 3
    success_threshold: int = 2
    repeat: float = 4 * 3600.0
    #: seconds after a rollsafe deploy in which a down or 5xx alert rolls it back; None: off
    rollback_within: float | None = None
    max_error_rate: float = 0.05
    min_requests: int = 10
    window: float = 60.0
    default_log_alerts: bool = True
    log_alerts: tuple[ResolvedLogAlert, ...] = ()
    retention: ResolvedRetention = field(default_factory=ResolvedRetention)


@dataclass(frozen=True, slots=True)
class ResolvedReceiver:
    """One receiver of an environment's alerts. Its URL and key are secrets: a literal
    one is kept here but never shown (``repr`` leaves it out); ``*_secret`` names the
    store's secret to read instead."""

    type: str
    name: str
    url: str | None = field(default=None, repr=False)
    url_secret: str | None = None
    routing_key: str | None = field(default=None, repr=False)
    routing_key_secret: str | None = None
    timeout: float = 10.0
    line: int | None = None


def resolve_monitor(spec: Monitor, *, strict: bool) -> ResolvedMonitor:
    """``spec`` with its defaults filled in for a strict or non-strict environment."""
    within = spec.rollback_within
    if within is None:
        within = DEFAULT_ROLLBACK_WITHIN if strict else 0.0
    return ResolvedMonitor(
        interval=spec.interval,
        failure_threshold=spec.failure_threshold,
        success_threshold=spec.success_threshold,
        repeat=spec.repeat,
        rollback_within=within or None,
        max_error_rate=spec.max_error_rate,
        min_requests=spec.min_requests,
        window=spec.window,
        default_log_alerts=spec.default_log_alerts,
        log_alerts=tuple(
            ResolvedLogAlert(
                name=a.name,
                severity=a.severity,
                match=a.match,
                filter=a.filter,
                count=a.threshold.count,
                window=a.threshold.window,
            )
            for a in spec.log_alerts
        ),
        retention=ResolvedRetention(
            raw=spec.retention.raw, hourly=spec.retention.hourly, daily=spec.retention.daily
        ),
    )


def _split(value: str | FromSecret | None, env: str) -> tuple[str | None, str | None]:
    if isinstance(value, FromSecret):
        return None, value.secret.replace("{env}", env)
    return value, None


def resolve_receiver(spec: Receiver, *, env: str, index: int, line: int | None) -> ResolvedReceiver:
    """``spec`` with ``{env}`` expanded in its secret names; named ``TYPE`` (``TYPE-N``
    when the environment has several of that type) unless it has a ``name``."""
    url, url_secret = _split(spec.url, env)
    key, key_secret = _split(spec.routing_key, env)
    return ResolvedReceiver(
        type=spec.type,
        name=spec.name or (spec.type if index == 0 else f"{spec.type}-{index + 1}"),
        url=url,
        url_secret=url_secret,
        routing_key=key,
        routing_key_secret=key_secret,
        timeout=spec.timeout,
        line=line,
    )
