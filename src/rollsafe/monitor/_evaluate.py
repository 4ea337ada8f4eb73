"""Signals turned into observations: probe samples into ``ServiceDown``, request-log
windows into ``High5xxRate``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from rollsafe.manifest._monitor_resolved import ResolvedMonitor
from rollsafe.monitor.model import AlertName, Observation
from rollsafe.platforms.logs import RequestStats

__all__ = ["error_rate_observation", "new_requests", "probe_observation", "short_revision"]


def short_revision(revision: str | None) -> str | None:
    """The short name of a revision: ``backend-00002-abc`` of
    ``projects/P/locations/L/services/S/revisions/backend-00002-abc``."""
    return revision.rsplit("/", 1)[-1] if revision else None


def probe_observation(sample: Any, revision: str | None) -> Observation:
    """``ServiceDown`` from one probe ``sample`` (a ``ProbeSample``) of the service whose
    traffic ``revision`` serves most (the revision that answered, when it says)."""
    revision = short_revision(getattr(sample, "revision", None)) or revision
    status = f"HTTP {sample.status}" if sample.status is not None else "no answer"
    detail = sample.detail or status
    if sample.ok:
        summary = f"{sample.service} answers its health probe ({status})"
    else:
        summary = f"{sample.service} fails its health probe: {detail}"
    return Observation(
        service=sample.service,
        alertname=AlertName.SERVICE_DOWN.value,
        ok=bool(sample.ok),
        severity="critical",
        summary=summary,
        description=f"The health probe of {sample.service} got {status}: {detail}.",
        revision=revision,
        evidence=(f"monitor:{AlertName.SERVICE_DOWN.value}/{sample.service}/{sample.at:.0f}",),
        at=sample.at,
        value=sample.latency,
    )


def error_rate_observation(
    service: str, stats: Mapping[str, RequestStats], settings: ResolvedMonitor, now: float
) -> Observation | None:
    """``High5xxRate`` from one service's per-revision request stats over its window;
    None when fewer than ``min_requests`` requests arrived (nothing to judge)."""
    total = sum(s.requests for s in stats.values())
    errors = sum(s.errors for s in stats.values())
    if total < settings.min_requests:
        return None
    share = errors / total
    worst = max(stats, key=lambda r: stats[r].errors, default=None)
    ok = share <= settings.max_error_rate
    window = f"{settings.window:.0f} s"
    summary = (
        f"{service}: {share:.0%} of {total} requests answered 5xx in the last {window} "
        f"(at most {settings.max_error_rate:.0%})"
    )
    return Observation(
        service=service,
        alertname=AlertName.HIGH_5XX.value,
        ok=ok,
        severity="critical",
        summary=summary,
        description=f"{errors} of {total} requests to {service} answered 5xx in {window}.",
        revision=worst if not ok else None,
        evidence=(f"monitor:{AlertName.HIGH_5XX.value}/{service}/{now:.0f}",),
        at=now,
        value=share,
    )


def new_requests(samples: Iterable[Any]) -> dict[tuple[str, str], tuple[int, int]]:
    """(service, revision) -> (requests, 5xx) of the request samples read this pass."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for sample in samples:
        entry = counts[(sample.service, sample.revision or "")]
        entry[0] += 1
        if sample.status is not None and sample.status >= 500:
            entry[1] += 1
    return {key: (n, e) for key, (n, e) in counts.items()}
