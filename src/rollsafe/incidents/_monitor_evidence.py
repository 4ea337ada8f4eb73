"""The monitor's side: the alerts it fired and resolved, and its probes' results.

Read from the state store the monitor writes to (``rollsafe.monitor.history`` and
``rollsafe.monitor.samples``): one ``alert`` evidence per event (``monitor:ALERT/firing@T``,
``monitor:ALERT/resolved@T``) and one ``probe`` evidence per service that was probed in the
window (``monitor:probes/SERVICE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollsafe.incidents._gather import Pile, reading, when
from rollsafe.incidents.model import EvidenceKind, iso
from rollsafe.state.base import StateStore

__all__ = ["add_monitor", "alert_source"]


def alert_source(alertname: str, event: str, at: float) -> str:
    """``monitor:ALERT/EVENT@RFC3339``, as the report cites an alert's event."""
    return f"monitor:{alertname}/{event}@{iso(at)}"


def _alert_data(record: Any, event: str, action: str | None) -> dict[str, Any]:
    return {
        "service": record.service,
        "alertname": record.alertname,
        "event": event,
        "starts_at": record.starts_at,
        "ends_at": record.ends_at,
        "severity": record.severity,
        "summary": record.summary,
        "revision": record.revision,
        "cites": list(record.evidence),
        "action": action,
    }


def _add_alerts(store: StateStore, env: str, services: Sequence[str], pile: Pile) -> None:
    from rollsafe.monitor.history import read_alert_history

    wanted = set(services)
    for record in read_alert_history(store, env, since=pile.since, until=pile.until):
        if record.service not in wanted:
            continue
        pile.mention(record.service, record.revision)
        fired = record.fired_at or record.starts_at
        text = f"{record.alertname} firing for {record.service}: {record.summary}"
        if record.action:
            text += f" Action: {record.action}"
        pile.add(
            EvidenceKind.ALERT,
            fired,
            alert_source(record.alertname, "firing", fired),
            text,
            _alert_data(record, "firing", record.action),
        )
        if record.ends_at is not None and record.ends_at <= pile.until:
            pile.add(
                EvidenceKind.ALERT,
                record.ends_at,
                alert_source(record.alertname, "resolved", record.ends_at),
                f"{record.alertname} resolved for {record.service} after "
                f"{record.ends_at - record.starts_at:.1f} s",
                _alert_data(record, "resolved", None),
            )


def _add_probes(store: StateStore, env: str, services: Sequence[str], pile: Pile) -> None:
    from rollsafe.monitor.samples import read_probe_buckets

    for service in services:
        buckets = read_probe_buckets(store, env, service, since=pile.since, until=pile.until)
        total = sum(b.total for b in buckets)
        if not total:
            continue
        failed = sum(b.failed for b in buckets)
        statuses: dict[str, int] = {}
        for bucket in buckets:
            for status, count in bucket.statuses.items():
                statuses[str(status)] = statuses.get(str(status), 0) + count
        firsts = [b.first_failed for b in buckets if b.first_failed is not None]
        lasts = [b.last_failed for b in buckets if b.last_failed is not None]
        first, last = (min(firsts) if firsts else None), (max(lasts) if lasts else None)
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
        text = f"{failed} of {total} probes of {service} failed"
        if first is not None:
            text += f" between {when(first)} and {when(last)}"
        pile.add(
            EvidenceKind.PROBE,
            first if first is not None else min(float(b.start) for b in buckets),
            f"monitor:probes/{service}",
            f"{text} (answers {shown})",
            {
                "service": service,
                "total": total,
                "failed": failed,
                "first_failed": first,
                "last_failed": last,
                "statuses": statuses,
            },
        )


def add_monitor(store: StateStore, env: str, services: Sequence[str], pile: Pile) -> None:
    """``alert`` and ``probe`` evidence of ``services`` in the window."""
    with reading(pile, f"the monitor's alert history ({store.location})"):
        _add_alerts(store, env, services, pile)
    with reading(pile, f"the monitor's probe results ({store.location})"):
        _add_probes(store, env, services, pile)
