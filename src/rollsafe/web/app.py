"""``StatusApp``: the status page's routes, mounted on a ``MonitorServer`` beside
``/metrics`` (``rollsafe monitor --serve``) or on its own (``rollsafe web``).

Pages: ``/`` (overview), ``/services/{name}`` (``?range=24h|7d|30d``), ``/incidents``,
``/incidents/{id}`` (``?format=json|markdown`` for the raw report); the JSON API under
``/api/v1/`` (see ``api``). Read-only: the server answers GET and HEAD only.

Fast at 1,000 services: the read model is refreshed at most every ``refresh_every``
seconds (in a thread of its own: no request waits for it), and each page is rendered
once per data generation (and staleness), its bytes and their gzip kept and served until
the data changes. An incident's report is built on demand by ``reports`` (an
``EvidenceCollector`` over the episode's window, see ``cli._web``) and kept: an ended
episode's report for good, a going-on one's per generation.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from rollsafe.errors import RollsafeError
from rollsafe.monitor.server import Request, Response
from rollsafe.web import api
from rollsafe.web._assets import CSP
from rollsafe.web._incident_pages import render_incident, render_incidents
from rollsafe.web._overview import RowCache, render_overview
from rollsafe.web._service_page import RANGES, render_service
from rollsafe.web._source import StatusSource
from rollsafe.web.pages import Frame, document, e

if TYPE_CHECKING:
    from rollsafe.incidents.model import Episode, IncidentReport
    from rollsafe.monitor.server import MonitorServer

__all__ = ["ReportMaker", "StatusApp"]

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())

#: builds the report on an episode (raises RollsafeError when it cannot)
ReportMaker = Callable[["Episode"], "IncidentReport"]

_HTML = "text/html; charset=utf-8"
_JSON = "application/json; charset=utf-8"
_MARKDOWN = "text/markdown; charset=utf-8"
#: bodies smaller than this are sent as they are: gzip would not save a packet
_GZIP_MIN = 1024
_REPORTS_KEPT = 32
_SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"))
    return False


class _Body:
    """A rendered body and, made on first need, its gzip."""

    __slots__ = ("_zipped", "content_type", "raw", "status")

    def __init__(self, raw: bytes, content_type: str, status: int = 200) -> None:
        self.raw, self.content_type, self.status = raw, content_type, status
        self._zipped: bytes | None = None

    def response(self, request: Request) -> Response:
        headers: list[tuple[str, str]] = [("Vary", "Accept-Encoding")]
        if self.content_type == _HTML:
            headers.extend(_SECURITY_HEADERS)
        else:
            headers.append(("X-Content-Type-Options", "nosniff"))
        if len(self.raw) >= _GZIP_MIN and _accepts_gzip(request):
            if self._zipped is None:
                self._zipped = gzip.compress(self.raw, compresslevel=6, mtime=0)
            headers.append(("Content-Encoding", "gzip"))
            return Response(self._zipped, self.status, self.content_type, tuple(headers))
        return Response(self.raw, self.status, self.content_type, tuple(headers))


def _json(doc: Any, status: int = 200) -> _Body:
    return _Body(json.dumps(doc, separators=(",", ":")).encode(), _JSON, status)


def _first(request: Request, name: str) -> str | None:
    values = request.query.get(name)
    return values[0] if values else None


#: a read of the store that took less than this is done before answering, not in a thread
_INLINE_REFRESH = 0.025


class StatusApp:
    """The status page over ``data`` (a ``StatusData``); ``mount(server)`` serves it."""

    def __init__(
        self,
        data: StatusSource,
        *,
        reports: ReportMaker | None = None,
        clock: Callable[[], float] = time.time,
        refresh_every: float | None = None,
        base_url: str = "",
        background: bool = True,
    ) -> None:
        self.data = data
        self.reports = reports
        self.base_url = base_url
        self._clock = clock
        self._refresh_every = (
            refresh_every if refresh_every is not None else min(5.0, max(0.5, data.interval / 2))
        )
        self._refreshed: float | None = None
        #: seconds the last read of the store took (None: not read yet)
        self._last_cost: float | None = None
        self._background = background
        self._refreshing = threading.Lock()
        self._lock = threading.RLock()
        self._cache: dict[tuple[Any, ...], _Body] = {}
        self._cache_key: tuple[Any, ...] | None = None
        self._rows: RowCache = {}
        self._reports: OrderedDict[tuple[str, int | None], tuple[Any, str | None]] = OrderedDict()
        self._report_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StatusApp(env={self.data.env_name!r})"

    # -- mounting -------------------------------------------------------------------------

    def mount(self, server: MonitorServer) -> None:
        """Serve the pages and the API on ``server`` (beside its ``/metrics``)."""
        if not self.base_url:
            self.base_url = server.url
        server.routes["/"] = self.handle
        server.routes["/incidents"] = self.handle
        for prefix in ("/services/", "/incidents/", "/api/v1/"):
            server.prefixes[prefix] = self.handle

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one GET or HEAD."""
        path = request.path
        if path.startswith("/incidents/") and len(path) > len("/incidents/"):
            # reports are built outside the page lock: a slow one holds up no other page
            return self._incident(request, unquote(path[len("/incidents/") :]))
        with self._lock:
            self._fresh()
            body = self._route(request)
        return body.response(request)

    def _fresh(self) -> None:
        """Read the store again when ``refresh_every`` has passed. The first time, before
        answering; after that in a thread of its own (``background``), so no request waits
        for a read of a thousand services: they get the pages of the data at hand."""
        now = self._clock()
        if self._refreshed is not None and now - self._refreshed < self._refresh_every:
            return
        # a cheap read (a few services, or nothing changed) is done before answering, so a
        # poll right after the monitor wrote sees it; only a costly one goes to a thread
        cheap = self._last_cost is not None and self._last_cost < _INLINE_REFRESH
        if self._refreshed is None or not self._background:
            with self._refreshing:
                self._timed_refresh()
            self._refreshed = now
            return
        if cheap:
            self._refreshed = now
            with self._refreshing:
                self._refresh_or_keep()
            return
        if not self._refreshing.acquire(blocking=False):
            return  # one is under way
        self._refreshed = now
        threading.Thread(target=self._refresh, name="rollsafe-web-refresh", daemon=True).start()

    def _timed_refresh(self) -> None:
        start = time.perf_counter()
        self.data.refresh()
        self._last_cost = time.perf_counter() - start

    def _refresh_or_keep(self) -> None:
        try:
            self._timed_refresh()
        except Exception:  # the store is away: the pages keep the last data, staleness says so
            _log.warning("reading the state store for the status page failed", exc_info=True)

    def _refresh(self) -> None:
        try:
            self._refresh_or_keep()
        finally:
            self._refreshing.release()

    def _cached(self, key: tuple[Any, ...], build: Callable[[], _Body]) -> _Body:
        stale = self.data.staleness()
        generation = (self.data.generation, stale.stale, stale.last_write)
        if generation != self._cache_key:
            self._cache.clear()
            self._cache_key = generation
        body = self._cache.get(key)
        if body is None:
            body = build()
            if body.status == 200:  # a 404's path is the client's choice: not kept
                self._cache[key] = body
        return body

    def _frame(self, request: Request, **query: str) -> Frame:
        refresh = _first(request, "refresh") != "off"
        return Frame(
            env=self.data.env_name,
            indicator=self.data.indicator(),
            staleness=self.data.staleness(),
            interval=self.data.interval,
            refresh=refresh,
            query=query,
        )

    def _route(self, request: Request) -> _Body:
        path = request.path
        refresh = _first(request, "refresh") != "off"
        if path == "/":
            return self._cached(("/", refresh), lambda: self._overview(request))
        if path == "/incidents":
            return self._cached(("/incidents", refresh), lambda: self._incidents(request))
        if path.startswith("/services/"):
            name = unquote(path[len("/services/") :])
            range_key = _first(request, "range") or "24h"
            if range_key not in RANGES:
                return self._not_found(request, f"no chart range {range_key!r}: 24h, 7d or 30d")
            return self._cached(
                ("svc", name, range_key, refresh), lambda: self._service(request, name, range_key)
            )
        if path.startswith("/api/v1/"):
            return self._cached(("api", path), lambda: self._api(path[len("/api/v1/") :]))
        return self._not_found(request, "no such page")

    # -- pages ----------------------------------------------------------------------------

    def _html(self, text: str, status: int = 200) -> _Body:
        return _Body(text.encode("utf-8"), _HTML, status)

    def _not_found(self, request: Request, what: str) -> _Body:
        body = (
            f"<h1>Not found</h1><p>{e(what)}.</p>"
            '<p><a href="/">The overview</a> lists every service; '
            '<a href="/incidents">the incidents</a> every incident.</p>'
        )
        return self._html(document(self._frame(request), "Not found", body), 404)

    def _overview(self, request: Request) -> _Body:
        frame = self._frame(request)
        services, incidents = self.data.services(), self.data.incidents()
        return self._html(render_overview(frame, services, incidents, self._rows))

    def _incidents(self, request: Request) -> _Body:
        return self._html(render_incidents(self._frame(request), self.data.incidents()))

    def _service(self, request: Request, name: str, range_key: str) -> _Body:
        detail = self.data.service(name)
        if detail is None:
            return self._not_found(request, f"no service {name!r} in {self.data.env_name}")
        frame = self._frame(request, range=range_key)
        return self._html(render_service(frame, detail, range_key, self._clock()))

    # -- incidents ------------------------------------------------------------------------

    def _episode(self, ident: str) -> Episode | None:
        with self._lock:
            self._fresh()
            return next((i for i in self.data.incidents() if i.id == ident), None)

    def _report(self, episode: Episode) -> tuple[IncidentReport | None, str | None]:
        """The report on ``episode`` and None, or None and why there is none."""
        if self.reports is None:
            return None, "this server reads the state only"
        key = (episode.id, None if episode.end is not None else self.data.generation)
        with self._report_lock:
            kept = self._reports.get(key)
            if kept is None:
                try:
                    kept = (self.reports(episode), None)
                except RollsafeError as exc:
                    kept = (None, exc.message)
                except Exception:  # a broken source must not take the page down
                    _log.warning("the report on %s failed", episode.id, exc_info=True)
                    kept = (None, "building it failed; see the server's log")
                self._reports[key] = kept
                while len(self._reports) > _REPORTS_KEPT:
                    self._reports.popitem(last=False)
            self._reports.move_to_end(key)
        return kept

    def _incident(self, request: Request, ident: str) -> Response:
        episode = self._episode(ident)
        if episode is None:
            with self._lock:
                body = self._not_found(request, f"no incident {ident!r} in {self.data.env_name}")
            return body.response(request)
        report, problem = self._report(episode)
        fmt = _first(request, "format")
        if fmt in ("json", "markdown"):
            if report is None:
                return _json({"error": f"no report: {problem}"}, 503).response(request)
            from rollsafe.incidents.render import render_json, render_markdown

            if fmt == "json":
                return _Body(render_json(report).encode(), _JSON).response(request)
            return _Body(render_markdown(report).encode(), _MARKDOWN).response(request)
        if fmt is not None:
            return _json({"error": f"unknown format {fmt!r}: json or markdown"}, 400).response(
                request
            )
        html = None
        if report is not None:
            from rollsafe.incidents.render import render_html

            html = render_html(report)
        with self._lock:
            text = render_incident(self._frame(request), episode, html, problem)
        return self._html(text).response(request)

    # -- the JSON API ---------------------------------------------------------------------

    def _api(self, rest: str) -> _Body:
        data, env, now = self.data, self.data.env_name, self._clock()
        if rest == "summary":
            return _json(
                api.summary_doc(
                    env,
                    data.services(),
                    data.indicator(),
                    data.staleness(),
                    generation=data.generation,
                    interval=data.interval,
                    now=now,
                )
            )
        if rest == "summary.json":
            return _json(
                api.statuspage_summary(
                    env,
                    data.services(),
                    data.incidents(),
                    data.indicator(),
                    base_url=self.base_url,
                    now=now,
                )
            )
        if rest == "services":
            return _json(api.services_doc(env, data.services(), now))
        if rest.startswith("services/"):
            detail = data.service(unquote(rest[len("services/") :]))
            if detail is None:
                return _json({"error": "no such service"}, 404)
            return _json(api.service_doc(env, detail, now))
        if rest == "incidents":
            return _json(api.incidents_doc(env, data.incidents(), now))
        if rest.startswith("incidents/"):
            return self._api_incident(unquote(rest[len("incidents/") :]))
        return _json({"error": "no such document"}, 404)

    def _api_incident(self, ident: str) -> _Body:
        episode = next((i for i in self.data.incidents() if i.id == ident), None)
        if episode is None:
            return _json({"error": "no such incident"}, 404)
        report, problem = self._report(episode)
        doc = api.incident_doc(
            self.data.env_name, episode, report.to_dict() if report is not None else None, problem
        )
        return _json(doc)
