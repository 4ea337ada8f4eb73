"""A deploy killed with SIGKILL during each stage, reconciled by the next command.

The deploy runs in a process of its own (``_child.py``) that pauses when a stage starts;
the journal already says that stage then. The test kills it there, and the next ``status``
or ``deploy`` must close the record and leave no traffic on the unverified revision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from rollsafe.deploy import CANDIDATE_TAG, service_status
from rollsafe.errors import RollsafeError
from rollsafe.state.journal import DeployLockedError, DeployRecord
from tests.deploy.conftest import ENV, SERVICE, Site, paused_child, sigkill


@dataclass(frozen=True)
class Kill:
    stage: str
    reconciler: str  # "status" or "deploy"
    nth: int = 1
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.stage}-then-{self.reconciler}"


KILLS = [
    Kill("plan", "status"),
    Kill("preflight", "deploy"),
    Kill("current-health", "status"),
    Kill("create", "deploy"),
    Kill("verify", "status"),
    # the second step's start: 10% of the traffic is on the unverified revision
    Kill("shift", "deploy", nth=2, options={"canary": [10, 50, 100]}),
    Kill("watch", "status", options={"watch": 30}),
    Kill("done", "deploy"),
    # a deploy that failed verification, killed as its own rollback starts
    Kill("rollback", "status", options={"extra_env": {"BACKEND_FAIL_HEALTH": "1"}}),
]


def _record_of(site: Site, pid: int) -> DeployRecord:
    (record,) = [r for r in site.journal.history(ENV, SERVICE) if r.pid == pid]
    return record


@pytest.mark.parametrize("kill", KILLS, ids=[k.id for k in KILLS])
def test_deploy_killed_during_a_stage_is_reconciled(site: Site, kill: Kill) -> None:
    base = site.baseline()
    options = {"watch": 0, **kill.options}
    with paused_child(
        site, mode="deploy", pause=kill.stage, nth=kill.nth, options=options
    ) as child:
        during = _record_of(site, child.pid)
        assert during.in_progress
        assert during.stage == kill.stage
        new = during.revision
        # what the kill leaves behind, for the stages that had touched the service
        if kill.stage in ("verify", "rollback"):
            assert site.tags().get(CANDIDATE_TAG) == new
        elif kill.stage == "shift":
            assert site.split() == {base: 90, new: 10}
        elif kill.stage in ("watch", "done"):
            assert site.split() == {new: 100}
        sigkill(child)

    (interrupted,) = site.journal.interrupted(ENV, SERVICE)
    assert interrupted.id == during.id
    if kill.reconciler == "status":
        (status,) = service_status(
            site.env, [SERVICE], platform=site.platform, journal=site.journal
        )
        assert len(status.reconciled) == 1
        assert status.health is not None
        assert status.health.ok
    else:
        result = site.deploy()
        assert result.exit_code == 0, result.message
        assert ("info", "reconcile") in [(e.kind, e.stage) for e in site.events.events]
        # the new deploy started from the reconciled traffic, not the killed one's
        assert result.plan is not None
        assert result.plan.previous_split == ({new: 100} if kill.stage == "done" else {base: 100})

    closed = site.journal.get(during.id)
    assert closed is not None
    assert closed.outcome is not None
    assert (closed.message or "").startswith("reconciled:")
    assert site.journal.interrupted(ENV, SERVICE) == []
    assert closed.outcome == ("succeeded" if kill.stage == "done" else "interrupted")
    if kill.reconciler == "status":
        assert site.split() == ({new: 100} if kill.stage == "done" else {base: 100})
    assert CANDIDATE_TAG not in site.tags()
    assert site.get("/health").status_code == 200


def test_manual_rollback_killed_before_its_verification_is_finished(site: Site) -> None:
    first = site.baseline()
    site.seed()
    second = site.deploy()
    assert second.exit_code == 0, second.message
    with paused_child(site, mode="rollback") as child:
        during = _record_of(site, child.pid)
        assert (during.stage, during.revision) == ("rollback", first)
        assert site.split() == {first: 100}
        sigkill(child)
    (status,) = service_status(site.env, [SERVICE], platform=site.platform, journal=site.journal)
    assert len(status.reconciled) == 1
    closed = site.journal.get(during.id)
    assert closed is not None
    assert (closed.message or "").startswith("reconciled:")
    assert (closed.outcome, closed.exit_code) == ("rolled-back", 0)
    # the rollback a human asked for is finished, not undone
    assert site.split() == {first: 100}


def test_concurrent_deploy_is_refused_and_names_the_holder(site: Site) -> None:
    base = site.baseline()
    with paused_child(site, mode="deploy", pause="verify", options={"watch": 0}) as child:
        holder = _record_of(site, child.pid)
        with pytest.raises(DeployLockedError) as info:
            site.deploy()
        assert isinstance(info.value, RollsafeError)
        assert info.value.exit_code == 1
        assert holder.id in info.value.message
        assert f"pid {child.pid}" in info.value.message
        assert holder.user in info.value.message
        # the refused attempt is closed at once, the holder is still running
        refused = site.journal.history(ENV, SERVICE)[0]
        assert refused.id != holder.id
        assert (refused.outcome, refused.exit_code) == ("refused", 1)
        assert site.journal.get(holder.id).in_progress  # type: ignore[union-attr]
        assert site.split() == {base: 100}


def test_a_killed_deploy_journaled_by_an_older_rollsafe_is_reconciled(site: Site) -> None:
    """A journal written before compensations: the record of a killed canary has the
    previous split and the stage, no compensation."""
    base = site.baseline()
    options = {"watch": 0, "canary": [10, 50, 100]}
    with paused_child(site, mode="deploy", pause="shift", nth=2, options=options) as child:
        during = _record_of(site, child.pid)
        assert during.compensation is not None
        site.journal.update(during, compensation=None)
        sigkill(child)
    (status,) = service_status(site.env, [SERVICE], platform=site.platform, journal=site.journal)
    assert len(status.reconciled) == 1
    assert site.split() == {base: 100}
    assert CANDIDATE_TAG not in site.tags()
    closed = site.journal.get(during.id)
    assert closed is not None
    assert closed.outcome == "interrupted"
