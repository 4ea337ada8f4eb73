"""``build_report``: the incident report from one evidence set, deterministic.

The same :class:`EvidenceSet` gives the same report: nothing here reads the clock (``now``
is a parameter; without it the report is dated at the window's end) or depends on the
order of a dict. Impact is measured from the request log counts and the monitor's probes;
status codes are written exactly as they were logged.
"""

from __future__ import annotations

from typing import Any

from rollsafe.incidents._chain_base import d_, ordered
from rollsafe.incidents._text import (
    fired_at,
    id_key,
    ids,
    num,
    plural,
    quote,
    relative,
    seconds,
    statuses_text,
    when,
)
from rollsafe.incidents.chain import Chains, build_chains, split_chains
from rollsafe.incidents.factors import build_lessons
from rollsafe.incidents.model import (
    Episode,
    Evidence,
    EvidenceKind,
    EvidenceSet,
    FactorType,
    Impact,
    IncidentReport,
    TimelineEntry,
)

__all__ = ["build_report", "detection", "resolution", "status_line"]

K = EvidenceKind


def build_report(
    evidence: EvidenceSet, episode: Episode | None = None, *, now: float | None = None
) -> IncidentReport:
    """The report on ``evidence`` (the window of ``episode`` when given).

    Every why, factor, action, timeline entry and impact figure cites ids of
    ``evidence.evidence``; where a chain stops, a gap says what is missing.
    """
    evidence = ordered(evidence)
    chains = build_chains(evidence)
    lessons = build_lessons(evidence, chains)
    impact = measure_impact(evidence)
    report = IncidentReport(
        title=_title(evidence, episode, chains),
        env=evidence.env,
        services=tuple(sorted(evidence.services)),
        since=evidence.since,
        until=evidence.until,
        episode=episode,
        summary="",
        impact=impact,
        timeline=build_timeline(evidence),
        whys=chains.whys,
        gaps=chains.gaps,
        factors=lessons.factors,
        went_well=lessons.went_well,
        actions=lessons.actions,
        evidence=sorted(evidence.evidence, key=lambda e: id_key(e.id)),
        unreadable=sorted(evidence.unreadable),
        generated=now if now is not None else evidence.until,
    )
    report.summary = _summary(report, chains)
    return report


# -- impact ------------------------------------------------------------------------------


def measure_impact(ev: EvidenceSet) -> Impact:
    """Requests on the service URL (tag-URL answers counted apart), probes, statuses."""
    total = failed = tag_failed = 0
    logged: dict[int, int] = {}
    for key in sorted(ev.requests):
        row = ev.requests[key]
        total += int(row.get("total", 0)) - int(row.get("tag_total", 0))
        failed += int(row.get("failed", 0)) - int(row.get("tag_failed", 0))
        tag_failed += int(row.get("tag_failed", 0))
        for status, count in (row.get("statuses") or {}).items():
            if str(status).isdigit() and int(status) >= 500:
                logged[int(status)] = logged.get(int(status), 0) + int(count)
    users = [r for r in ev.by_kind(K.REQUEST) if not d_(r, "tag")]
    tags = [r for r in ev.by_kind(K.REQUEST) if d_(r, "tag")]
    statuses: dict[int, int] = {}
    for item in users:
        status = int(d_(item, "status"))
        statuses[status] = statuses.get(status, 0) + int(d_(item, "count") or 0)
    if not ev.by_kind(K.REQUEST) and failed:
        statuses = logged  # counts without per-status evidence: still as logged
    if not ev.requests:
        failed = sum(int(d_(r, "count") or 0) for r in users)
        tag_failed = sum(int(d_(r, "count") or 0) for r in tags)
    probes = ev.by_kind(K.PROBE)
    moments: list[float] = []
    for item in users:
        moments += [m for m in (num(d_(item, "first")), num(d_(item, "last"))) if m is not None]
    for item in probes:
        for key in ("first_failed", "last_failed"):
            moment = num(d_(item, key))
            if moment is not None:
                moments.append(moment)
    revisions = {str(d_(r, "revision")) for r in ev.by_kind(K.REQUEST) if d_(r, "revision")}
    return Impact(
        first_bad=min(moments, default=None),
        last_bad=max(moments, default=None),
        requests_total=max(total, failed),
        requests_failed=failed,
        probes_total=sum(int(d_(p, "total") or 0) for p in probes),
        probes_failed=sum(int(d_(p, "failed") or 0) for p in probes),
        statuses=dict(sorted(statuses.items())),
        revisions=tuple(sorted(revisions)),
        evidence=ids(ev.by_kind(K.REQUEST), probes),
        tag_failed=tag_failed,
    )


