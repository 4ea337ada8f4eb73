"""The status page's shared markup: the document frame (header, indicator, stale banner,
auto-refresh control, skip link) and the small pieces every page uses (times, states,
percentages). The pages themselves are in ``_overview``, ``_service_page`` and
``_incident_pages``; ``app.StatusApp`` serves them.

Everything recorded is escaped with ``html.escape``. A state is an icon (decorative) and
its label in words; a time is ``<time datetime title="... UTC">`` in UTC, which the script
rewrites to the viewer's zone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlencode

from rollsafe.web._assets import CSS, INDICATOR_ICONS, META_CSP, SCRIPT, STATE_ICONS
from rollsafe.web.model import ServiceState, Staleness

__all__ = [
    "Frame",
    "document",
    "e",
    "iso",
    "pct",
    "service_href",
    "state_cell",
    "state_text",
    "time_el",
]


def e(text: object) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return escape(str(text), quote=True)


def iso(moment: float) -> str:
    """``2026-12-06T10:21:05Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def time_el(moment: float | None, *, seconds: bool = False, title: bool = True) -> str:
    """A ``<time>`` in UTC with the full UTC time on hover; ``-`` for no time.

    ``title=False`` (the overview's rows, a thousand of them) leaves the title to the
    script, which sets it when it rewrites the text to local time; without the script the
    text is in UTC already."""
    if moment is None:
        return "-"
    stamp = iso(moment)
    shown = f"{stamp[:10]} {stamp[11 : 19 if seconds else 16]} UTC"
    hover = f' title="{stamp[:10]} {stamp[11:19]} UTC"' if title else ""
    return f'<time datetime="{stamp}"{hover}>{shown}</time>'


def pct(share: float | None) -> str:
    """``99.98%``; ``n/a`` when nothing was measured."""
    if share is None:
        return "n/a"
    text = f"{share * 100:.2f}"
    return ("100" if text == "100.00" else text) + "%"


def state_text(state: ServiceState) -> str:
    """The icon and the label of ``state`` (inside a cell or a heading)."""
    icon = STATE_ICONS[state.value][0]
    return f'<i aria-hidden="true">{icon}</i>{e(state.label)}'


def state_cell(state: ServiceState, tag: str = "td") -> str:
    """A state cell, ``data-state`` on it (the script updates it in place)."""
    return f'<{tag} data-state="{state.value}">{state_text(state)}</{tag}>'


def service_href(name: str) -> str:
    return "/services/" + quote(name, safe="")


@dataclass(frozen=True)
class Frame:
    """What every page's frame shows: the environment, its indicator and staleness, the
    auto-refresh period and whether it is paused (``?refresh=off``)."""

    env: str
    indicator: tuple[str, str]
    staleness: Staleness
    interval: float
    refresh: bool = True
    #: the request's other query parameters, kept by the pause link
    query: Mapping[str, str] | None = None


_NAV = (("/", "Overview"), ("/incidents", "Incidents"), ("/api/v1/summary", "JSON API"))


def _stale(staleness: Staleness) -> str:
    if not staleness.stale:
        return ""
    since = f"since {time_el(staleness.last_write)}" if staleness.last_write is not None else "yet"
    return f'<p id="stale" role="alert">The monitor has not written {since}: data may be stale.</p>'


def _pause_link(frame: Frame) -> str:
    params = dict(frame.query or {})
    params.pop("refresh", None)
    if frame.refresh:
        params["refresh"] = "off"
        text = "Pause auto-refresh"
    else:
        text = "Resume auto-refresh"
    href = "?" + urlencode(params)
    return f'<noscript><a id="pause-link" href="{e(href)}">{text}</a></noscript>'


def document(frame: Frame, title: str, body: str, *, current: str = "") -> str:
    """The whole HTML document around ``body`` (the inside of ``<main>``)."""
    period = max(1, round(frame.interval))
    refresh = (
        f'<noscript><meta http-equiv="refresh" content="{period}"></noscript>'
        if frame.refresh
        else ""
    )
    here = ' aria-current="page"'
    nav = "".join(
        f'<a href="{href}"{here if href == current else ""}>{text}</a>' for href, text in _NAV
    )
    indicator, description = frame.indicator
    button = (
        f'<button id="pause" type="button" aria-pressed="{"false" if frame.refresh else "true"}"'
        f" hidden>{'Pause' if frame.refresh else 'Resume'} auto-refresh</button>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{META_CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        # no icon to fetch: the browser asks for /favicon.ico otherwise
        '<link rel="icon" href="data:,">'
        f"{refresh}<title>{e(title)}</title><style>{CSS}</style></head>"
        f'<body data-interval="{period}" data-env="{e(frame.env)}">'
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header><p class="site">rollsafe status: {e(frame.env)}</p>'
        f'<nav aria-label="Status page">{nav}</nav>'
        f'<p id="indicator" data-indicator="{e(indicator)}"><i aria-hidden="true">'
        f"{INDICATOR_ICONS.get(indicator, '?')}</i>{e(description)}</p>"
        f"{button}{_pause_link(frame)}</header>"
        f'<main id="main" tabindex="-1">{_stale(frame.staleness)}{body}'
        '<p id="live" class="vh" aria-live="polite"></p></main>'
        f'<footer class="mu">Read-only. Times in UTC; with JavaScript, in your time zone '
        f"(UTC on hover). Refreshes every {period} s.</footer>"
        f"<script>{SCRIPT}</script></body></html>"
    )
