"""The router: one stable URL per Cloud Run service, splitting requests among its revisions.

Each service gets a port on loopback whose requests go to its revisions by traffic percent,
chosen per request (clients keep connections alive, so per-connection choice would skew the
split); each traffic tag gets a port of its own that reaches only its revision. Responses
stream through as they are produced and upgraded connections (websockets) are tunnelled.
When no revision can answer, the router says so with a 503 in Google's JSON error shape, as
Cloud Run's front end does.

The router runs inside the emulator's event loop::

    router = Router(lookup=instances.port_of)
    routes = await router.set_service(name, [("svc-00001-abc", 90), ("svc-00002-def", 10)],
                                      {"canary": "svc-00002-def"})
    routes.url, routes.tag_urls["canary"]
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rollsafe.emulator._proxy import READ_SIZE, Access, Proxy, RequestLogger, Route

__all__ = ["REVISION_HEADER", "Access", "RequestLogger", "Router", "ServiceRoutes"]

#: response header naming the revision that answered
REVISION_HEADER = "X-Rollsafe-Revision"


@dataclass(frozen=True)
class ServiceRoutes:
    """Where a service is reached: its URL, and one URL per traffic tag."""

    url: str
    port: int
    tag_urls: dict[str, str]
    tag_ports: dict[str, int]


class SmoothWeighted:
    """Smooth weighted round-robin (as in nginx): exact shares, evenly interleaved.

    Deterministic, so a 50/50 split alternates and any window of requests is as close to the
    percentages as whole requests allow, where a random choice would only approach them.
    """

    __slots__ = ("_current", "_names", "_total", "_weights")

    def __init__(self, split: Iterable[tuple[str, int]]) -> None:
        weights: dict[str, int] = {}
        for name, percent in split:
            if percent > 0:  # the same revision may appear twice (LATEST and by name)
                weights[name] = weights.get(name, 0) + percent
        self._names = list(weights)
        self._weights = list(weights.values())
        self._current = [0] * len(self._names)
        self._total = sum(self._weights)

    def pick(self) -> str | None:
        """The next revision, or None when no revision has traffic."""
        names = self._names
        if len(names) <= 1:
            return names[0] if names else None
        current = self._current
        best = 0
        for i, weight in enumerate(self._weights):
            current[i] += weight
            if current[i] > current[best]:
                best = i
        current[best] -= self._total
        return names[best]


def _fixed(revision: str) -> Callable[[], str | None]:
    return lambda: revision


class _Listener:
    """One listening port and the route it serves."""

    def __init__(self, server: asyncio.Server, route: Route) -> None:
        self.server = server
        self.route = route
        self.port: int = server.sockets[0].getsockname()[1]


@dataclass(eq=False)
class _Service:
    name: str
    split: list[tuple[str, int]]
    listener: _Listener
    tags: dict[str, str] = field(default_factory=dict)
    tag_listeners: dict[str, _Listener] = field(default_factory=dict)


def _loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"  # one address, so that port 0 means one port
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"router host must be a loopback address, not {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"router host must be a loopback address, not {host!r}")
    return host


def _check_split(split: list[tuple[str, int]]) -> None:
    if any(percent < 0 or percent > 100 for _, percent in split):
        raise ValueError(f"traffic percents must be within 0-100: {split!r}")
    total = sum(percent for _, percent in split)
    if split and total != 100:
        raise ValueError(f"traffic percents must sum to 100, not {total}: {split!r}")


class Router:
    """Runs inside the emulator's asyncio event loop (the emulator runs on uvicorn).

    ``lookup(revision_name)`` returns the port of that revision's running instance, or None
    when it is not running; it is called for every request, so a restarted instance on a
    new port is picked up at once. ``host`` is the loopback address the router listens on
    and reaches the instances at; any other address is refused (ValueError).

    ``access`` (optional) decides per request whether a URL may be used (the emulator
    passes its check of ID tokens and IAM policies; refused requests get Cloud Run's 401 or
    403 page); ``request_log`` (optional) receives one ``RequestRecord`` per request.

    Timeouts: connecting to a revision (``connect_timeout``, 2 s), its response head
    (``request_timeout``, 300 s as Cloud Run's default, then 504), an idle kept-alive client
    connection (``keepalive_timeout``), and how long requests in flight on a removed port
    may finish (``drain_timeout``).
    """

    def __init__(
        self,
        lookup: Callable[[str], int | None],
        host: str = "127.0.0.1",
        *,
        connect_timeout: float = 2.0,
        request_timeout: float = 300.0,
        keepalive_timeout: float = 60.0,
        drain_timeout: float = 10.0,
        access: Access | None = None,
        request_log: RequestLogger | None = None,
    ) -> None:
        self._host = _loopback(host)
        self._proxy = Proxy(
            lookup,
            self._host,
            connect_timeout=connect_timeout,
            response_timeout=request_timeout,
            keepalive_timeout=keepalive_timeout,
            access=access,
            request_log=request_log,
        )
        self._drain_timeout = drain_timeout
        self._services: dict[str, _Service] = {}
        #: background drains of retired ports: task -> the route it drains
        self._draining: dict[asyncio.Task[None], Route] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    def _url(self, port: int) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{port}"

    async def set_service(
        self,
        service: str,
        split: list[tuple[str, int]],
        tags: dict[str, str],
        port: int | None = None,
        tag_ports: dict[str, int] | None = None,
    ) -> ServiceRoutes:
        """Create or update a service's routes; returns where it is reached.

        ``service`` is the full name ``projects/P/locations/L/services/S``; ``split`` lists
        ``(revision, percent)`` summing to 100 (or is empty: every request gets 503);
        ``tags`` maps tag to revision. ``port`` and ``tag_ports`` are preferred ports (kept
        across emulator restarts); a taken one falls back to a free port. Idempotent: an
        existing service keeps its ports, its split and tags change for the next request,
        and requests in flight finish. A tag no longer listed has its port closed.
        """
        _check_split(split)
        if self._closed:
            raise RuntimeError("router is closed")
        short = service.rsplit("/", 1)[-1]
        async with self._lock:
            state = self._services.get(service)
            if state is None:
                route = Route(
                    pick=SmoothWeighted(split).pick, label=f"service {short}", service=service
                )
                state = _Service(service, list(split), await self._listen(route, port))
                self._services[service] = state
            elif split != state.split:
                state.split = list(split)
                state.listener.route.pick = SmoothWeighted(split).pick
            for tag in [tag for tag in state.tag_listeners if tag not in tags]:
                self._retire(state.tag_listeners.pop(tag))
            for tag, revision in tags.items():
                listener = state.tag_listeners.get(tag)
                if listener is None:
                    route = Route(
                        pick=_fixed(revision),
                        label=f"tag {tag} of service {short}",
                        service=service,
                    )
                    preferred = (tag_ports or {}).get(tag)
                    state.tag_listeners[tag] = await self._listen(route, preferred)
                elif state.tags.get(tag) != revision:
                    listener.route.pick = _fixed(revision)
            state.tags = dict(tags)
            routes = self._routes(state)
            # a token may name the service's URL or any of its tag URLs, with or without
            # the trailing slash, as on Cloud Run
            urls = [routes.url, *routes.tag_urls.values()]
            audiences = frozenset(urls + [url + "/" for url in urls])
            for listener in (state.listener, *state.tag_listeners.values()):
                listener.route.audiences = audiences
            return routes

    async def remove_service(self, service: str) -> None:
        """Close a service's ports (its URL and its tags'); unknown services are ignored.

        The ports are closed when this returns; requests in flight may finish within the
        drain timeout.
        """
        async with self._lock:
            state = self._services.pop(service, None)
            if state is not None:
                for listener in (state.listener, *state.tag_listeners.values()):
                    self._retire(listener)

    def routes(self, service: str) -> ServiceRoutes | None:
        """Where ``service`` is reached, or None when the router does not serve it."""
        state = self._services.get(service)
        return None if state is None else self._routes(state)

    def stats(self) -> dict[str, int]:
        """Requests routed to each revision since the router started (for idle detection)."""
        return dict(self._proxy.counts)

    def in_flight(self) -> dict[str, int]:
        """Requests (and tunnelled websockets) open now, per revision that has any."""
        return {revision: n for revision, n in self._proxy.active.items() if n}

    async def close(self) -> None:
        """Stop every listener and cut every connection; the router cannot be used again."""
        async with self._lock:
            self._closed = True
            for state in self._services.values():
                for listener in (state.listener, *state.tag_listeners.values()):
                    self._retire(listener)
            self._services.clear()
        # an emulator that stops does not wait for clients: cut what is still in flight
        handlers: list[asyncio.Task[None]] = []
        for task, route in list(self._draining.items()):
            task.cancel()  # it may not have started, so cut its connections here
            handlers += _cut(route)
        await asyncio.gather(*self._draining, *handlers, return_exceptions=True)
        self._proxy.pool.close()
        # let the transports closed above run their connection_lost callbacks, which close
        # the sockets, before the caller's loop may stop
        for _ in range(3):
            await asyncio.sleep(0)

    # -- internals ---------------------------------------------------------------------

    def _routes(self, state: _Service) -> ServiceRoutes:
        tag_ports = {tag: listener.port for tag, listener in state.tag_listeners.items()}
        return ServiceRoutes(
            url=self._url(state.listener.port),
            port=state.listener.port,
            tag_urls={tag: self._url(port) for tag, port in tag_ports.items()},
            tag_ports=tag_ports,
        )

    async def _listen(self, route: Route, preferred: int | None) -> _Listener:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # cut by _cut(): end normally, because asyncio.streams (3.11) logs a handler task
            # that ends cancelled as an error ("Exception in callback")
            with contextlib.suppress(asyncio.CancelledError):
                await self._proxy.serve(reader, writer, route)

        if preferred:
            try:
                server = await asyncio.start_server(
                    handle, self._host, preferred, limit=READ_SIZE, backlog=512
                )
                return _Listener(server, route)
            except OSError:
                pass  # taken (by another process, or by another of our routes): any port
        server = await asyncio.start_server(handle, self._host, 0, limit=READ_SIZE, backlog=512)
        return _Listener(server, route)

    def _retire(self, listener: _Listener) -> None:
        """Close the port now; let requests in flight finish in the background."""
        listener.server.close()
        route = listener.route
        route.draining = True
        for connection in route.connections.values():
            if not connection.busy:
                connection.writer.close()  # idle between requests: nothing to wait for
        if route.connections:
            task = asyncio.create_task(self._drain(route))
            self._draining[task] = route
            task.add_done_callback(lambda done: self._draining.pop(done, None))

    async def _drain(self, route: Route) -> None:
        try:
            if route.connections:  # the idle ones may all have gone by now
                await asyncio.wait(list(route.connections), timeout=self._drain_timeout)
        finally:
            handlers = _cut(route)
            if handlers:
                await asyncio.gather(*handlers, return_exceptions=True)


def _cut(route: Route) -> list[asyncio.Task[None]]:
    """Abort a route's client connections and cancel their handlers; returns the handlers."""
    handlers = list(route.connections)
    for connection in route.connections.values():
        connection.writer.transport.abort()
    for task in handlers:
        task.cancel()
    return handlers
