"""Moving traffic back to what served before, and checking that it is healthy again."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from rollsafe.deploy.health import HealthSpec, verify
from rollsafe.platforms import Platform, PlatformError

__all__ = ["RollbackOutcome", "roll_back"]

_CANDIDATE = "candidate"


@dataclass
class RollbackOutcome:
    """``seconds``: from the first failing probe to traffic restored (the benchmark's figure)."""

    ok: bool
    to: dict[str, int] = field(default_factory=dict)
    seconds: float | None = None
    verified: bool = False
    error: str = ""

    def describe(self) -> str:
        target = ", ".join(f"{rev} {pct}%" for rev, pct in self.to.items()) or "nothing"
        if not self.ok:
            return f"rollback failed: {self.error}"
        timing = f" {self.seconds:.2f} s after the first failing probe" if self.seconds else ""
        return f"traffic back on {target}{timing}; previous revision verified healthy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "to": self.to,
            "seconds": self.seconds,
            "verified": self.verified,
            "error": self.error,
        }

    def human_action(self, env: str, service: str) -> str:
        if self.to:
            revisions = ",".join(f"{rev}={pct}" for rev, pct in self.to.items())
            return (
                "a human must act: put traffic back by hand with `rollsafe rollback --env "
                f"{env} --service {service} --to {next(iter(self.to))}` or `gcloud run services "
                f"update-traffic {service} --to-revisions={revisions}`, then check the service"
            )
        return (
            "a human must act: there is no earlier revision to return to; deploy a fixed "
            f"revision with `rollsafe deploy --env {env} --service {service} --force --reason ...`"
        )


def roll_back(
    platform: Platform,
    client: httpx.Client,
    service: str,
    previous_split: dict[str, int],
    *,
    health: HealthSpec,
    failed_revision: str,
    started: float,
) -> RollbackOutcome:
    """Give ``previous_split`` all traffic again, drop the candidate tag, verify health."""
    if not previous_split:
        return RollbackOutcome(
            False, error=f"no earlier revision than {failed_revision} to return to"
        )
    try:
        current = platform.get_service(service)
        tags = {t: r for t, r in (current.tags() if current else {}).items() if t != _CANDIDATE}
        tags = {t: r for t, r in tags.items() if r != failed_revision}
        info = platform.set_traffic(service, previous_split, tags)
    except PlatformError as exc:
        return RollbackOutcome(False, previous_split, error=str(exc))
    seconds = time.perf_counter() - started
    if not info.url:
        return RollbackOutcome(False, previous_split, seconds, error="the service has no URL")
    ok, results = verify(client, info.url, health, consecutive=2, timeout=15.0)
    if not ok:
        last = results[-1].describe() if results else "no probe"
        return RollbackOutcome(
            False, previous_split, seconds, error=f"the previous revision is unhealthy too ({last})"
        )
    return RollbackOutcome(True, previous_split, seconds, verified=True)
