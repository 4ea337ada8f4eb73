"""Reconciling deploys that were killed: traffic never stays on an unverified revision."""

from __future__ import annotations

from rollsafe.deploy.events import DeployEvent, DeployListener
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.platforms import Platform, PlatformError
from rollsafe.state.journal import DeployJournal

__all__ = ["reconcile"]

_CANDIDATE = "candidate"
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

    A deploy that reached ``done`` was verified: finish it (100% to its revision, tag off).
    Any earlier stage: its revision is unverified, so traffic goes back to the split that
    served before it started, and the candidate tag is removed. A killed ``rollsafe
    rollback`` is closed as it stands: its target was chosen by a human, and the split
    before it is the one the human wanted to leave.
    """
    actions: list[str] = []
    for record in reversed(journal.interrupted(env.name, service)):
        try:
            current = platform.get_service(service)
        except PlatformError as exc:
            actions.append(f"deploy {record.id}: cannot reconcile yet ({exc})")
            continue
        revision = record.revision
        note = f"deploy {record.id} (killed during {record.stage})"
        outcome, code = "interrupted", 3
        if current is None or revision is None:
            message = f"{note}: nothing was changed on the platform"
        elif record.checks == _MANUAL_ROLLBACK:
            # a rollback a human asked for: moving the traffic back would undo it
            if current.split() == {revision: 100}:
                outcome, code = "rolled-back", 0
                message = f"{note}: the rollback had moved the traffic; {revision} serves 100%"
            else:
                message = f"{note}: the rollback never moved the traffic; nothing to undo"
        elif record.stage == "done":
            platform.set_traffic(service, {revision: 100}, _other_tags(current.tags(), revision))
            outcome, code = "succeeded", 0
            message = f"{note}: it was verified; finished it, {revision} serves 100%"
        else:
            touched = revision in current.split() or current.tags().get(_CANDIDATE) == revision
            if touched and record.previous_split:
                tags = _other_tags(current.tags(), revision)
                platform.set_traffic(service, record.previous_split, tags)
                back = ", ".join(f"{r} {p}%" for r, p in record.previous_split.items())
                message = f"{note}: {revision} was never verified; traffic back on {back}"
            elif touched:
                message = f"{note}: {revision} was never verified and nothing served before it"
            else:
                message = f"{note}: {revision} never got traffic; nothing to undo"
        journal.finish(record, outcome, code, f"reconciled: {message}")
        actions.append(message)
        if listener is not None:
            listener(DeployEvent("info", "reconcile", message))
    return actions


def _other_tags(tags: dict[str, str], revision: str) -> dict[str, str]:
    return {t: r for t, r in tags.items() if t != _CANDIDATE and r != revision}
