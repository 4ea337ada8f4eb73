"""The deploy journal's side: who deployed what, with which checks, and how it ended.

Every record of the services that overlaps the window (a deploy, a rollback, the monitor's
automatic rollback, a broken lock) gives one ``deploy`` evidence (``journal:ID/outcome``)
and one ``stage`` evidence per stage (``journal:ID/STAGE``, ``#2`` on a repeated stage).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollsafe.incidents._gather import Pile, reading
from rollsafe.incidents.model import EvidenceKind
from rollsafe.state.base import StateStore
from rollsafe.state.records import DeployRecord

__all__ = ["MONITOR_REASON", "add_journal", "is_by_monitor", "records_in"]

#: how the monitor's automatic rollback starts its reason (``monitor.rollback``)
MONITOR_REASON = "monitor:"
#: records read per service: the newest, then those in the window are kept
_LIMIT = 500


def is_by_monitor(record: DeployRecord) -> bool:
    """Whether the monitor's automatic rollback wrote ``record``."""
    return record.checks == "rollback" and (record.reason or "").startswith(MONITOR_REASON)


def records_in(
    store: StateStore, env: str, service: str, since: float, until: float, now: float
) -> list[DeployRecord]:
    """The records of ``service`` whose [started, finished or ``now``] overlaps the window,
    oldest first (dry runs left out: they changed nothing)."""
    found = []
    for record in store.list_records(env, service, _LIMIT):
        end = record.finished if record.finished is not None else now
        if record.started <= until and end >= since and record.outcome != "dry-run":
            found.append(record)
    return sorted(found, key=lambda r: (r.started, r.id))


def _deploy_excerpt(record: DeployRecord) -> str:
    what = "rollback" if record.checks == "rollback" else "deploy"
    head = f"{what} {record.id} of {record.service}"
    if record.revision:
        head += f" ({record.revision})"
    head += f" by {record.user}@{record.host}"
    forced = record.forced and record.checks != "forced"
    checks = f"checks {record.checks}" + (", forced" if forced else "")
    if record.reason:
        checks += f', reason "{record.reason}"'
    outcome = record.outcome or "still running"
    end = f"{outcome}" + (f" (exit {record.exit_code})" if record.exit_code is not None else "")
    if record.message:
        end += f": {record.message}"
    return f"{head}; {checks}; {end}"


def _deploy_data(record: DeployRecord) -> dict[str, Any]:
    return {
        "deploy_id": record.id,
        "service": record.service,
        "revision": record.revision,
        "previous_revision": record.previous_revision,
        "user": record.user,
        "host": record.host,
        "ci_url": record.ci_url,
        "git_commit": record.git_commit,
        "checks": record.checks,
        "forced": record.forced or record.checks == "forced",
        "reason": record.reason,
        "outcome": record.outcome,
        "exit_code": record.exit_code,
        "message": record.message,
        "started": record.started,
        "finished": record.finished,
        "rollback": record.rollback,
        "by_monitor": is_by_monitor(record),
    }


def _stage_excerpt(name: str, stage: dict[str, Any]) -> str:
    ok = stage.get("ok")
    state = "ok" if ok else ("failed" if ok is False else "running")
    took = stage.get("seconds")
    text = f"{name} {state}" + (f" in {took:.3f} s" if isinstance(took, int | float) else "")
    detail = stage.get("detail")
    return f"{text}: {detail}" if detail else text


def _add_record(record: DeployRecord, pile: Pile) -> None:
    pile.add(
        EvidenceKind.DEPLOY,
        record.finished if record.finished is not None else record.started,
        f"journal:{record.id}/outcome",
        _deploy_excerpt(record),
        _deploy_data(record),
    )
    pile.mention(record.service, record.revision)
    pile.mention(record.service, record.previous_revision)
    seen: dict[str, int] = {}
    for stage in record.stages:
        name = str(stage.get("stage") or "?")
        seen[name] = seen.get(name, 0) + 1
        suffix = f"#{seen[name]}" if seen[name] > 1 else ""
        started = stage.get("started")
        pile.add(
            EvidenceKind.STAGE,
            float(started) if isinstance(started, int | float) else None,
            f"journal:{record.id}/{name}{suffix}",
            _stage_excerpt(name, stage),
            {
                "deploy_id": record.id,
                "service": record.service,
                "stage": name,
                "started": started,
                "seconds": stage.get("seconds"),
                "ok": stage.get("ok"),
                "detail": stage.get("detail") or None,
            },
        )


def add_journal(store: StateStore, env: str, services: Sequence[str], pile: Pile) -> None:
    """``deploy`` and ``stage`` evidence for every record of ``services`` in the window."""
    for service in services:
        with reading(pile, f"the deploy journal of {service} ({store.location})"):
            for record in records_in(store, env, service, pile.since, pile.until, pile.now):
                _add_record(record, pile)
