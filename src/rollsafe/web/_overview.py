"""The overview: every service of the environment in one table (state, uptime, 90-day
bar, response-time sparkline, serving revisions, last deploy, open alerts) and the
recent incidents.

One row per service, at 1,000 services still a page of a few hundred KB (and far less
gzipped): the cells are bare text, the charts small SVG, no inline style anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollsafe.incidents.model import Episode
from rollsafe.web._svg import day_bar, sparkline
from rollsafe.web.model import ServiceState, ServiceStatus
from rollsafe.web.pages import Frame, document, e, pct, service_href, state_cell, time_el

__all__ = ["RowCache", "alerts_text", "deploy_text", "render_overview"]

_WINDOWS = ("24h", "7d", "30d", "90d")
_RECENT = 5


def _traffic(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "-"
    parts = []
    for row in rows:
        text = f"{e(row.get('revision') or '?')} {e(row.get('percent', 0))}%"
        if row.get("tag"):
            text += f" ({e(row['tag'])})"
        parts.append(text)
    return "<br>".join(parts)


def deploy_text(deploy: dict[str, Any] | None, *, title: bool = True) -> str:
    """Who, when, its checks (passed, skipped, forced) with the reason, and the outcome."""
    if not deploy:
        return "none recorded"
    parts = [e(deploy.get("user") or "?"), time_el(deploy.get("when"), title=title)]
    checks = str(deploy.get("checks") or "?")
    if deploy.get("forced") and checks != "forced":
        checks += ", forced"
    text = f"checks {e(checks)}"
    if deploy.get("reason"):
        text += f" (reason: {e(deploy['reason'])})"
    parts.append(text)
    if deploy.get("outcome"):
        parts.append(e(deploy["outcome"]))
    return ", ".join(parts)


def alerts_text(alerts: Sequence[dict[str, Any]]) -> str:
    if not alerts:
        return "none"
    return "<br>".join(
        f"{e(a.get('alertname', '?'))} ({e(a.get('severity', '?'))}, {e(a.get('status', '?'))})"
        for a in alerts
    )


def _row(status: ServiceStatus) -> str:
    # right-aligned by the stylesheet (columns 3-6): no class on a thousand rows
    uptimes = "".join(f"<td>{pct(status.uptime.get(w))}</td>" for w in _WINDOWS)
    return (
        f'<tr data-service="{e(status.name)}"><th scope="row">'
        f'<a href="{e(service_href(status.name))}">{e(status.name)}</a></th>'
        f"{state_cell(status.state)}{uptimes}<td>{day_bar(status.days)}</td>"
        f"<td>{sparkline(status.latency)}</td><td>{_traffic(status.traffic)}</td>"
        f"<td>{deploy_text(status.last_deploy, title=False)}</td>"
        f"<td>{alerts_text(status.alerts)}</td></tr>"
    )


def _counts(services: Sequence[ServiceStatus]) -> str:
    counts = {state: 0 for state in ServiceState}
    for status in services:
        counts[status.state] += 1
    said = ", ".join(f"{n} {state.label.lower()}" for state, n in counts.items() if n)
    return f"<p>{len(services)} services: {said or 'none'}.</p>"


def _recent(incidents: Sequence[Episode]) -> str:
    if not incidents:
        return "<p>No incident recorded.</p>"
    items = "".join(
        f'<li><a href="/incidents/{e(i.id)}">{e(i.id)}</a>: {e(i.title)} '
        f"({time_el(i.start)}{'' if i.end is not None else ', going on'})</li>"
        for i in incidents[:_RECENT]
    )
    return f'<ul>{items}</ul><p><a href="/incidents">All incidents ({len(incidents)})</a></p>'


#: id(row's ServiceStatus) -> (that ServiceStatus, its row's markup)
RowCache = dict[int, tuple[ServiceStatus, str]]


def _rows(services: Sequence[ServiceStatus], cache: RowCache | None) -> str:
    """The table's rows; with ``cache``, a row whose ``ServiceStatus`` is the very object
    of the last render (the read model keeps the rows of unchanged services) is reused,
    and the cache keeps the rows of this render only."""
    if cache is None:
        return "".join(_row(s) for s in services)
    old = dict(cache)
    cache.clear()
    out = []
    for status in services:
        kept = old.get(id(status))
        # the cache holds the object, so its id cannot be reused by another meanwhile
        row = kept[1] if kept is not None and kept[0] is status else _row(status)
        cache[id(status)] = (status, row)
        out.append(row)
    return "".join(out)


def render_overview(
    frame: Frame,
    services: Sequence[ServiceStatus],
    incidents: Sequence[Episode],
    rows: RowCache | None = None,
) -> str:
    """The overview page, a whole HTML document; ``rows`` keeps rendered rows between
    renders (see ``_rows``)."""
    head = "".join(f'<th scope="col">{w}</th>' for w in _WINDOWS)
    table = (
        '<div class="w"><table id="services"><caption>Every service: its state, the share '
        "of probes that passed over 24 hours to 90 days, daily state over 90 days, response "
        "time over 24 hours, serving revisions, last deploy and open alerts</caption>"
        '<thead><tr><th scope="col">Service</th><th scope="col">State</th>'
        f'{head}<th scope="col">Last 90 days</th><th scope="col">Response time</th>'
        '<th scope="col">Serving</th><th scope="col">Last deploy</th>'
        '<th scope="col">Open alerts</th></tr></thead><tbody>'
        + _rows(services, rows)
        + "</tbody></table></div>"
    )
    body = (
        f"<h1>Status of {e(frame.env)}</h1>{_counts(services)}"
        f'<section aria-labelledby="h-svc"><h2 id="h-svc">Services</h2>{table}</section>'
        f'<section aria-labelledby="h-inc"><h2 id="h-inc">Recent incidents</h2>'
        f"{_recent(incidents)}</section>"
    )
    return document(frame, f"{frame.env}: {frame.indicator[1]}", body, current="/")
