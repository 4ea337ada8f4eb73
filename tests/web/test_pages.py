"""The status page's HTML, rendered by ``StatusApp`` over an in-memory read model: what
each page says, its structure (``html.parser``), escaping, caching and gzip."""

from __future__ import annotations

import gzip
import re
from dataclasses import replace

import pytest

from rollsafe.errors import RollsafeError
from rollsafe.incidents import EvidenceSet, build_report
from rollsafe.incidents.model import Episode, IncidentReport
from rollsafe.monitor.server import Request, Response
from rollsafe.web.app import StatusApp
from rollsafe.web.model import ServiceState, Staleness
from tests.web._fake import NOW, FakeStatusData, episode, status, synthetic
from tests.web._html_check import check


def _get(app: StatusApp, path: str, **headers: str) -> Response:
    path, _, query = path.partition("?")
    params: dict[str, list[str]] = {}
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        params.setdefault(key, []).append(value)
    return app.handle(
        Request("GET", path, params, {k.replace("_", "-"): v for k, v in headers.items()})
    )


def _html(app: StatusApp, path: str) -> str:
    response = _get(app, path)
    assert response.status == 200, (path, response.status)
    assert response.content_type == "text/html; charset=utf-8"
    return response.body.decode()


def _app(data: FakeStatusData, **kw: object) -> StatusApp:
    return StatusApp(data, clock=lambda: NOW, **kw)  # type: ignore[arg-type]


def _report(ep: Episode) -> IncidentReport:
    evidence = EvidenceSet(env="staging", services=ep.services, since=ep.start - 600, until=NOW)
    return build_report(evidence, ep, now=NOW)


@pytest.fixture
def data() -> FakeStatusData:
    return FakeStatusData(
        [
            status(
                "backend",
                ServiceState.MAJOR_OUTAGE,
                bad_days=2,
                alerts=(
                    {
                        "alertname": "ServiceDown",
                        "severity": "critical",
                        "status": "firing",
                        "since": NOW - 60,
                        "summary": "down",
                    },
                ),
            ),
            status("frontend"),
            status("worker", ServiceState.DEGRADED_PERFORMANCE),
            status("jobs", ServiceState.PARTIAL_OUTAGE),
        ],
        [episode("backend", ended=False), episode("frontend", start=NOW - 86400)],
    )


def _rows(html: str) -> dict[str, tuple[str, str]]:
    """service -> (data-state, the state cell's text)."""
    found = re.findall(
        r'<tr data-service="([^"]+)">.*?<td data-state="([a-z_]+)"><i aria-hidden="true">'
        r"(.)</i>([^<]+)</td>",
        html,
    )
    return {name: (state, f"{icon} {label}") for name, state, icon, label in found}


def test_the_overview_lists_every_service_with_its_state_in_text_and_icon(
    data: FakeStatusData,
) -> None:
    html = _html(_app(data), "/")
    page = check(html)
    assert _rows(html) == {
        "backend": ("major_outage", "\u2715 Major outage"),
        "frontend": ("operational", "\u2713 Operational"),
        "worker": ("degraded_performance", "! Degraded performance"),
        "jobs": ("partial_outage", "\u25d0 Partial outage"),
    }
    assert (
        '<p id="indicator" data-indicator="critical"><i aria-hidden="true">\u2715</i>'
        "Major System Outage</p>"
    ) in html
    assert (
        "4 services: 1 operational, 1 degraded performance, 1 partial outage, 1 major outage."
        in html
    )
    # uptime, 90-day bar and sparkline per row, each chart with a text alternative
    assert html.count('data-chart="days"') == 4
    assert html.count('data-chart="latency"') == 4
    assert "<td>99.95%</td><td>99.98%</td><td>99.99%</td>" in html
    assert "<title>90 days: 78 operational, 2 partial outage, 10 no data; last bad day" in html
    assert "<title>Response time, 24 h: mean " in html
    assert "backend-00042-abc 100%" in html
    assert "alice, <time datetime=" in html
    assert "checks passed, succeeded" in html
    assert "<td>ServiceDown (critical, firing)</td></tr>" in html
    assert html.count("<td>none</td></tr>") == 3  # the others have no open alert
    # the recent incidents link to their pages
    assert [a["href"] for a in page.attrs("a") if (a.get("href") or "").startswith("/incidents/")]
    assert '<a href="/services/backend">backend</a>' in html


