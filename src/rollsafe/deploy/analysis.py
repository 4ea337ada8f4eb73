"""Canary analysis: a canary step judged on the new revision's real requests.

Probes through the candidate tag say that the new revision answers its health path; they
say nothing about what users get from it. At each canary step (and over the watch window)
rollsafe reads the service's Cloud Run request log through the Logging API, the same code
on Google and on the emulator, and judges the new revision's requests in that window
against the manifest's ``analysis:``: the share of 5xx answers (``max_error_rate``) and,
if set, the 95th percentile latency (``max_p95_latency``). The previous revisions' numbers
in the same window go alongside, for comparison::

    web-00002: 31 of 140 requests 5xx (22%) > 1%; web-00001: 0 of 1,260

With fewer than ``min_requests`` requests the numbers mean little: the step is judged by
its probes alone, and says so; ``require_traffic: true`` fails it instead (fail closed).

Request-log entries reach Cloud Logging after the request: the window is read when it has
closed plus a settle delay (the emulator writes them in batches every 0.25 s; on Google
they usually take seconds and may take longer, and entries later than that are not
counted). The deploy's own probes go to the tag URL and are left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rollsafe.manifest.resolved import ResolvedAnalysis, ResolvedEnvironment
from rollsafe.platforms.base import PlatformError
from rollsafe.platforms.logs import RequestStats, RevisionLogs

__all__ = ["SETTLE", "CanaryJudge", "Verdict", "judge"]

#: seconds to wait after a window closes before reading it, per platform: the emulator
#: writes request-log entries every 0.25 s; Cloud Logging ingests them seconds late
SETTLE = {"local": 0.6, "cloudrun": 5.0}


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a step's requests were judged; ``message`` names the numbers."""

    ok: bool
    #: False when too few requests (or no logs) left the step to its probes alone
    by_traffic: bool
    message: str
    stats: Mapping[str, RequestStats] = field(default_factory=dict)


def _percent(rate: float) -> str:
    """0.2214 -> ``22%``; 0.01 -> ``1%``; 0.005 -> ``0.5%``."""
    pct = rate * 100
    if pct >= 10 or pct == int(pct):
        return f"{pct:.0f}%"
    return f"{pct:.1f}".rstrip("0").rstrip(".") + "%"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _others(new: str, stats: Mapping[str, RequestStats], previous: Iterable[str]) -> list[str]:
    names = [rev for rev in previous if rev != new]
    names += [rev for rev in stats if rev != new and rev not in names]
    return names


def judge(
    new: str,
    stats: Mapping[str, RequestStats],
    spec: ResolvedAnalysis,
    *,
    previous: Iterable[str] = (),
    window: float | None = None,
) -> Verdict:
    """Judge ``new``'s requests in ``stats`` (per revision, one window) against ``spec``.

    ``previous`` names the revisions to compare with even when they had no requests;
    ``window`` (seconds) is only for the message.
    """
    mine = stats.get(new, RequestStats(new))
    others = [stats.get(rev, RequestStats(rev)) for rev in _others(new, stats, previous)]
    if mine.requests < spec.min_requests:
        span = f" in {window:.0f} s" if window is not None else ""
        count = f"{mine.requests:,} request{'' if mine.requests == 1 else 's'}{span}"
        short = f"fewer than min_requests ({spec.min_requests})"
        if spec.require_traffic:
            text = f"{new}: {count}, {short}, and analysis.require_traffic is true"
            return Verdict(False, False, text, stats)
        return Verdict(True, False, f"judged by probes alone: {new} had {count}, {short}", stats)
    errors = f"{mine.errors:,} of {mine.requests:,} requests 5xx ({_percent(mine.error_rate)})"
    if mine.error_rate > spec.max_error_rate:
        text = f"{errors} > {_percent(spec.max_error_rate)}"
        rest = [f"{o.revision}: {o.errors:,} of {o.requests:,}" for o in others]
        return Verdict(False, True, "; ".join([f"{new}: {text}", *rest]), stats)
    p95 = mine.p95()
    if spec.max_p95_latency is not None and p95 is not None and p95 > spec.max_p95_latency:
        text = f"p95 {_ms(p95)} > {_ms(spec.max_p95_latency)} over {mine.requests:,} requests"
        rest = [f"{o.revision}: {_latency(o)}" for o in others]
        return Verdict(False, True, "; ".join([f"{new}: {text}", *rest]), stats)
    text = errors + (f", p95 {_ms(p95)}" if p95 is not None else "")
    rest = [f"{o.revision}: {o.errors:,} of {o.requests:,}" for o in others]
    return Verdict(True, True, "; ".join([f"{new}: {text}", *rest]), stats)


def _latency(stats: RequestStats) -> str:
    p95 = stats.p95()
    return "no requests" if p95 is None else f"p95 {_ms(p95)} over {stats.requests:,} requests"


@dataclass
class CanaryJudge:
    """Judges each canary step (and the watch) of one deploy on the request logs.

    ``step(started, tag_url)`` waits until ``started + step_seconds`` (the step's window,
    longer if the probes took longer), lets the logs settle, reads them and judges.
    Without ``logs`` every step is judged by probes alone.
    """

    logs: RevisionLogs | None
    spec: ResolvedAnalysis
    service: str
    new: str
    previous: tuple[str, ...] = ()
    settle: float = SETTLE["local"]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    @classmethod
    def for_deploy(
        cls,
        logs: RevisionLogs | None,
        env: ResolvedEnvironment,
        service: str,
        new: str,
        previous: Iterable[str] = (),
    ) -> CanaryJudge:
        """The judge of one deploy: the service's ``analysis:``, the platform's settle delay."""
        spec = env.services[service].analysis
        settle = SETTLE.get(env.platform, SETTLE["cloudrun"])
        return cls(logs, spec, service, new, tuple(previous), settle)

    def step(
        self, started: float, tag_url: str | None = None, *, window: float | None = None
    ) -> Verdict:
        """Judge the window from ``started`` (``time.time()``, when the traffic moved)."""
        length = self.spec.step_seconds if window is None else window
        end = max(started + length, self.clock())
        self.sleep(max(0.0, end - self.clock()) + self.settle)
        if self.logs is None:
            return self._unread("no request logs to read")
        exclude = urlsplit(tag_url).netloc.lower() if tag_url else None
        try:
            stats = self.logs.request_stats(self.service, started, end, exclude_host=exclude)
        except PlatformError as exc:
            return self._unread(f"the request logs could not be read ({exc.message})")
        return judge(self.new, stats, self.spec, previous=self.previous, window=end - started)

    def _unread(self, why: str) -> Verdict:
        if self.spec.require_traffic:
            return Verdict(False, False, f"{why}, and analysis.require_traffic is true")
        return Verdict(True, False, f"judged by probes alone: {why}")
