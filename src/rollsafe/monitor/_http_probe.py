"""A lean HTTP/1.1 client for the monitor's health probes: GET, kept-alive, asyncio streams.

Why not httpx: at 1,000 services probed every second, httpx/httpcore spend 2-6.5 ms of CPU
per probe (request and response models, the pool's bookkeeping, per-request async-library
detection), so a pass outlasts its interval and probes time out on a busy loop: false
ServiceDown alerts. A probe needs much less: one GET, a status line, a few headers and a
small body. This client writes the request as one bytes string and reads the answer with
``asyncio.StreamReader`` (what the streams' C-accelerated buffer does best).

What it does, as httpx did for the probes (``follow_redirects`` off, no proxy):

- ``GET`` with ``Host``, ``Authorization`` (a private service's ID token),
  ``Connection: keep-alive``; redirects are not followed (a 3xx is the answer judged).
- One ``Origin`` per (scheme, host, port) holds its kept-alive connections: a service's
  probes (sequential) reuse one; at most ``connections`` are open at once. An idle
  connection the server has closed is dropped; a reused one found closed before any byte
  of the answer (the server closed it while the request was on its way) is retried once on
  a new connection, as browsers do (a GET is safe to repeat). Idle connections older than
  ``KEEPALIVE`` are not reused (httpx's ``keepalive_expiry``).
- http and https (the caller's ``ssl.SSLContext``; SNI and certificate checks for the host).
- The answer's head is at most ``HEAD_LIMIT`` bytes, its body (by Content-Length, chunked,
  or up to EOF) at most ``BODY_LIMIT``: health answers are small.
- The whole exchange (connect, TLS, request, answer) is bounded by the timeout.

Failures raise ``NoAnswer`` with a short ``detail`` (httpx's exception names where httpx had
one, so alert texts read as before) and never a header's value: the ID token stays out.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass

__all__ = ["BODY_LIMIT", "HEAD_LIMIT", "KEEPALIVE", "Answer", "NoAnswer", "Origin"]

#: the answer's status line and headers, at most
HEAD_LIMIT = 64 * 1024
#: the answer's body, at most (health answers are a few hundred bytes)
BODY_LIMIT = 1024 * 1024
#: an idle connection is not reused after this many seconds (httpx's keepalive_expiry):
#: a server or load balancer may have dropped it without a word
KEEPALIVE = 60.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")
# identity: the body is judged as it comes (httpx asked for gzip, then decoded it)
_FIXED = b"User-Agent: rollsafe-monitor\r\nAccept: */*\r\nAccept-Encoding: identity\r\n"
_PROTOCOL = "request failed (RemoteProtocolError)"
_READ = "request failed (ReadError)"


class NoAnswer(Exception):
    """No usable answer; ``detail`` says why in a few words (never a header's value) and
    ``elapsed`` is how long the attempt took (seconds)."""

    def __init__(self, detail: str, elapsed: float) -> None:
        super().__init__(detail)
        self.detail = detail
        self.elapsed = elapsed


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer read in full; ``elapsed`` from the start of the exchange (connecting,
    when a new connection was needed) to its last byte."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    elapsed: float


class _Failed(Exception):
    """Internal: the exchange failed; ``detail`` is the NoAnswer's."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Stale(Exception):
    """Internal: a reused connection turned out closed before any byte of the answer."""


@dataclass(slots=True, eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: float = 0.0  # time.monotonic() when it last went idle
    reused: bool = False

    def usable(self, now: float) -> bool:
        return (
            not self.reader.at_eof()
            and not self.writer.transport.is_closing()
            and now - self.used < KEEPALIVE
        )


class Origin:
    """The kept-alive connections to one origin: ``scheme`` (http or https), ``host`` (a
    name, or an IP address without brackets), ``port``. ``tls`` is the context for https
    (one shared by all origins: making one loads the CA bundle).

    Use on one event loop; ``aclose()`` closes every connection.
    """

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        connections: int = 4,
    ) -> None:
        self.scheme = scheme
        self.host = host
        default = _DEFAULT_PORTS.get(scheme)
        self.port = port if port is not None else (default or 0)
        self._tls = tls if scheme == "https" else None
        if scheme == "https" and tls is None:
            self._tls = ssl.create_default_context()
        name = f"[{host}]" if ":" in host else host
        authority = name if self.port == default else f"{name}:{self.port}"
        self._host_line = b"Host: " + authority.encode("ascii") + b"\r\n"
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"Origin({self.scheme}://{self.host}:{self.port}, open={len(self._open)})"

    async def get(self, target: bytes, authorization: str | None, timeout: float) -> Answer:
        """GET ``target`` (the path and query, as sent) within ``timeout`` seconds; a
        private service's ``authorization`` header value (``Bearer ...``) if given.

        Raises ``NoAnswer`` when no usable answer came; any HTTP status is an answer.
        """
        request = self._request(target, authorization)
        async with self._slots:
            start = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    status, headers, body = await self._exchange(request)
            except TimeoutError:
                elapsed = time.perf_counter() - start
                raise NoAnswer(f"timed out after {timeout:g} s", elapsed) from None
            except _Failed as exc:
                raise NoAnswer(exc.detail, time.perf_counter() - start) from None
            return Answer(status, headers, body, time.perf_counter() - start)

    async def aclose(self) -> None:
        """Close every connection, idle or in use (a probe in flight then fails)."""
        self._closed = True
        self._idle.clear()
        connections, self._open = list(self._open), set()
        for connection in connections:
            await _discard(connection)

    def _request(self, target: bytes, authorization: str | None) -> bytes:
        if self.scheme not in _DEFAULT_PORTS:
            raise NoAnswer("request failed (UnsupportedProtocol)", 0.0)
        if not target.startswith(b"/") or _unsafe(target):
            raise NoAnswer("request failed (InvalidURL)", 0.0)
        auth = b""
        if authorization is not None:
            if _unsafe(authorization.encode("latin-1", "replace")):
                raise NoAnswer("request failed (LocalProtocolError)", 0.0)  # no value told
            auth = b"Authorization: " + authorization.encode("latin-1") + b"\r\n"
        return (
            b"GET "
            + target
            + b" HTTP/1.1\r\n"
            + self._host_line
            + _FIXED
            + auth
            + b"Connection: keep-alive\r\n\r\n"
        )

    async def _exchange(self, request: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        connection = self._reusable()
        if connection is not None:
            try:
                return await self._over(connection, request)
            except _Stale:
                pass  # closed by the server while idle: once more, on a new connection
        # a new connection is never stale: its failures are _Failed
        return await self._over(await self._connect(), request)

    def _reusable(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable(now):
                return connection
            self._forget(connection)
        return None

    async def _connect(self) -> _Connection:
        if self._closed:
            raise _Failed("request failed (ConnectError)")
        try:
            reader, writer = await asyncio.open_connection(
                self.host,
                self.port,
                ssl=self._tls,
                server_hostname=self.host if self._tls is not None else None,
                limit=HEAD_LIMIT,
            )
        except (OSError, ValueError):  # refused, unreachable, no such host, TLS failure
            raise _Failed("request failed (ConnectError)") from None
        connection = _Connection(reader, writer)
        self._open.add(connection)
        return connection

    async def _over(
        self, connection: _Connection, request: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One exchange over ``connection``; back to the idle ones if it may be reused,
        else closed (also when cancelled or timed out midway)."""
        kept = False
        try:
            status, headers, body, keep = await _exchange_on(connection, request)
            if keep and not self._closed:
                connection.used = time.monotonic()
                connection.reused = True
                self._idle.append(connection)
                kept = True
            return status, headers, body
        finally:
            if not kept:
                self._forget(connection)

    def _forget(self, connection: _Connection) -> None:
        self._open.discard(connection)
        # abort: no TLS close_notify exchange to wait for; the socket is closed on the
        # loop's next turn (connection_lost), so nothing is left unclosed
        connection.writer.transport.abort()


async def _discard(connection: _Connection) -> None:
    connection.writer.transport.abort()
    with contextlib.suppress(OSError):
        await connection.writer.wait_closed()


def _unsafe(value: bytes) -> bool:
    return b"\r" in value or b"\n" in value or b"\0" in value


async def _exchange_on(
    connection: _Connection, request: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    """Send ``request`` and read the answer: (status, headers, body, keep-alive)."""
    reader = connection.reader
    # the request is far below the write buffer's limit: write() sends it at once, and
    # a failure shows when reading the answer
    connection.writer.write(request)
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if connection.reused and not exc.partial:
            raise _Stale from None
        raise _Failed(_PROTOCOL) from None  # httpx: "Server disconnected without ..."
    except asyncio.LimitOverrunError:
        raise _Failed(f"response head too large (over {HEAD_LIMIT // 1024} KiB)") from None
    except OSError:
        if connection.reused:
            raise _Stale from None
        raise _Failed(_READ) from None
    version, status, headers = _parse_head(head)
    while 100 <= status < 200:  # informational answers (103 Early Hints) come before it
        if status == 101:
            raise _Failed(_PROTOCOL)  # switching protocols: never asked for
        version, status, headers = _parse_head(await _read_head(reader))
    keep = version == b"HTTP/1.1"
    length: int | None = None
    chunked = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            length = _content_length(value, length)
        elif lowered == b"transfer-encoding":
            chunked = value.strip().lower().endswith(b"chunked")
        elif lowered == b"connection" and b"close" in value.lower():
            keep = False
    try:
        if status in (204, 304):
            body = b""
        elif chunked:
            body = await _read_chunked(reader)
        elif length is not None:
            if length > BODY_LIMIT:
                raise _Failed(_TOO_LARGE)
            body = await reader.readexactly(length)
        else:
            body = await _read_to_eof(reader)
            keep = False
    except asyncio.IncompleteReadError:
        raise _Failed(_PROTOCOL) from None  # httpx: "peer closed connection without ..."
    except asyncio.LimitOverrunError:
        raise _Failed(_PROTOCOL) from None
    except OSError:
        raise _Failed(_READ) from None
    return status, headers, body, keep


_TOO_LARGE = f"body too large (over {BODY_LIMIT // (1024 * 1024)} MiB)"


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        raise _Failed(_PROTOCOL) from None
    except asyncio.LimitOverrunError:
        raise _Failed(f"response head too large (over {HEAD_LIMIT // 1024} KiB)") from None
    except OSError:
        raise _Failed(_READ) from None


def _parse_head(head: bytes) -> tuple[bytes, int, list[tuple[bytes, bytes]]]:
    """(version, status, headers) of a head ending in CRLF CRLF."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if (
        len(parts) < 2
        or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0")
        or len(parts[1]) != 3
        or not parts[1].isdigit()
    ):
        raise _Failed(_PROTOCOL)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name:
            raise _Failed(_PROTOCOL)  # also obsolete line folding (a line starting blank)
        headers.append((name, value.strip(b" \t")))
    return parts[0], int(parts[1]), headers


def _content_length(value: bytes, before: int | None) -> int:
    text = value.strip()
    if not text.isdigit() or (before is not None and int(text) != before):
        raise _Failed(_PROTOCOL)
    return int(text)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        size = line[:-2].split(b";", 1)[0].strip()
        if not size or not _HEXDIGITS.issuperset(size):
            raise _Failed(_PROTOCOL)
        length = int(size, 16)
        if length == 0:
            break
        total += length
        if total > BODY_LIMIT:
            raise _Failed(_TOO_LARGE)
        chunk = await reader.readexactly(length + 2)
        if chunk[-2:] != b"\r\n":
            raise _Failed(_PROTOCOL)
        parts.append(chunk[:-2])
    trailers = 0
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        trailers += len(line)
        if trailers > HEAD_LIMIT:
            raise _Failed(_PROTOCOL)
    return b"".join(parts)


async def _read_to_eof(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while chunk := await reader.read(65536):
        total += len(chunk)
        if total > BODY_LIMIT:
            raise _Failed(_TOO_LARGE)
        parts.append(chunk)
    return b"".join(parts)
