"""What ``run_deploy`` takes (``DeployOptions``) and what it returns (``DeployResult``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rollsafe.check import CheckReport
from rollsafe.deploy.plan import DeployPlan
from rollsafe.deploy.rollback import RollbackOutcome
from rollsafe.state.journal import DeployRecord

__all__ = ["DeployOptions", "DeployResult"]


@dataclass(frozen=True)
class DeployOptions:
    """The flags of ``rollsafe deploy``."""

    image: str | None = None
    dry_run: bool = False
    force: bool = False
    reason: str | None = None
    skip_checks: bool = False
    canary: tuple[int, ...] = (100,)
    watch: float | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: the service account whose ID tokens the probes carry (default: ADC's own identity)
    impersonate_service_account: str | None = None
    #: a failed first deploy keeps its service (for debugging) instead of deleting it
    keep_failed: bool = False


@dataclass
class DeployResult:
    """How a deploy ended. ``exit_code`` follows DESIGN.md (0, 1, 3, 4, 130, 143)."""

    exit_code: int
    outcome: str  # an ``Outcome`` (a str enum: compares equal to the journal's strings)
    message: str
    plan: DeployPlan | None = None
    record: DeployRecord | None = None
    report: CheckReport | None = None
    rollback: RollbackOutcome | None = None
    hint: str | None = None
