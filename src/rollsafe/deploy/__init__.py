"""Safe deploys: plan, preflight, current health, create, verify, shift, watch, rollback."""

from rollsafe.deploy.cancel import Cancelled, cancellable
from rollsafe.deploy.events import DeployEvent, DeployListener, EventLog
from rollsafe.deploy.health import HealthSpec, ProbeResult, probe, verify
from rollsafe.deploy.operations import ServiceStatus, manual_rollback, service_status
from rollsafe.deploy.pipeline import (
    DeployOptions,
    DeployResult,
    health_spec,
    run_deploy,
)
from rollsafe.deploy.plan import DeployPlan, build_plan
from rollsafe.deploy.reconcile import reconcile
from rollsafe.deploy.rollback import RollbackOutcome
from rollsafe.deploy.stages import CANDIDATE_TAG, Compensation, Outcome, Stage, run_compensation

__all__ = [
    "CANDIDATE_TAG",
    "Cancelled",
    "Compensation",
    "DeployEvent",
    "DeployListener",
    "DeployOptions",
    "DeployPlan",
    "DeployResult",
    "EventLog",
    "HealthSpec",
    "Outcome",
    "ProbeResult",
    "RollbackOutcome",
    "ServiceStatus",
    "Stage",
    "build_plan",
    "cancellable",
    "health_spec",
    "manual_rollback",
    "probe",
    "reconcile",
    "run_compensation",
    "run_deploy",
    "service_status",
    "verify",
]
