"""Reconciling deploys that were killed: traffic never stays on an unverified revision."""

from __future__ import annotations

from rollsafe.deploy.cancel import shielded
from rollsafe.deploy.events import DeployEvent, DeployListener
from rollsafe.deploy.stages import Compensation, Outcome, Stage, run_compensation
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.platforms import Platform, PlatformError
from rollsafe.state.journal import DeployJournal, DeployRecord

__all__ = ["reconcile"]

#: the ``checks`` of a journal record written by ``rollsafe rollback``
_MANUAL_ROLLBACK = "rollback"


def reconcile(
    env: ResolvedEnvironment,
    service: str,
    *,
    platform: Platform,
    journal: DeployJournal,
    listener: DeployListener | None = None,
) -> list[str]:
    """Close every interrupted deploy of ``service``; return what was done, one line each.

    The journal holds each attempt's compensation, written before the change it undoes:
    reconcile runs it (``run_compensation``, the code a failed verification and a
    cancellation run). A deploy that reached ``done`` was verified: its compensation
    finishes it (100% to its revision, tag off). A killed ``rollsafe rollback`` that had
    not begun to put back the split it found is closed as it stands: its target was chosen
    by a human.
    """
    actions: list[str] = []
    for record in reversed(journal.interrupted(env.name, service)):
        try:
            outcome, code, message = _close(record, service, platform)
        except PlatformError as exc:
            actions.append(f"deploy {record.id}: cannot reconcile yet ({exc})")
            continue
        journal.finish(record, outcome, code, f"reconciled: {message}")
        actions.append(message)
        if listener is not None:
            listener(DeployEvent("info", Stage.RECONCILE, message))
    return actions


def _close(record: DeployRecord, service: str, platform: Platform) -> tuple[Outcome, int, str]:
    note = f"deploy {record.id} (killed during {record.stage})"
    revision = record.revision
    if record.checks == _MANUAL_ROLLBACK and record.compensation is None:
        # a rollback a human asked for: moving the traffic back would undo it
        current = platform.get_service(service)
        if current is not None and revision and current.split() == {revision: 100}:
            message = f"{note}: the rollback had moved the traffic; {revision} serves 100%"
            return Outcome.ROLLED_BACK, 0, message
        return Outcome.INTERRUPTED, 3, f"{note}: the rollback never moved the traffic"
    compensation = (
        Compensation.from_dict(record.compensation)
        if record.compensation is not None
        else _legacy_compensation(record, service, platform)
    )
    if compensation is None:
        return Outcome.INTERRUPTED, 3, f"{note}: nothing was changed on the platform"
    with shielded():
        changed = run_compensation(platform, service, compensation)
    done = "" if changed else " (it was already so)"
    if record.stage == Stage.DONE:
        message = f"{note}: it was verified; finished it, {revision} serves 100%{done}"
        return Outcome.SUCCEEDED, 0, message
    return (
        Outcome.INTERRUPTED,
        3,
        f"{note}: {revision} was never verified; " + (compensation.describe() + done),
    )


#: the stages before any change: a record killed in one has nothing to undo
_BEFORE_CHANGES = (Stage.PLAN, Stage.PREFLIGHT, Stage.CURRENT_HEALTH)


def _legacy_compensation(
    record: DeployRecord, service: str, platform: Platform
) -> Compensation | None:
    """The compensation of a record written by a rollsafe that did not journal them: the
    previous split, the tags on the service except the candidate's and its revision's."""
    if record.revision is None or record.stage in _BEFORE_CHANGES:
        return None
    current = platform.get_service(service)
    if current is None:
        return None
    tags = {t: r for t, r in current.tags().items() if r != record.revision}
    if record.stage == Stage.DONE:
        return Compensation.restore({record.revision: 100}, tags)
    if not record.previous_split:
        return None  # such a first deploy was never undone: do not start guessing now
    return Compensation.restore(record.previous_split, tags)