def test_the_90_day_bar_is_run_length_encoded(data: FakeStatusData) -> None:
    html = _html(_app(data), "/")
    bar = re.search(r'<tr data-service="backend">.*?(<svg class="b".*?</svg>)', html)
    assert bar is not None
    assert bar.group(1).count("<rect") == 3  # no data, operational, partial outage


def test_auto_refresh_works_without_script_and_pauses_with_refresh_off(
    data: FakeStatusData,
) -> None:
    app = _app(data)
    html = _html(app, "/")
    assert '<noscript><meta http-equiv="refresh" content="30"></noscript>' in html
    assert '<a id="pause-link" href="?refresh=off">Pause auto-refresh</a>' in html
    assert re.search(r'<button id="pause" type="button" aria-pressed="false" hidden>', html)
    assert 'data-interval="30"' in html
    paused = _html(app, "/?refresh=off")
    assert 'http-equiv="refresh"' not in paused
    assert '<a id="pause-link" href="?">Resume auto-refresh</a>' in paused
    assert 'aria-pressed="true"' in paused
    # a service page keeps its range in the pause link
    service = _html(app, "/services/backend?range=7d")
    assert 'href="?range=7d&amp;refresh=off"' in service


def test_the_script_is_the_only_one_and_the_policy_allows_only_it(data: FakeStatusData) -> None:
    response = _get(_app(data), "/")
    html = response.body.decode()
    assert html.count("<script>") == 1
    assert "<script src" not in html
    csp = dict(response.headers)["Content-Security-Policy"]
    assert "script-src 'sha256-" in csp
    assert "connect-src 'self'" in csp
    assert "default-src 'none'" in csp
    assert "fetch('/api/v1/summary'" in html


@pytest.mark.parametrize("stale", [True, False], ids=["stale", "fresh"])
def test_the_stale_banner_says_since_when(data: FakeStatusData, stale: bool) -> None:
    data.stale = Staleness(stale, NOW - 600, 30.0)
    html = _html(_app(data), "/")
    check(html)
    banner = re.search(r'<p id="stale" role="alert">(.*?)</p>', html)
    if not stale:
        assert banner is None
        return
    assert banner is not None
    assert banner.group(1) == (
        'The monitor has not written since <time datetime="2026-12-06T09:30:00Z" '
        'title="2026-12-06 09:30:00 UTC">2026-12-06 09:30 UTC</time>: data may be stale.'
    )


def test_a_monitor_that_never_wrote_is_stale_too(data: FakeStatusData) -> None:
    data.stale = Staleness(True, None, None)
    assert "The monitor has not written yet: data may be stale." in _html(_app(data), "/")


def test_the_service_page_shows_chart_markers_revisions_journal_drift_incidents(
    data: FakeStatusData,
) -> None:
    html = _html(_app(data), "/services/backend")
    page = check(html)
    svg = [a for t, a in page.tags if t == "svg" and a.get("data-chart") == "service"]
    assert svg
    assert svg[0]["data-range"] == "24h"
    markers = [a for _, a in page.having("data-marker")]
    assert [(m["data-marker"], m["data-deploy"]) for m in markers] == [
        ("deploy", "d-backend-41"),
        ("rollback", "d-backend-41r"),
        ("deploy", "d-backend-42"),
    ]
    # the text alternative: the chart's title and the markers in a table
    assert re.search(
        r"<title>Response time and error rate, last 24 hours; response time mean 100 ms", html
    )
    assert "error rate max 50.0%; 2 deploys, 1 rollbacks</title>" in html
    assert 'id="markers"' in html
    assert "deploy of rev 41" in html
    for ident in ("revisions", "journal", "drift", "incidents", "uptime"):
        assert ident in page.ids
    assert "<td>skipped, forced (reason: hotfix &lt;b&gt;)</td>" in html  # escaped
    assert "<code>LOG_LEVEL</code>" in html
    assert "LOG_LEVEL differs" in html
    assert 'data-incident="INC-' in html
    assert (
        '<span data-state="major_outage"><i aria-hidden="true">\u2715</i>Major outage</span>'
        in html
    )
    assert '<a href="?range=24h" aria-current="true">24h</a>' in html


