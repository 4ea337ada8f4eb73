"""How a deploy that changed the platform is undone: its journaled compensation runs after a
failed verification (exit 3) or a cancellation (exit 130/143); a failed compensation is
exit 4, and so is a failed first deploy kept by ``--keep-failed``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rollsafe.deploy.cancel import Cancelled
from rollsafe.deploy.plan import DeployPlan
from rollsafe.deploy.result import DeployResult
from rollsafe.deploy.rollback import roll_back
from rollsafe.deploy.stages import Compensation, CompensationKind, Outcome, Stage

if TYPE_CHECKING:
    from rollsafe.deploy.pipeline import _Run

__all__ = ["cancelled", "undo"]


def cancelled(run: _Run, plan: DeployPlan | None, cancel: Cancelled) -> DeployResult:
    """SIGINT or SIGTERM: run the compensation if anything was changed; exit 130 or 143."""
    stage = run.record.stage if run.record else Stage.PLAN
    why = f"cancelled by {cancel.name} during {stage}"
    if plan is None or run.record is None or run.record.compensation is None:
        message = f"{why}; nothing was changed"
        return DeployResult(cancel.exit_code, Outcome.CANCELLED, message, plan, run.record)
    result = undo(run, plan, why, keep_failed=False)
    if result.exit_code == 4:
        return result
    result.exit_code, result.outcome = cancel.exit_code, Outcome.CANCELLED
    return result


def undo(run: _Run, plan: DeployPlan, why: str, *, keep_failed: bool | None = None) -> DeployResult:
    """Run the journal's compensation; exit 3 when it restored the state before the deploy."""
    assert run.record is not None
    assert run.record.compensation is not None
    compensation = Compensation.from_dict(run.record.compensation)
    keep = run.options.keep_failed if keep_failed is None else keep_failed
    if keep and compensation.kind is CompensationKind.DELETE:
        return DeployResult(
            4,
            Outcome.KEPT_FAILED,
            f"{why}; --keep-failed: {run.service} was created by this deploy and still serves "
            f"the failed revision {plan.spec.revision}",
            plan,
            run.record,
            run.report,
            hint=f"a human must act: debug {plan.spec.revision}, then delete the service "
            f"(gcloud run services delete {run.service}) or deploy a fixed revision with "
            f"`rollsafe deploy --env {run.env.name} --service {run.service}`",
        )
    with run.stage(Stage.ROLLBACK):
        outcome = roll_back(
            run.platform,
            run.client,
            run.service,
            compensation,
            health=run.health,
            failed_revision=plan.spec.revision,
            started=run.first_failure or time.perf_counter(),
        )
    run.info(outcome.describe(), Stage.ROLLBACK)
    if outcome.ok:
        back = (
            f"{run.service} was deleted, as before the deploy"
            if outcome.deleted
            else f"traffic is back on {', '.join(compensation.split)}"
        )
        return DeployResult(
            3, Outcome.ROLLED_BACK, f"{why}; {back}", plan, run.record, run.report, outcome
        )
    return DeployResult(
        4,
        Outcome.ROLLBACK_FAILED,
        f"{why}; the rollback failed too: {outcome.error}",
        plan,
        run.record,
        run.report,
        outcome,
        hint=outcome.human_action(run.env.name, run.service),
    )
