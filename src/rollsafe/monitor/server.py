"""``rollsafe monitor --serve ADDR``: ``/metrics`` and ``/healthz`` over HTTP, on loopback.

A ``ThreadingHTTPServer`` from the standard library in a daemon thread: no web framework
for two pages, and a slow scraper never holds up the monitor's loop. ``routes`` maps a path
to a handler, so later pages (the status page) are served by the same server.

Binding: the address is a literal IP (``127.0.0.1:9464``, ``[::1]:9464``), ``localhost``, or
an empty host (``:9464``), which means 127.0.0.1. A host name is refused, since it could
resolve to an interface other hosts reach. A non-loopback IP (``0.0.0.0:9464``) is served
because the user wrote it out; ``loopback`` is then False for the caller to say so.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from rollsafe.errors import RollsafeError

if TYPE_CHECKING:
    from rollsafe.monitor.metrics import MonitorMetrics

__all__ = [
    "Handler",
    "MonitorServer",
    "MonitorServerError",
    "Request",
    "Response",
    "parse_addr",
]

_EXAMPLE = "give --serve 127.0.0.1:9464 (or :9464, [::1]:9464)"


_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())


class MonitorServerError(RollsafeError):
    """``--serve`` cannot serve: a bad address, or the port cannot be bound."""

    exit_code = 2


@dataclass(frozen=True)
class Request:
    """A GET (or HEAD) as a route sees it."""

    method: str
    path: str
    query: Mapping[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    """What a route answers."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Response]


def parse_addr(addr: str) -> tuple[str, int]:
    """``HOST:PORT`` as (literal IP, port); raises ``MonitorServerError`` naming the problem."""
    text = addr.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise MonitorServerError(f"--serve {addr!r} has no port", hint=_EXAMPLE)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise MonitorServerError(
            f"--serve {addr!r}: an IPv6 address goes in brackets", hint="e.g. --serve [::1]:9464"
        )
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise MonitorServerError(f"--serve {addr!r}: the port must be 0-65535", hint=_EXAMPLE)
    if host in ("", "localhost"):
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise MonitorServerError(
            f"--serve {addr!r}: the host must be an IP address or localhost",
            hint=(
                "a host name may resolve to an interface other hosts reach; "
                "give 127.0.0.1:9464, or 0.0.0.0:9464 to listen on every interface on purpose"
            ),
        ) from None
    return host, int(port_text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck scraper never keeps the process alive
    routes: dict[str, Handler]
    prefixes: dict[str, Handler]

    def handle_error(self, request: object, client_address: object) -> None:
        # socketserver prints a traceback to stderr when a scraper hangs up mid-answer;
        # the monitor's output is its lines, so that goes to the log at debug
        _log.debug("a request from %s failed", client_address, exc_info=True)

    def server_bind(self) -> None:
        # HTTPServer's own looks the host's name up (getfqdn): a slow DNS would stall start()
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    # one request per connection, and a bound on a silent client: close() never waits long
    protocol_version = "HTTP/1.0"
    timeout = 10
    server_version = "rollsafe-monitor"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _refuse(self) -> None:
        self._send(Response(b"method not allowed\n", 405, headers=(("Allow", "GET, HEAD"),)))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    def _answer(self, *, head: bool) -> None:
        parts = urlsplit(self.path)
        handler = self.server.routes.get(parts.path)
        if handler is None:
            handler = _by_prefix(self.server.prefixes, parts.path)
        if handler is None:
            self._send(Response(b"not found\n", 404), head=head)
            return
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={key.lower(): value for key, value in self.headers.items()},
        )
        try:
            response = handler(request)
        except Exception:
            # never a traceback to the client (it could quote state); the page is broken
            response = Response(b"internal error\n", 500)
        self._send(response, head=head)

    def _send(self, response: Response, *, head: bool = False) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        # the monitor's output is one line per state change, not one per scrape
        pass


def _by_prefix(prefixes: Mapping[str, Handler], path: str) -> Handler | None:
    """The handler of the longest prefix of ``path`` (``/services/`` serves
    ``/services/backend``), or None."""
    best = max((p for p in prefixes if path.startswith(p)), key=len, default=None)
    return None if best is None else prefixes[best]


class MonitorServer:
    """``/metrics`` (Prometheus text, or OpenMetrics when asked) and ``/healthz``.

    ``start()`` binds and serves in a daemon thread; ``close()`` stops and joins it. Add
    pages through ``routes[path] = handler`` (an exact path) or ``prefixes[prefix] =
    handler`` (every path under it, the longest prefix winning; exact routes first),
    before or after ``start()``. Only GET and HEAD are answered: other methods get 405.
    """

    def __init__(self, addr: str, metrics: MonitorMetrics | None = None) -> None:
        self.addr = addr
        self.host, self.port = parse_addr(addr)
        self.metrics = metrics
        self.routes: dict[str, Handler] = {"/healthz": self._healthz}
        self.prefixes: dict[str, Handler] = {}
        if metrics is not None:
            self.routes["/metrics"] = self._metrics
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def loopback(self) -> bool:
        """True when only this host can connect (127.0.0.0/8, ::1)."""
        return ipaddress.ip_address(self.host).is_loopback

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> MonitorServer:
        """Bind and serve; raises ``MonitorServerError`` when the address cannot be bound."""
        if self._server is not None:
            return self
        server_class = _Server6 if ":" in self.host else _Server
        try:
            server = server_class((self.host, self.port), _RequestHandler)
        except OSError as exc:
            raise _bind_error(self.addr, self.host, self.port, exc) from exc
        server.routes = self.routes  # the same dict: routes added later are served too
        server.prefixes = self.prefixes
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"rollsafe-monitor-serve-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, close the socket and join the thread."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> MonitorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "serving" if self._server is not None else "stopped"
        return f"MonitorServer({self.url}, {state})"

    # -- the built-in pages --------------------------------------------------------------

    def _metrics(self, request: Request) -> Response:
        assert self.metrics is not None
        body, content_type = self.metrics.exposition(request.headers.get("accept"))
        return Response(body, 200, content_type)

    def _healthz(self, request: Request) -> Response:
        ok, reason = (True, "ok") if self.metrics is None else self.metrics.healthy()
        return Response(f"{reason}\n".encode(), 200 if ok else 503)


def _bind_error(addr: str, host: str, port: int, exc: OSError) -> MonitorServerError:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return MonitorServerError(
            f"--serve {addr}: port {port} on {host} is already in use",
            hint=(
                "another process listens there (a second monitor?); "
                f"pick another port, e.g. --serve {host if ':' not in host else f'[{host}]'}:"
                f"{port + 1 if port < 65535 else 9464}"
            ),
        )
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return MonitorServerError(
            f"--serve {addr}: {host} is not an address of this host", hint=_EXAMPLE
        )
    if exc.errno == errno.EACCES:
        return MonitorServerError(
            f"--serve {addr}: not allowed to bind port {port}",
            hint="ports below 1024 need privileges; use e.g. 9464",
        )
    return MonitorServerError(
        f"--serve {addr}: cannot listen ({exc.strerror or type(exc).__name__})", hint=_EXAMPLE
    )