@pytest.mark.parametrize("range_key", ["7d", "30d"])
def test_the_chart_ranges(data: FakeStatusData, range_key: str) -> None:
    html = _html(_app(data), f"/services/backend?range={range_key}")
    check(html)
    assert f'data-range="{range_key}"' in html
    assert f'<a href="?range={range_key}" aria-current="true">' in html


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/services/nope", "no service &#x27;nope&#x27; in staging"),
        ("/services/backend?range=1y", "no chart range &#x27;1y&#x27;"),
        ("/incidents/INC-nope", "no incident &#x27;INC-nope&#x27; in staging"),
        ("/services/", "no service &#x27;&#x27; in staging"),
    ],
    ids=["service", "range", "incident", "empty"],
)
def test_not_found_is_a_page_with_a_way_back(data: FakeStatusData, path: str, says: str) -> None:
    response = _get(_app(data), path)
    assert response.status == 404
    html = response.body.decode()
    check(html)
    assert says in html
    assert '<a href="/">The overview</a>' in html


def test_names_and_recorded_text_are_escaped() -> None:
    evil = 'x"><script>alert(1)</script>'
    data = FakeStatusData([replace(status("s"), name=evil)])
    html = _html(_app(data), "/")
    check(html)
    assert "<script>alert" not in html
    assert 'data-service="x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html


def test_the_incidents_list_and_an_incident_report(data: FakeStatusData) -> None:
    app = _app(data, reports=_report)
    listing = _html(app, "/incidents")
    check(listing)
    ids = re.findall(r'<li data-incident="([^"]+)"><a href="/incidents/\1">', listing)
    assert ids == [e.id for e in data.episodes]
    html = _html(app, f"/incidents/{ids[0]}")
    page = check(html)
    assert "report" in page.ids
    article = html[html.index('<article id="report">') :]
    assert article.startswith('<article id="report"><h1>')
    assert "Summary" in article
    assert "Supporting information" in article
    assert f'href="/incidents/{ids[0]}?format=markdown"' in html


def test_the_report_is_built_once_per_episode(data: FakeStatusData) -> None:
    built: list[str] = []

    def reports(ep: Episode) -> IncidentReport:
        built.append(ep.id)
        return _report(ep)

    app = _app(data, reports=reports)
    ended = data.episodes[1].id
    for _ in range(3):
        _html(app, f"/incidents/{ended}")
    assert built == [ended]


@pytest.mark.parametrize(
    ("fmt", "content_type", "starts"),
    [("json", "application/json", "{"), ("markdown", "text/markdown", "# ")],
    ids=["json", "markdown"],
)
def test_the_report_in_other_formats(
    data: FakeStatusData, fmt: str, content_type: str, starts: str
) -> None:
    ident = data.episodes[0].id
    response = _get(_app(data, reports=_report), f"/incidents/{ident}?format={fmt}")
    assert response.status == 200
    assert response.content_type.startswith(content_type)
    assert response.body.decode().startswith(starts)


def test_a_report_that_cannot_be_built_says_why_and_how(data: FakeStatusData) -> None:
    def reports(ep: Episode) -> IncidentReport:
        raise RollsafeError("cannot read Google Cloud of netra-staging: no usable credentials")

    ident = data.episodes[0].id
    app = _app(data, reports=reports)
    html = _html(app, f"/incidents/{ident}")
    check(html)
    assert "The report could not be built here (cannot read Google Cloud" in html
    assert f"<code>rollsafe why --env staging --incident {ident}</code>" in html
    assert _get(app, f"/incidents/{ident}?format=json").status == 503
    # no report maker at all: the state-only answer
    assert "this server reads the state only" in _html(_app(data), f"/incidents/{ident}")


