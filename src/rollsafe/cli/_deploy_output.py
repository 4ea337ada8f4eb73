"""What `deploy`, `rollback` and `history` print: the JSON document and the history text.

JSON mode writes one document to stdout and nothing else (progress goes to stderr). No
value leaves here: secrets appear as ``secret:version``, findings as the check's own JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Listeners", "StageLog", "deploy_document", "dump", "history_lines"]


def _kind(event: Any) -> str:
    """An event's kind as text (a plain string or a string enum)."""
    kind = event.kind
    return str(getattr(kind, "value", kind))


@dataclass
class StageLog:
    """A listener that keeps each finished stage: name, ok, seconds, detail."""

    stages: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, event: Any) -> None:
        kind = _kind(event)
        if kind not in ("ok", "fail", "skip"):
            return
        stage = str(getattr(event.stage, "value", event.stage))
        seconds = round(event.seconds, 3) if event.seconds is not None else 0.0
        self.stages.append(
            {
                "name": stage,
                "ok": kind != "fail",  # a skipped stage did not fail; its detail says why
                "seconds": seconds,
                "detail": event.detail or "",
            }
        )


class Listeners:
    """Calls every listener with each event (the stage printer and the stage log)."""

    def __init__(self, *listeners: Any) -> None:
        self.listeners = listeners

    def __call__(self, event: Any) -> None:
        for listener in self.listeners:
            listener(event)


def _plan(plan: Any) -> dict[str, Any] | None:
    if plan is None:
        return None
    spec = plan.spec
    serving = plan.serving_revision.name if plan.serving_revision else None
    return {
        "service": spec.service,
        "revision": spec.revision,
        "image": spec.image,
        "secrets": {name: f"{ref.secret}:{ref.version}" for name, ref in spec.secrets.items()},
        "serving_revision": serving,
        "previous_split": dict(plan.previous_split),
    }


def _stage_list(result: Any, log: StageLog) -> list[dict[str, Any]]:
    """The stages as they ran: from the events, else from the journal record, else (a
    rollback that reports no stages) the rollback itself as one stage."""
    if log.stages:
        return log.stages
    record = result.record
    if record is not None and record.stages:
        return [
            {
                "name": s.get("stage", ""),
                "ok": bool(s.get("ok", False)),
                "seconds": s.get("seconds"),
                "detail": s.get("detail", ""),
            }
            for s in record.stages
        ]
    rollback = result.rollback
    if rollback is None:
        return []
    seconds = round(rollback.seconds, 3) if rollback.seconds is not None else None
    return [{"name": "rollback", "ok": rollback.ok, "seconds": seconds, "detail": rollback.error}]


def deploy_document(result: Any, stages: StageLog) -> dict[str, Any]:
    """The ``--format json`` document of ``deploy`` and ``rollback``."""
    record = result.record
    return {
        "result": {
            "exit_code": result.exit_code,
            "outcome": str(getattr(result.outcome, "value", result.outcome)),
            "message": result.message,
            "hint": result.hint,
        },
        "deploy_id": record.id if record is not None else None,
        "stages": _stage_list(result, stages),
        "plan": _plan(result.plan),
        "check": result.report.to_dict() if result.report is not None else None,
        "rollback": result.rollback.to_dict() if result.rollback is not None else None,
    }


def dump(document: dict[str, Any]) -> str:
    """The document as printed: indented JSON and a newline."""
    return json.dumps(document, indent=2) + "\n"


def _findings(counts: dict[str, Any]) -> str:
    shown = [f"{n} {severity}" for severity, n in counts.items() if n]
    return ", ".join(shown) if shown else ("none" if counts else "not checked")


def _stages(stages: list[dict[str, Any]]) -> str:
    parts = []
    for s in stages:
        seconds = s.get("seconds")
        timing = f" {seconds:.2f} s" if isinstance(seconds, int | float) else " (running)"
        mark = "" if s.get("ok", True) else " FAILED"
        parts.append(f"{s.get('stage', '?')}{timing}{mark}")
    return ", ".join(parts) or "-"


def _rollback(rollback: dict[str, Any] | None) -> str | None:
    if not rollback:
        return None
    if not rollback.get("ok"):
        return f"failed: {rollback.get('error') or 'unknown error'}"
    if rollback.get("deleted"):
        where = "deleted the service this deploy created"
    else:
        where = ", ".join(f"{rev} {pct}%" for rev, pct in rollback.get("to", {}).items())
        where = f"to {where or 'nothing'}"
    seconds = rollback.get("seconds")
    timing = f" in {seconds:.2f} s" if isinstance(seconds, int | float) else ""
    return f"{where}{timing}{', verified' if rollback.get('verified') else ''}"


def history_lines(records: list[Any], gone: Collection[str] = ()) -> list[str]:
    """``rollsafe history`` as text: one block per deploy, newest first.

    Who (user, git commit), what (revision, image), checks with the reason, findings
    counts, stage timings, outcome and rollback, as the README promises. ``gone``: ids of
    attempts with no outcome whose process is gone (not running: awaiting reconcile).
    """
    lines: list[str] = []
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started))
        if r.outcome is None and r.id in gone:
            outcome = f"interrupted during {r.stage}, not reconciled yet"
        else:
            outcome = r.outcome or f"running ({r.stage})"
        code = f" (exit {r.exit_code})" if r.exit_code is not None else ""
        lines.append(f"{r.id}  {r.service}  {outcome}{code}  {when}")
        # a shared journal holds many machines' deploys: where each ran, and its CI job
        ci = f", {r.ci_url}" if r.ci_url else ""
        lines.append(f"  who:      {r.user} on {r.host} at commit {r.git_commit or '-'}{ci}")
        previous = f" (previous {r.previous_revision})" if r.previous_revision else ""
        lines.append(f"  what:     revision {r.revision or '-'}, image {r.image or '-'}{previous}")
        checks = r.checks + (f" (reason: {r.reason})" if r.reason else "")
        lines.append(f"  checks:   {checks}; findings: {_findings(r.findings)}")
        lines.append(f"  stages:   {_stages(r.stages)}")
        rollback = _rollback(r.rollback)
        if rollback:
            lines.append(f"  rollback: {rollback}")
        if r.message:
            lines.append(f"  message:  {r.message}")
        lines.append("")
    return lines
