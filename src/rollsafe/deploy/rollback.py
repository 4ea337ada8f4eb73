"""Moving traffic back to what served before, and checking that it is healthy again."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from rollsafe.deploy.cancel import shielded
from rollsafe.deploy.health import HealthSpec, verify
from rollsafe.deploy.stages import Compensation, CompensationKind, run_compensation
from rollsafe.platforms import Platform, PlatformError

__all__ = ["RollbackOutcome", "roll_back"]


@dataclass
class RollbackOutcome:
    """``seconds``: from the first failing probe to traffic restored (the benchmark's figure)."""

    ok: bool
    to: dict[str, int] = field(default_factory=dict)
    seconds: float | None = None
    verified: bool = False
    error: str = ""
    #: the compensation deleted the service this deploy created (a failed first deploy)
    deleted: bool = False

    def describe(self) -> str:
        target = ", ".join(f"{rev} {pct}%" for rev, pct in self.to.items()) or "nothing"
        if not self.ok:
            return f"rollback failed: {self.error}"
        if self.deleted:
            timing = f" {self.seconds:.2f} s after the first failure" if self.seconds else ""
            return f"the service this deploy created was deleted{timing}, as before the deploy"
        timing = f" {self.seconds:.2f} s after the first failing probe" if self.seconds else ""
        return f"traffic back on {target}{timing}; previous revision verified healthy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "to": self.to,
            "seconds": self.seconds,
            "verified": self.verified,
            "error": self.error,
            "deleted": self.deleted,
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
    compensation: Compensation | None,
    *,
    health: HealthSpec,
    failed_revision: str,
    started: float,
) -> RollbackOutcome:
    """Run the deploy's ``compensation`` (``run_compensation``) and verify what serves again.

    A restored split is probed until it is healthy; a deleted service is the state before
    the deploy, with nothing to probe.
    """
    if compensation is None or (
        compensation.kind is CompensationKind.RESTORE and not compensation.split
    ):
        return RollbackOutcome(
            False, error=f"no earlier revision than {failed_revision} to return to"
        )
    try:
        with shielded():
            run_compensation(platform, service, compensation)
            info = platform.get_service(service)
    except PlatformError as exc:
        return RollbackOutcome(False, compensation.split, error=str(exc))
    seconds = time.perf_counter() - started
    if compensation.kind is CompensationKind.DELETE:
        return RollbackOutcome(True, {}, seconds, verified=True, deleted=True)
    if info is None or not info.url:
        return RollbackOutcome(False, compensation.split, seconds, error="the service has no URL")
    ok, results = verify(client, info.url, health, consecutive=2, timeout=15.0)
    if not ok:
        last = results[-1].describe() if results else "no probe"
        return RollbackOutcome(
            False,
            compensation.split,
            seconds,
            error=f"the previous revision is unhealthy too ({last})",
        )
    return RollbackOutcome(True, compensation.split, seconds, verified=True)