# -- timeline ----------------------------------------------------------------------------


def build_timeline(ev: EvidenceSet) -> list[TimelineEntry]:
    """Every recorded event of the window in time order, each citing its evidence."""
    entries: list[TimelineEntry] = []

    def add(moment: Any, text: str, item: Evidence) -> None:
        value = num(moment)
        if value is not None:
            entries.append(TimelineEntry(value, text, (item.id,)))

    for item in ev.evidence:
        for moment, text in _events(item):
            add(moment, text, item)
    entries.sort(key=lambda t: (t.time, id_key(t.evidence[0]), t.text))
    return entries


def _events(item: Evidence) -> list[tuple[Any, str]]:
    kind, data = item.kind, item.data
    if kind is K.SECRET_VERSION:
        bits = num(data.get("bits"))
        strength = f" (about {bits:.0f} estimated bits)" if bits is not None else ""
        return [
            (
                data.get("created"),
                f"version {data.get('version')} of {data.get('secret')} created{strength}",
            )
        ]
    if kind is K.REVISION:
        origin = f"by deploy {data['deploy_id']}" if data.get("deploy_id") else "outside rollsafe"
        state = "failed" if data.get("failed") else ("ready" if data.get("ready") else "not ready")
        message = quote(data.get("message")) if state != "ready" else None
        return [
            (
                data.get("created"),
                f"revision {data.get('revision')} created {origin}; now {state}"
                + (f": {message}" if message else "")
                + f", traffic {data.get('traffic') or 0}%",
            )
        ]
    if kind is K.DEPLOY:
        return _deploy_events(data)
    if kind is K.STAGE:
        return [(data.get("started"), _stage_text(data))]
    if kind is K.REQUEST:
        where = " on its tag URL" if data.get("tag") else ""
        who = data.get("revision") or data.get("service")
        count = int(data.get("count") or 0)
        events = [(data.get("first"), f"first {data.get('status')} answer from {who}{where}")]
        if count > 1:
            events.append(
                (
                    data.get("last"),
                    f"last {data.get('status')} answer from {who}{where} "
                    f"({plural(count, 'answer')} with {data.get('status')} in all)",
                )
            )
        return events
    if kind is K.LOG:
        return _log_events(data)
    if kind is K.ALERT:
        return _alert_events(item)
    if kind is K.PROBE:
        return [
            (data.get("first_failed"), f"first failing probe of {data.get('service')}"),
            (
                data.get("last_failed"),
                f"last failing probe of {data.get('service')} ({data.get('failed')} of "
                f"{data.get('total')} failed in the window)",
            ),
        ]
    return []  # drift, check, manifest: state now, not events


def _deploy_events(data: dict[str, Any]) -> list[tuple[Any, str]]:
    what = "rollback" if data.get("checks") == "rollback" else "deploy"
    by = (
        " by the monitor"
        if data.get("by_monitor")
        else (f" by {data['user']}" if data.get("user") else "")
    )
    target = f" of {data['revision']}" if data.get("revision") else ""
    checks = f" (checks {data['checks']})" if data.get("checks") and what == "deploy" else ""
    events: list[tuple[Any, str]] = [
        (data.get("started"), f"{what} {data.get('deploy_id')}{target} started{by}{checks}")
    ]
    if data.get("finished") is not None:
        outcome = data.get("outcome") or "ended"
        code = f" (exit {data['exit_code']})" if data.get("exit_code") is not None else ""
        events.append(
            (data.get("finished"), f"{what} {data.get('deploy_id')} ended {outcome}{code}")
        )
    return events


