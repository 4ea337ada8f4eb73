"""A deploy cancelled with SIGINT or SIGTERM, as CI runners cancel a job, at each stage.

The real CLI runs in a process of its own (not from a shell: a shell's background job
ignores SIGINT). The test reads the journal until the deploy is in the stage, sends the
signal, and checks what the process leaves: exit 130/143, the previous revision at 100%,
no candidate tag, the journal outcome ``cancelled``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from rollsafe.deploy import CANDIDATE_TAG
from rollsafe.state.journal import DeployRecord
from tests.deploy.conftest import _FAST_HEALTH, ENV, SERVICE, Site

#: verification probes one second apart: each verify and canary step lasts seconds, long
#: enough for the test to signal inside it
_SLOW_HEALTH = _FAST_HEALTH.replace("interval: 0.1s", "interval: 1s")
STAGE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Cancel:
    stage: str
    signum: signal.Signals
    #: which start of the stage (the second ``shift`` is the 50% step)
    nth: int = 1

    @property
    def id(self) -> str:
        step = "-50%" if self.stage == "shift" else ""
        return f"{self.signum.name}-during-{self.stage}{step}"


CANCELS = [
    Cancel("create", signal.SIGINT),
    Cancel("verify", signal.SIGINT),
    Cancel("shift", signal.SIGINT, nth=2),
    Cancel("watch", signal.SIGINT),
    Cancel("verify", signal.SIGTERM),
    Cancel("shift", signal.SIGTERM, nth=2),
    Cancel("watch", signal.SIGTERM),
]


def _start(site: Site, manifest: Path) -> subprocess.Popen[str]:
    argv = [
        sys.executable,
        "-c",
        "from rollsafe.cli import main; main()",
        "deploy",
        "-f",
        str(manifest),
        "--env",
        ENV,
        "--service",
        SERVICE,
        "--canary",
        "10,50,100",
        "--watch",
        "30",
    ]
    return subprocess.Popen(
        argv,
        cwd=site.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _wait_for_stage(site: Site, child: subprocess.Popen[str], stage: str, nth: int) -> str:
    """Read the journal until the child's deploy has started ``stage`` ``nth`` times; return
    the id of its record."""
    deadline = time.monotonic() + STAGE_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise AssertionError(f"the deploy ended early: {_output(child)}")
        mine = [r for r in site.journal.history(ENV, SERVICE) if r.pid == child.pid]
        if mine and _started(mine[0], stage) >= nth and mine[0].stage == stage:
            return mine[0].id
        time.sleep(0.02)
    child.kill()
    raise AssertionError(f"the deploy never reached {stage}: {_output(child)}")


def _started(record: DeployRecord, stage: str) -> int:
    return sum(1 for s in record.stages if s["stage"] == stage)


def _output(child: subprocess.Popen[str]) -> str:
    """Everything the child printed, once it has ended (killed if it hangs)."""
    try:
        out, _ = child.communicate(timeout=STAGE_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        out, _ = child.communicate(timeout=30)
    return out


def _signal_in(
    site: Site, child: subprocess.Popen[str], stage: str, nth: int, *signums: signal.Signals
) -> tuple[str, str]:
    """Wait until the child's deploy is in ``stage``, send ``signums``; return the deploy id
    and everything the child printed."""
    try:
        deploy_id = _wait_for_stage(site, child, stage, nth)
        for signum in signums:
            child.send_signal(signum)
        return deploy_id, _output(child)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=30)


@pytest.mark.parametrize("cancel", CANCELS, ids=[c.id for c in CANCELS])
def test_a_signal_at_each_stage_puts_the_previous_split_back(site: Site, cancel: Cancel) -> None:
    base = site.baseline()
    tags = {"stable": base, "blue": base}
    site.platform.set_traffic(SERVICE, {base: 100}, tags)
    # the watch window (30 s) is long enough by itself: the stages before it need not be slow
    health = _FAST_HEALTH if cancel.stage == "watch" else _SLOW_HEALTH
    manifest = site.variant(_FAST_HEALTH, health).manifest_path
    site.seed()
    child = _start(site, manifest)
    deploy_id, output = _signal_in(site, child, cancel.stage, cancel.nth, cancel.signum)
    assert child.returncode == 128 + cancel.signum, output
    assert site.split() == {base: 100}
    # the candidate tag is gone, every other tag kept
    assert site.tags() == tags
    assert CANDIDATE_TAG not in site.tags()
    record = site.journal.get(deploy_id)
    assert record is not None
    assert (record.outcome, record.exit_code) == ("cancelled", 128 + cancel.signum)
    # the signal landed in the stage the test meant
    (interrupted,) = [s for s in record.stages if "cancelled" in s.get("detail", "")]
    assert interrupted["stage"] == cancel.stage
    assert cancel.signum.name in interrupted["detail"]
    assert site.journal.interrupted(ENV, SERVICE) == []
    assert site.get("/health").status_code == 200


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_before_any_change_changes_nothing(site: Site, signum: signal.Signals) -> None:
    # the serving revision answers /health slowly, so the deploy spends seconds probing it in
    # current-health, the last stage before create
    site.seed()
    first = site.deploy(extra_env={"BACKEND_HEALTH_DELAY": "1.5"})
    assert first.exit_code == 0, first.message
    assert first.plan is not None
    base = first.plan.spec.revision
    tags = {"stable": base}
    site.platform.set_traffic(SERVICE, {base: 100}, tags)
    revisions = {r.name for r in site.platform.list_revisions(SERVICE)}
    site.seed()
    child = _start(site, site.manifest)
    deploy_id, output = _signal_in(site, child, "current-health", 1, signum)
    assert child.returncode == 128 + signum, output
    assert "nothing was changed" in output
    assert site.split() == {base: 100}
    assert site.tags() == tags
    # no revision was created
    assert {r.name for r in site.platform.list_revisions(SERVICE)} == revisions
    record = site.journal.get(deploy_id)
    assert record is not None
    assert (record.outcome, record.exit_code) == ("cancelled", 128 + signum)
    assert site.journal.interrupted(ENV, SERVICE) == []


def test_a_second_signal_does_not_interrupt_the_rollback(site: Site) -> None:
    base = site.baseline()
    manifest = site.variant(_FAST_HEALTH, _SLOW_HEALTH).manifest_path
    site.seed()
    child = _start(site, manifest)
    # as GitHub Actions does, only faster: SIGINT, then SIGTERM while it rolls back
    deploy_id, output = _signal_in(site, child, "shift", 2, signal.SIGINT, signal.SIGTERM)
    assert child.returncode == 130, output
    assert "finishing the rollback" in output
    assert site.split() == {base: 100}
    assert CANDIDATE_TAG not in site.tags()
    record = site.journal.get(deploy_id)
    assert record is not None
    assert record.outcome == "cancelled"
