"""The incidents list and one incident's page: ``rollsafe why``'s HTML report of the
episode's window inside the status page's frame (``<article id="report">``), or, when
the report cannot be built here, the episode and the command that builds it."""

from __future__ import annotations

from collections.abc import Sequence

from rollsafe.incidents.model import Episode
from rollsafe.web.pages import Frame, document, e, service_href, time_el

__all__ = ["render_incident", "render_incidents", "report_body"]


def report_body(html: str) -> str:
    """The inside of the report document's ``<main>`` (its own frame, style and CSP are
    the status page's here)."""
    start = html.find("<main>")
    end = html.rfind("</main>")
    if start < 0 or end < start:
        return html
    return html[start + len("<main>") : end].strip()


def _span(episode: Episode) -> str:
    end = "going on" if episode.end is None else time_el(episode.end, seconds=True)
    return f"{time_el(episode.start, seconds=True)} to {end}"


def _services(episode: Episode) -> str:
    return ", ".join(f'<a href="{e(service_href(s))}">{e(s)}</a>' for s in episode.services)


def render_incidents(frame: Frame, incidents: Sequence[Episode]) -> str:
    """Every episode recorded, newest first, each linked to its report."""
    if incidents:
        items = "".join(
            f'<li data-incident="{e(i.id)}"><a href="/incidents/{e(i.id)}">{e(i.id)}</a>: '
            f'{e(i.title)}<br><span class="mu">{_span(i)}; {e(", ".join(i.kinds))}; '
            f"services: {_services(i)}</span></li>"
            for i in incidents
        )
        body = f'<ul id="incidents">{items}</ul>'
    else:
        body = '<ul id="incidents"></ul><p>No incident recorded.</p>'
    return document(
        frame,
        f"Incidents in {frame.env}",
        f"<h1>Incidents in {e(frame.env)}</h1><p>An incident is an alert from firing to "
        "resolve, a failed or rolled-back deploy, or a run of failing answers; those of one "
        f"service that overlap are one.</p>{body}",
        current="/incidents",
    )


def render_incident(
    frame: Frame, episode: Episode, report_html: str | None, problem: str | None
) -> str:
    """One incident: its report, or the episode and why the report is missing."""
    if report_html is not None:
        article = f'<article id="report">{report_body(report_html)}</article>'
        links = (
            f'<p class="mu">This report as <a href="/incidents/{e(episode.id)}?format=markdown">'
            f'Markdown</a> or <a href="/incidents/{e(episode.id)}?format=json">JSON</a>.</p>'
        )
        return document(frame, episode.title, article + links)
    why = f" ({e(problem)})" if problem else ""
    body = (
        f'<article id="report"><h1>{e(episode.title)}</h1>'
        f"<p>{e(episode.id)}: {_span(episode)}; {e(', '.join(episode.kinds))}; "
        f"services: {_services(episode)}.</p>"
        f"<p>The report could not be built here{why}. Build it where the environment's "
        f"Google Cloud can be read: <code>rollsafe why --env {e(frame.env)} --incident "
        f"{e(episode.id)}</code></p></article>"
    )
    return document(frame, episode.title, body)
