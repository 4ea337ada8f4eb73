"""Safe deploys: plan, preflight, current health, create, verify, shift, watch, rollback."""

from rollsafe.deploy.events import DeployEvent, DeployListener, EventLog
from rollsafe.deploy.health import HealthSpec, ProbeResult, probe, verify
from rollsafe.deploy.operations import ServiceStatus, manual_rollback, service_status
from rollsafe.deploy.pipeline import (
    CANDIDATE_TAG,
    DeployOptions,
    DeployResult,
    health_spec,
    run_deploy,
)
from rollsafe.deploy.plan import DeployPlan, build_plan
from rollsafe.deploy.reconcile import reconcile
from rollsafe.deploy.rollback import RollbackOutcome

__all__ = [
    "CANDIDATE_TAG",
    "DeployEvent",
    "DeployListener",
    "DeployOptions",
    "DeployPlan",
    "DeployResult",
    "EventLog",
    "HealthSpec",
    "ProbeResult",
    "RollbackOutcome",
    "ServiceStatus",
    "build_plan",
    "health_spec",
    "manual_rollback",
    "probe",
    "reconcile",
    "run_deploy",
    "service_status",
    "verify",
]
