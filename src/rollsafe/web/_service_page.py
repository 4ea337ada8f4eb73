"""A service's page: its state and uptime, the response-time and error-rate chart over
24 h, 7 d or 30 d with deploy and rollback markers, error rate per revision, the deploy
journal, the last drift findings and its incidents, each linked to its report.

The chart's text alternative is its ``<title>`` plus the markers table under it: every
deploy and rollback in the window in words. Range links (``?range=7d``) work without JS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollsafe.web._overview import alerts_text, deploy_text
from rollsafe.web._svg import chart, day_bar
from rollsafe.web.model import Marker, ServiceDetail
from rollsafe.web.pages import Frame, document, e, pct, state_cell, time_el

__all__ = ["RANGES", "render_service"]

#: range -> (label, seconds)
RANGES: dict[str, tuple[str, float]] = {
    "24h": ("last 24 hours", 86400.0),
    "7d": ("last 7 days", 7 * 86400.0),
    "30d": ("last 30 days", 30 * 86400.0),
}


def _table(ident: str, caption: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cols = "".join(f'<th scope="col">{e(h)}</th>' for h in head)
    body = "".join(
        "<tr>"
        + f'<th scope="row">{row[0]}</th>'
        + "".join(f"<td>{c}</td>" for c in row[1:])
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="w"><table id="{ident}"><caption>{e(caption)}</caption>'
        f"<thead><tr>{cols}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _section(ident: str, title: str, body: str) -> str:
    return (
        f'<section aria-labelledby="h-{ident}"><h2 id="h-{ident}">{e(title)}</h2>{body}</section>'
    )


def _markers(markers: Sequence[Marker]) -> str:
    if not markers:
        return "<p>No deploy or rollback in this window.</p>"
    rows = [
        [
            e(m.kind),
            time_el(m.at),
            f"<code>{e(m.deploy_id)}</code>",
            e(m.label),
            e(m.outcome or "-"),
        ]
        for m in markers
    ]
    return _table(
        "markers",
        "Deploys and rollbacks on the chart",
        ["Kind", "When", "Deploy", "What", "Outcome"],
        rows,
    )


def _chart(detail: ServiceDetail, range_key: str, now: float) -> str:
    label, span = RANGES[range_key]
    start = now - span
    points = detail.charts.get(range_key, ())
    shown = [m for m in detail.markers if start <= m.at <= now]
    links = " ".join(
        f'<a href="?range={key}" aria-current="true">{key}</a>'
        if key == range_key
        else f'<a href="?range={key}">{key}</a>'
        for key in RANGES
    )
    svg = chart(
        points,
        shown,
        label=f"Response time and error rate, {label}",
        range_key=range_key,
        start=start,
        end=now,
    )
    return (
        f'<nav aria-label="Chart range">Range: {links}</nav>'
        f"<figure>{svg}<figcaption>Response time (line, top) and error rate of probes (bars, "
        f"bottom), {e(label)}; deploys are solid lines, rollbacks dashed.</figcaption></figure>"
        + _markers(shown)
    )


def _revisions(revisions: dict[str, dict[str, Any]]) -> str:
    if not revisions:
        return "<p>No probe recorded a revision in the last 24 hours.</p>"
    rows = [
        [
            f"<code>{e(name)}</code>",
            e(r.get("total", 0)),
            e(r.get("failed", 0)),
            pct(r.get("error_rate")),
        ]
        for name, r in sorted(revisions.items())
    ]
    return _table(
        "revisions",
        "Error rate per revision over the last 24 hours (probes)",
        ["Revision", "Probes", "Failed", "Error rate"],
        rows,
    )


def _journal(records: Sequence[dict[str, Any]]) -> str:
    if not records:
        return "<p>No deploy recorded.</p>"
    rows = []
    for r in records:
        checks = str(r.get("checks") or "?")
        if r.get("forced") and checks != "forced":
            checks += ", forced"
        if r.get("reason"):
            checks += f" (reason: {r['reason']})"
        rows.append(
            [
                f"<code>{e(r.get('id', '?'))}</code>",
                time_el(r.get("started")),
                e(r.get("user") or "?"),
                f"<code>{e(r.get('revision') or '-')}</code>",
                e(checks),
                e(r.get("outcome") or "in progress"),
                e(r.get("message") or ""),
            ]
        )
    return _table(
        "journal",
        "The deploy journal, newest first",
        ["Deploy", "Started", "By", "Revision", "Checks", "Outcome", "Message"],
        rows,
    )


def _drift(detail: ServiceDetail) -> str:
    if detail.drift_at is None:
        return (
            "<p>No drift run recorded yet (<code>rollsafe drift</code> or the monitor "
            "records one).</p>"
        )
    when = f"<p>Last drift run: {time_el(detail.drift_at)}.</p>"
    if not detail.drift:
        return when + "<p>No drift found.</p>"
    rows = [
        [
            f"<code>{e(f.get('key') or '-')}</code>",
            e(f.get("kind", "?")),
            e(f.get("severity", "?")),
            e(f.get("message", "")),
        ]
        for f in detail.drift
    ]
    return when + _table(
        "drift", "Drift findings of the last run", ["Key", "Kind", "Severity", "Finding"], rows
    )


def _incidents(incidents: Sequence[dict[str, Any]]) -> str:
    if not incidents:
        return '<ul id="incidents"></ul><p>No incident recorded.</p>'
    items = "".join(
        f'<li data-incident="{e(i["id"])}"><a href="/incidents/{e(i["id"])}">{e(i["id"])}</a>: '
        f"{e(i.get('title', ''))}</li>"
        for i in incidents
    )
    return f'<ul id="incidents">{items}</ul>'


def render_service(frame: Frame, detail: ServiceDetail, range_key: str, now: float) -> str:
    """A service's page, a whole HTML document."""
    status = detail.status
    uptime = "".join(
        f'<tr><th scope="row">{w}</th><td class="n">{pct(status.uptime.get(w))}</td></tr>'
        for w in ("24h", "7d", "30d", "90d")
    )
    traffic = ", ".join(
        f"<code>{e(t.get('revision') or '?')}</code> {e(t.get('percent', 0))}%"
        + (f" (tag {e(t['tag'])})" if t.get("tag") else "")
        for t in status.traffic
    )
    head = (
        f'<div data-service="{e(status.name)}"><h1>{e(status.name)}</h1>'
        f"<p>State: {state_cell(status.state, 'span')}</p></div>"
        f'<div class="w"><table id="uptime"><caption>Share of probes that passed</caption>'
        f'<thead><tr><th scope="col">Window</th><th scope="col">Uptime</th></tr></thead>'
        f"<tbody>{uptime}</tbody></table></div>"
        f"<p>Last 90 days: {day_bar(status.days)}</p>"
        f"<p>Serving: {traffic or '-'}</p>"
        f"<p>Last deploy: {deploy_text(status.last_deploy)}</p>"
        f"<p>Open alerts: {alerts_text(status.alerts)}</p>"
    )
    body = (
        head
        + _section("chart", "Response time and error rate", _chart(detail, range_key, now))
        + _section("rev", "Error rate per revision", _revisions(detail.revisions))
        + _section("journal", "Deploy journal", _journal(detail.journal))
        + _section("drift", "Drift", _drift(detail))
        + _section("inc", "Incidents", _incidents(detail.incidents))
    )
    return document(frame, f"{status.name} in {frame.env}: {status.state.label}", body)