def _stage_text(data: dict[str, Any]) -> str:
    ok = data.get("ok")
    state = "passed" if ok else ("did not pass" if ok is False else "still open")
    took = num(data.get("seconds"))
    text = f"deploy {data.get('deploy_id')}: stage {data.get('stage')} {state}"
    text += f" in {seconds(took)}" if took is not None else ""
    detail = quote(data.get("detail"))
    return text + (f": {detail}" if detail else "")


def _log_events(data: dict[str, Any]) -> list[tuple[Any, str]]:
    who = data.get("revision") or data.get("service")
    count = int(data.get("count") or 1)
    if data.get("exit_code") is not None:
        text = f"{who}: container called exit({data['exit_code']})"
    elif isinstance(data.get("guard"), dict):
        failures = data["guard"].get("failures") or []
        text = (
            f"{who}: the start-up guard refused to start ("
            + "; ".join(f"{f.get('rule')} failed for {f.get('key')}" for f in failures)
            + ")"
        )
    else:
        said = quote(data.get("text"))
        text = f"{who}: {data.get('severity') or 'log'} line" + (f" {said}" if said else "")
    events = [(data.get("first"), text + (f", first of {count}" if count > 1 else ""))]
    if count > 1 and data.get("last") is not None:
        events.append((data.get("last"), text + f", last of {count}"))
    return events


def _alert_events(item: Evidence) -> list[tuple[Any, str]]:
    data = item.data
    name, service = data.get("alertname"), data.get("service")
    if data.get("event") == "resolved":
        moment = data.get("ends_at") or item.time
        action = _acted(data.get("action"))
        return [(moment, f"alert {name} resolved for {service}{action}")]
    summary = quote(data.get("summary"))
    text = f"alert {name} ({data.get('severity')}) fired for {service}" + (
        f": {summary}" if summary else ""
    )
    began = num(data.get("starts_at"))
    fired = fired_at(item)
    if began is not None and fired is not None and fired - began >= 0.001:
        text += f" (failing since {when(began)})"
    return [(fired, text)]


def _acted(action: Any) -> str:
    said = quote(action, 200)
    return f"; the monitor acted: {said}" if said else ""


# -- title and summary ---------------------------------------------------------------------


def _title(ev: EvidenceSet, episode: Episode | None, chains: Chains) -> str:
    parts: list[str] = []
    for symptom in chains.symptoms:
        if symptom.kind == "requests":
            part = f"{symptom.status} answers from {symptom.revision or symptom.service}"
        elif symptom.kind == "verify":
            part = f"deploy of {symptom.revision} rolled back by its verification"
        elif symptom.kind == "probes":
            part = f"{symptom.service} failing its probes"
        elif symptom.kind == "alert":
            part = f"alert on {symptom.service}"
        else:
            part = f"{symptom.revision} not serving"
        if part not in parts:
            parts.append(part)
    services = ", ".join(sorted(ev.services)) or "services"
    what = "; ".join(parts) if parts else "no failure recorded"
    title = f"{services} in {ev.env}: {what}"
    return f"{episode.id}: {title}" if episode else title


