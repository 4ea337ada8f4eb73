"""The monitor's automatic rollback, on the emulator with the example backend: a firing
down or 5xx alert within ``rollback_within`` of a deploy rolls it back once, through the
deploy machinery, and the journal says why."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rollsafe.monitor.model import AlertEvent, AlertName, EventKind
from rollsafe.monitor.rollback import AutoRollback, rollback_namespace
from tests.deploy.conftest import ENV, SERVICE, Site


def _event(alert: str = AlertName.SERVICE_DOWN.value, kind: EventKind = EventKind.FIRING) -> Any:
    return AlertEvent(
        kind=kind,
        env=ENV,
        service=SERVICE,
        alertname=alert,
        severity="critical",
        summary=f"{SERVICE} fails its health probe",
        description="",
        starts_at=time.time(),
    )


def _auto(site: Site, *, later: float = 0.0, env: Any = None) -> AutoRollback:
    return AutoRollback(
        env or site.env,
        platform=site.platform,
        journal=site.journal,
        tokens=site.tokens,
        clock=lambda: time.time() + later,
    )


def _two_deploys(site: Site) -> tuple[str, str, str]:
    """A verified first revision, then a second deploy: (first, second, its deploy id)."""
    first = site.baseline()
    site.seed()
    second = site.deploy()
    assert second.exit_code == 0, second.message
    assert second.plan is not None
    assert second.record is not None
    return first, second.plan.spec.revision, second.record.id


@pytest.mark.parametrize(
    "alert", [AlertName.SERVICE_DOWN.value, AlertName.HIGH_5XX.value], ids=["down", "5xx"]
)
def test_a_fresh_deploy_that_fires_is_rolled_back_once(site: Site, alert: str) -> None:
    first, second, deploy_id = _two_deploys(site)
    auto = _auto(site)
    action = auto.consider(_event(alert))
    assert action is not None
    assert f"back to {first}" in action
    assert deploy_id in action
    assert site.split() == {first: 100}
    newest = site.journal.history(ENV, SERVICE)[0]
    assert newest.checks == "rollback"
    assert newest.outcome == "rolled-back"
    assert newest.reason is not None
    assert newest.reason.startswith(f"monitor: {alert} fired ")
    assert f"after deploy {deploy_id}" in newest.reason
    marker = site.journal.store.kv_get(rollback_namespace(ENV), deploy_id)
    assert marker is not None
    assert marker[0]["outcome"] == "rolled-back"
    # at most once per deploy, even from another monitor
    assert _auto(site).consider(_event(alert)) is None
    assert len([r for r in site.journal.history(ENV, SERVICE) if r.checks == "rollback"]) == 1
    assert second not in site.split()


def test_a_deploy_older_than_the_window_is_left_alone(site: Site) -> None:
    _, second, _ = _two_deploys(site)
    assert _auto(site, later=3600.0).consider(_event()) is None
    assert site.split() == {second: 100}


@pytest.mark.parametrize(
    ("alert", "kind"),
    [
        (AlertName.SERVICE_DOWN.value, EventKind.RESOLVED),
        (AlertName.SERVICE_DOWN.value, EventKind.REMINDER),
        ("jwt", EventKind.FIRING),
        (AlertName.REVISION_NOT_READY.value, EventKind.FIRING),
    ],
    ids=["resolved", "reminder", "log-alert", "state-alert"],
)
def test_only_firing_down_or_5xx_alerts_roll_back(site: Site, alert: str, kind: EventKind) -> None:
    _, second, _ = _two_deploys(site)
    assert _auto(site).consider(_event(alert, kind)) is None
    assert site.split() == {second: 100}


def test_rollback_is_off_outside_strict_environments(site: Site) -> None:
    _, second, _ = _two_deploys(site)
    relaxed = site.variant("strict: true,", "strict: false,")
    assert relaxed.services[SERVICE].monitor.rollback_within is None
    assert _auto(site, env=relaxed).consider(_event()) is None
    assert site.split() == {second: 100}


def test_no_earlier_revision_is_said_and_tried_once(site: Site) -> None:
    only = site.baseline()
    action = _auto(site).consider(_event())
    assert action is not None
    assert "refused" in action
    assert "no earlier verified revision" in action
    assert site.split() == {only: 100}
    assert _auto(site).consider(_event()) is None