def test_pages_are_cached_per_generation_and_refresh_is_throttled(data: FakeStatusData) -> None:
    clock = [NOW]
    app = StatusApp(data, clock=lambda: clock[0], refresh_every=5.0, background=False)
    first = _get(app, "/").body
    assert _get(app, "/").body is first  # the same bytes, not rendered again
    assert data.refreshes == 1
    data.set_state("frontend", ServiceState.MAJOR_OUTAGE)
    assert _get(app, "/").body is first  # within refresh_every: not read again
    clock[0] += 5
    second = _get(app, "/").body
    assert second is not first
    assert data.refreshes == 2
    assert _rows(second.decode())["frontend"][0] == "major_outage"


def test_a_due_refresh_runs_in_the_background_and_requests_do_not_wait(
    data: FakeStatusData,
) -> None:
    import threading

    clock = [NOW]
    release = threading.Event()
    refreshed = threading.Event()
    app = StatusApp(data, clock=lambda: clock[0], refresh_every=5.0)
    first = _get(app, "/").body  # the first refresh happens before the answer
    app._last_cost = 1.0  # a costly read, as at a thousand services
    real = data.refresh

    def slow() -> None:
        release.wait(30)
        real()
        refreshed.set()

    data.refresh = slow  # type: ignore[method-assign]
    data.set_state("frontend", ServiceState.MAJOR_OUTAGE)
    clock[0] += 5
    assert _get(app, "/").body is first  # answered from the data at hand
    assert _get(app, "/").body is first  # and no second refresh is started
    release.set()
    assert refreshed.wait(30)
    assert app._refreshing.acquire(timeout=30)  # the thread is done
    app._refreshing.release()
    assert _rows(_get(app, "/").body.decode())["frontend"][0] == "major_outage"


def test_a_cheap_due_refresh_is_read_before_answering(data: FakeStatusData) -> None:
    clock = [NOW]
    app = StatusApp(data, clock=lambda: clock[0], refresh_every=5.0)
    _get(app, "/")  # the first read: a handful of services, cheap
    data.set_state("frontend", ServiceState.MAJOR_OUTAGE)
    assert _rows(_get(app, "/").body.decode())["frontend"][0] != "major_outage"  # not due yet
    clock[0] += 5
    # due: the first poll after the monitor wrote already shows it (no background lag)
    assert _rows(_get(app, "/").body.decode())["frontend"][0] == "major_outage"


def test_staleness_changes_the_page_without_a_new_generation(data: FakeStatusData) -> None:
    app = _app(data)
    assert 'id="stale"' not in _html(app, "/")
    data.stale = Staleness(True, NOW - 600, 30.0)
    assert 'id="stale"' in _html(app, "/")


@pytest.mark.parametrize(
    ("accept", "zipped"),
    [("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("gzip;q=0", False), ("", False)],
    ids=["gzip", "weighted", "refused", "none"],
)
def test_gzip_when_the_client_accepts_it(data: FakeStatusData, accept: str, zipped: bool) -> None:
    app = _app(data)
    response = _get(app, "/", accept_encoding=accept)
    headers = dict(response.headers)
    assert headers["Vary"] == "Accept-Encoding"
    if zipped:
        assert headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(response.body) == _get(app, "/").body
    else:
        assert "Content-Encoding" not in headers
        assert response.body.startswith(b"<!DOCTYPE html>")


def test_the_overview_at_1000_services_weighs_under_300_kb_gzipped() -> None:
    data = synthetic(1000)
    app = _app(data)
    raw = _get(app, "/").body
    zipped = _get(app, "/", accept_encoding="gzip").body
    assert raw.count(b"<tr data-service=") == 1000
    assert len(zipped) < 300_000, len(zipped)
    assert len(raw) < 1_000_000, len(raw)  # about 0.9 KB a row: no inline style, RLE bars
    assert b"style=" not in raw


def test_rows_of_unchanged_services_are_reused() -> None:
    data = synthetic(20)
    app = _app(data, refresh_every=0.0, background=False)
    before = _get(app, "/").body.decode()
    data.set_state("svc-0003", ServiceState.PARTIAL_OUTAGE)
    after = _get(app, "/").body.decode()
    assert _rows(after)["svc-0003"][0] == "partial_outage"
    changed = [n for n in _rows(before) if _rows(before)[n] != _rows(after)[n]]
    assert changed == ["svc-0003"]
    assert len(app._rows) == 20