def _summary(report: IncidentReport, chains: Chains) -> str:
    impact = report.impact
    sentences: list[str] = []
    if impact.requests_failed:
        share = (
            f" ({impact.requests_failed / impact.requests_total:.1%})"
            if impact.requests_total
            else ""
        )
        sentences.append(
            f"{impact.requests_failed} of {plural(impact.requests_total, 'request')}{share} "
            f"on the service URL were answered with {statuses_text(impact.statuses)} between "
            f"{when(impact.first_bad)} and {when(impact.last_bad)} ({seconds(impact.duration)})"
        )
    elif impact.tag_failed:
        sentences.append(
            f"users were not affected: the {plural(impact.tag_failed, 'failing answer')} "
            "arrived on a tag URL during verification"
        )
    if impact.probes_failed:
        sentences.append(
            f"{impact.probes_failed} of {plural(impact.probes_total, 'probe')} did not pass"
        )
    if impact.revisions:
        sentences.append(f"revisions involved: {', '.join(impact.revisions)}")
    for number, chain in enumerate(split_chains(chains.whys), 1):
        steps = [chain[0].claim, *(w.because for w in chain)]
        sentences.append(f"chain {number}: " + " <- ".join(steps))
    triggers = [f.text for f in report.factors if f.type is FactorType.TRIGGER]
    if triggers:
        sentences.append("trigger: " + "; ".join(triggers))
    for moment in report.went_well:
        sentences.append(moment.text)
    if report.gaps:
        sentences.append(f"{plural(len(report.gaps), 'gap')} in the evidence (see Root Causes)")
    if report.unreadable:
        sentences.append("not read: " + ", ".join(what for what, _ in report.unreadable))
    if not sentences:
        sentences.append("no failure is recorded in the window")
    return ". ".join(s[0].upper() + s[1:] for s in sentences) + "."


# -- detection and resolution (derived, for the renderers) --------------------------------


def detection(report: IncidentReport) -> list[TimelineEntry]:
    """How the trouble was noticed: alerts, failing probes, a deploy's verification."""
    found: list[TimelineEntry] = []
    first = report.impact.first_bad
    for item in report.evidence:
        data = item.data
        if item.kind is K.ALERT and data.get("event") == "firing":
            fired = fired_at(item)
            if fired is None:
                continue
            found.append(
                TimelineEntry(
                    fired,
                    f"the monitor's alert {data.get('alertname')} fired for "
                    f"{data.get('service')}" + relative(fired, first),
                    (item.id,),
                )
            )
        elif item.kind is K.PROBE and num(data.get("first_failed")) is not None:
            found.append(
                TimelineEntry(
                    float(data["first_failed"]),
                    f"the monitor's probes of {data.get('service')} saw the first failure",
                    (item.id,),
                )
            )
        elif item.kind is K.STAGE and data.get("ok") is False and data.get("stage") != "rollback":
            moment = num(data.get("started")) or item.time
            if moment is not None:
                found.append(TimelineEntry(moment, _stage_text(data), (item.id,)))
    return sorted(found, key=lambda t: (t.time, id_key(t.evidence[0])))


def resolution(report: IncidentReport) -> list[TimelineEntry]:
    """What ended it: rollbacks (by a deploy, by hand, by the monitor), alerts resolving,
    later successful deploys."""
    found: list[TimelineEntry] = []
    for item in report.evidence:
        data = item.data
        if item.kind is K.STAGE and data.get("stage") == "rollback":
            took = num(data.get("seconds"))
            start = num(data.get("started")) or item.time
            if start is not None:
                found.append(TimelineEntry(start + (took or 0.0), _stage_text(data), (item.id,)))
        elif item.kind is K.DEPLOY and data.get("outcome") == "succeeded":
            moment = num(data.get("finished")) or item.time
            what = "rollback" if data.get("checks") == "rollback" else "deploy"
            by = " by the monitor" if data.get("by_monitor") else ""
            if moment is not None:
                found.append(
                    TimelineEntry(
                        moment,
                        f"{what} {data.get('deploy_id')}{by} put {data.get('revision')} in service",
                        (item.id,),
                    )
                )
        elif item.kind is K.ALERT and data.get("event") == "resolved":
            moment = num(data.get("ends_at")) or item.time
            if moment is not None:
                action = _acted(data.get("action"))
                found.append(
                    TimelineEntry(
                        moment,
                        f"alert {data.get('alertname')} resolved for {data.get('service')}{action}",
                        (item.id,),
                    )
                )
    return sorted(found, key=lambda t: (t.time, id_key(t.evidence[0])))


def status_line(report: IncidentReport) -> str:
    """``ongoing`` / ``ended at T`` / the window, for the report's Status field."""
    episode = report.episode
    if episode is None:
        return f"report on the window {when(report.since)} to {when(report.until)}"
    if episode.end is None:
        return f"ongoing at {when(report.generated)}"
    return f"ended at {when(episode.end)}"
