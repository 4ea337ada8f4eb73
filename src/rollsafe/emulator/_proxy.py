"""The router's HTTP/1.1 reverse proxy, on asyncio streams.

A small proxy of our own rather than an ASGI app in front of an HTTP client, because the
router must choose a revision for every request on a kept-alive client connection, relay
bodies piece by piece as they arrive (chunked responses, server-sent events), hand upgraded
connections (websockets) over byte for byte, and stay cheap on the hot path. Message framing
follows RFC 9112 section 6; hop-by-hop fields follow RFC 9110 section 7.6.1.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from rollsafe.emulator._http1 import (
    BUFFER_BODY_MAX,
    CHUNKED,
    DROP_REQUEST,
    LENGTH,
    NONE,
    READ_SIZE,
    TO_EOF,
    HttpError,
    Message,
    body_framing,
    copy_chunked,
    copy_length,
    copy_to_eof,
    denied_response,
    error_response,
    read_response_head,
    response_framing,
    response_head,
    tunnel,
)
from rollsafe.emulator._pool import Backend, Pool
from rollsafe.emulator._request_log import DENIED_TEXT, RequestRecord

__all__ = ["READ_SIZE", "Access", "Proxy", "RequestLogger", "Route"]

#: called with each request's record (the emulator's RequestLog.add)
RequestLogger = Callable[[RequestRecord], None]


class Access(Protocol):
    """Who may use a service URL: ``check`` returns 0 to pass the request, else 401 or 403.

    ``audiences`` are the URLs a token for this service may name; ``authorization`` is the
    request's ``Authorization`` field, or None.
    """

    def check(
        self, service: str, audiences: frozenset[str], authorization: bytes | None
    ) -> int: ...


logger = logging.getLogger("rollsafe.emulator.router")


@dataclass(eq=False)
class Route:
    """What one listening port serves: ``pick`` names the revision for each request."""

    pick: Callable[[], str | None]
    label: str  # for error messages: "service S" or "tag T of service S"
    service: str = ""  # projects/P/locations/L/services/S, for access checks and logs
    #: the URLs an ID token may name to reach this route (the service's and its tags')
    audiences: frozenset[str] = frozenset()
    draining: bool = False
    #: open client connections: handler task -> (writer, busy with a request)
    connections: dict[asyncio.Task[None], _Connection] = field(default_factory=dict)


@dataclass(eq=False)
class _Connection:
    writer: asyncio.StreamWriter
    busy: bool = False


class _Outcome:
    """What was answered to one request, for its request log entry."""

    __slots__ = ("revision", "sent", "status", "text")

    def __init__(self) -> None:
        self.status = 0  # 0: nothing was answered
        self.sent = 0  # bytes sent to the client, head included
        self.revision = ""
        self.text = ""  # the router's own words when it answered itself

    def set(self, status: int, sent: int, revision: str, text: str) -> None:
        self.status, self.sent, self.revision, self.text = status, sent, revision, text


class _Failed(Exception):
    """The request cannot be served; answer with an error response."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _short(revision: str) -> str:
    """``projects/P/locations/L/services/S/revisions/R`` -> ``R``, for messages."""
    return revision.rsplit("/", 1)[-1]


def _reason(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "connection timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc)


class Proxy:
    """Serves client connections for any number of routes; shared state lives here."""

    def __init__(
        self,
        lookup: Callable[[str], int | None],
        host: str,
        *,
        connect_timeout: float,
        response_timeout: float,
        keepalive_timeout: float,
        pool_idle_ttl: float = 2.0,
        pool_max_idle: int = 64,
        access: Access | None = None,
        request_log: RequestLogger | None = None,
    ) -> None:
        self.lookup = lookup
        self.access = access
        self.request_log = request_log
        self.response_timeout = response_timeout
        self.keepalive_timeout = keepalive_timeout
        self.pool = Pool(host, connect_timeout, pool_idle_ttl, pool_max_idle)
        self.counts: dict[str, int] = {}
        self.active: dict[str, int] = {}

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, route: Route
    ) -> None:
        """Answer requests on one client connection until either side closes it."""
        task = asyncio.current_task()
        assert task is not None
        connection = _Connection(writer)
        route.connections[task] = connection
        peer = writer.get_extra_info("peername")
        client_ip = str(peer[0]).encode() if peer else b"127.0.0.1"
        local = writer.get_extra_info("sockname")
        # HTTP/1.1 requires Host, HTTP/1.0 clients may leave it out: the router's own address
        own_host = f"{local[0]}:{local[1]}".encode() if local else b"localhost"
        loop = asyncio.get_running_loop()
        try:
            while not route.draining:
                # a timer is cheaper than asyncio.timeout() per request; closing the
                # transport ends the read below with an error
                timer = loop.call_later(self.keepalive_timeout, writer.close)
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    writer.write(error_response(400, "request head too large", keep_alive=False))
                    return
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the client closed the connection (or went idle too long)
                finally:
                    timer.cancel()
                connection.busy = True
                if not await self._exchange(head, reader, writer, (client_ip, own_host), route):
                    return
                connection.busy = False
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except Exception:  # a bug here must cost one connection, never the listener
            logger.exception("router: error on a connection to %s", route.label)
        finally:
            del route.connections[task]
            writer.close()

    async def _exchange(
        self,
        head: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        addresses: tuple[bytes, bytes],
        route: Route,
    ) -> bool:
        """Answer one request; True when the client connection may carry another.

        ``addresses`` are the client's IP and the router's own host:port.
        """
        started = time.time()
        try:
            request = Message(head[:-4])
            version = request.start[2]
            if version not in (b"HTTP/1.1", b"HTTP/1.0"):
                raise HttpError("unsupported HTTP version")
            framing, length = body_framing(request)
        except HttpError as exc:
            writer.write(error_response(400, str(exc), keep_alive=False))
            return False
        connection_tokens = request.tokens(b"connection")
        if version == b"HTTP/1.1":
            keep_alive = b"close" not in connection_tokens
        else:
            keep_alive = b"keep-alive" in connection_tokens
        upgrade = request.fields.get(b"upgrade") if b"upgrade" in connection_tokens else None
        # (status, bytes sent, revision, the router's own text) for the request log
        outcome = _Outcome()
        try:
            return await self._answer(
                request,
                (framing, length),
                (reader, writer),
                addresses,
                route,
                keep_alive=keep_alive,
                upgrade=upgrade,
                outcome=outcome,
            )
        finally:
            if self.request_log is not None and outcome.status:
                self._log(request, len(head), length, addresses[0], route, started, outcome)

    def _log(
        self,
        request: Message,
        head_size: int,
        body_size: int,
        client_ip: bytes,
        route: Route,
        started: float,
        outcome: _Outcome,
    ) -> None:
        # only raw values here: the entry is built off the event loop
        assert self.request_log is not None
        fields = request.fields
        method, target, version = request.start
        self.request_log(
            RequestRecord(
                route.service,
                outcome.revision,
                started,
                time.time() - started,
                method,
                fields.get(b"host", b""),
                target,
                outcome.status,
                head_size + body_size,
                outcome.sent,
                fields.get(b"user-agent", b""),
                client_ip,
                version,
                _trace_id(fields),
                fields.get(b"referer", b""),
                outcome.text,
            )
        )

    async def _answer(
        self,
        request: Message,
        body_framing: tuple[int, int],
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        addresses: tuple[bytes, bytes],
        route: Route,
        *,
        keep_alive: bool,
        upgrade: bytes | None,
        outcome: _Outcome,
    ) -> bool:
        """Check access, pick a revision and relay; ``outcome`` gets what was answered."""
        reader, writer = client
        method, target, version = request.start
        framing, length = body_framing
        if self.access is not None:
            verdict = self.access.check(
                route.service, route.audiences, request.fields.get(b"authorization")
            )
            if verdict:
                # an unread request body would be taken for the next request: close instead
                keep_alive = keep_alive and framing == NONE
                response = denied_response(verdict, target, keep_alive=keep_alive)
                writer.write(response)
                # logged against the revision that would have answered, as Cloud Run does
                outcome.set(verdict, len(response), route.pick() or "", DENIED_TEXT[verdict])
                return keep_alive

        revision = route.pick()
        port = None
        if revision is not None:
            try:
                port = self.lookup(revision)
            except Exception:  # a failing lookup must not become a 500 or a dropped connection
                port = None
        if revision is None or port is None:
            if revision is None:
                message = f"{route.label} has no revision to serve traffic"
            else:
                message = f"revision {_short(revision)} of {route.label} is not running"
            keep_alive = keep_alive and framing == NONE
            response = error_response(503, message, keep_alive=keep_alive)
            writer.write(response)
            outcome.set(503, len(response), revision or "", message)
            return keep_alive

        if (
            framing != NONE
            and version == b"HTTP/1.1"
            and request.fields.get(b"expect", b"").lower() == b"100-continue"
        ):
            # answered here rather than relayed: the body is read (below) before the
            # backend's response, and the backend only sends 100 once its app reads
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")

        connection_tokens = request.tokens(b"connection")
        drop = DROP_REQUEST | connection_tokens
        out = [method, b" ", target, b" HTTP/1.1\r\n"]
        for name, lower, value in request.headers:
            if lower not in drop:
                out += (name, b": ", value, b"\r\n")
        client_ip, own_host = addresses
        if b"host" not in request.fields:
            out += (b"Host: ", own_host, b"\r\n")
        forwarded_for = request.fields.get(b"x-forwarded-for")
        out += (
            b"X-Forwarded-For: ",
            forwarded_for + b", " + client_ip if forwarded_for else client_ip,
            b"\r\nX-Forwarded-Proto: http\r\n",
        )
        if self.request_log is not None and not _has_trace(request.fields):
            # as Cloud Run, start a trace the app can log against, and log it ourselves
            # ids, not secrets: the PRNG spares a system call per request
            trace = b"%032x" % random.getrandbits(128)
            span = random.getrandbits(63)
            out.append(b"X-Cloud-Trace-Context: %b/%d;o=0\r\n" % (trace, span))
            request.fields[b"x-cloud-trace-context"] = trace
        if framing == CHUNKED:
            out.append(b"Transfer-Encoding: chunked\r\n")
        if upgrade is not None:
            out += (b"Connection: Upgrade\r\nUpgrade: ", upgrade, b"\r\n")
        out.append(b"\r\n")
        streamed = framing == CHUNKED or (framing == LENGTH and length > BUFFER_BODY_MAX)
        if framing == LENGTH and not streamed:
            out.append(await reader.readexactly(length))

        self.counts[revision] = self.counts.get(revision, 0) + 1
        self.active[revision] = self.active.get(revision, 0) + 1
        outcome.revision = revision
        try:
            return await self._forward(
                b"".join(out),
                (reader, writer),
                revision=revision,
                port=port,
                method=method,
                client_version=version,
                keep_alive=keep_alive,
                body=(framing, length) if streamed else None,
                upgrade=upgrade is not None,
                route=route,
                outcome=outcome,
            )
        except _Failed as exc:
            # only raised before anything of a response was written to the client
            keep_alive = keep_alive and not streamed
            response = error_response(exc.status, exc.message, keep_alive=keep_alive)
            writer.write(response)
            outcome.set(exc.status, len(response), revision, exc.message)
            return keep_alive
        finally:
            self.active[revision] -= 1

    async def _forward(
        self,
        request: bytes,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        *,
        revision: str,
        port: int,
        method: bytes,
        client_version: bytes,
        keep_alive: bool,
        body: tuple[int, int] | None,
        upgrade: bool,
        route: Route,
        outcome: _Outcome,
    ) -> bool:
        """Relay one exchange with a revision; True when the client connection stays open.

        ``outcome`` gets the status and the bytes sent to the client.
        """
        reader, writer = client
        backend, response, (kind, length), body_task = await self._send(
            request, reader, revision=revision, port=port, method=method, body=body, upgrade=upgrade
        )
        reusable = False
        outcome.status = int(response.start[1])
        try:
            if response.start[1] == b"101":
                head = response_head(response, revision, upgrade=True)
                outcome.sent = len(head)
                writer.write(head)
                await tunnel(client, (backend.reader, backend.writer))
                return False
            client_chunked = kind in (CHUNKED, TO_EOF) and client_version == b"HTTP/1.1"
            if kind in (CHUNKED, TO_EOF) and not client_chunked:
                keep_alive = False  # an HTTP/1.0 client learns where the body ends by the close
            keep_alive = keep_alive and not route.draining
            head = response_head(
                response,
                revision,
                chunked=client_chunked,
                keep_alive=keep_alive,
                client_version=client_version,
            )
            outcome.sent = len(head)
            if kind == LENGTH and length <= BUFFER_BODY_MAX:
                # one write, so one segment and one system call, for the common small answer
                writer.write(head + await backend.reader.readexactly(length))
                outcome.sent = len(head) + length
                await writer.drain()
            elif kind == LENGTH:
                writer.write(head)
                await copy_length(backend.reader, writer, length)
                outcome.sent = len(head) + length
            elif kind == CHUNKED:
                writer.write(head)
                sent = await copy_chunked(backend.reader, writer, keep_framing=client_chunked)
                outcome.sent = len(head) + sent
            elif kind == TO_EOF:
                writer.write(head)
                sent = await copy_to_eof(backend.reader, writer, chunked=client_chunked)
                outcome.sent = len(head) + sent
            else:
                writer.write(head)
                await writer.drain()
            if body_task is not None and (not body_task.done() or body_task.exception()):
                # answered before the whole request body went through: neither connection
                # knows where its next message starts
                return False
            reusable = (
                kind != TO_EOF
                and not upgrade
                and response.start[0] == b"HTTP/1.1"
                and b"close" not in response.tokens(b"connection")
            )
            return keep_alive
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return False  # either side went away mid-body; nothing more can be said on it
        except HttpError:
            return False  # the backend's body framing broke after the head was relayed
        finally:
            if body_task is not None and not body_task.done():
                body_task.cancel()
                await asyncio.gather(body_task, return_exceptions=True)
            if reusable:
                self.pool.release(port, backend)
            elif upgrade and response.start[1] == b"101":
                backend.writer.close()  # flush what the client sent last, then close
            else:
                backend.close()

    async def _send(
        self,
        request: bytes,
        reader: asyncio.StreamReader,
        *,
        revision: str,
        port: int,
        method: bytes,
        body: tuple[int, int] | None,
        upgrade: bool,
    ) -> tuple[Backend, Message, tuple[int, int], asyncio.Task[None] | None]:
        """Send the request, read the final response head; raise _Failed when there is none."""
        # a pooled connection may have been closed by the backend just before we wrote to it;
        # a request whose body is still in hand can then go again on a fresh connection
        attempts = 1 if body is not None or upgrade else 2
        name = _short(revision)
        for attempt in range(attempts):
            try:
                backend = await self.pool.acquire(port, fresh=upgrade or attempt > 0)
            except (OSError, TimeoutError) as exc:
                raise _Failed(
                    503, f"revision {name} is not reachable at port {port}: {_reason(exc)}"
                ) from None
            backend.writer.write(request)
            body_task = None
            if body is not None:
                body_task = asyncio.create_task(self._send_body(reader, backend.writer, body))
            try:
                async with asyncio.timeout(self.response_timeout):
                    response = await read_response_head(backend.reader, upgrade)
                return backend, response, response_framing(response, method), body_task
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                failure = _Failed(503, f"revision {name} closed the connection without a response")
                retry = (
                    backend.reused
                    and attempt + 1 < attempts
                    and not (isinstance(exc, asyncio.IncompleteReadError) and exc.partial)
                )
            except TimeoutError:
                failure = _Failed(
                    504, f"revision {name} did not answer in {self.response_timeout:g}s"
                )
                retry = False
            except (HttpError, asyncio.LimitOverrunError):
                failure = _Failed(503, f"revision {name} sent a malformed response")
                retry = False
            except asyncio.CancelledError:  # the router is closing: leave nothing open
                backend.close()
                if body_task is not None:
                    body_task.cancel()
                raise
            backend.close()
            if body_task is not None:
                body_task.cancel()
                await asyncio.gather(body_task, return_exceptions=True)
            if not retry:
                raise failure
        raise AssertionError("unreachable")

    @staticmethod
    async def _send_body(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: tuple[int, int]
    ) -> None:
        # runs beside the response read: a backend may answer before it reads everything
        kind, length = body
        if kind == CHUNKED:
            await copy_chunked(reader, writer, keep_framing=True)
        else:
            await copy_length(reader, writer, length)


def _has_trace(fields: dict[bytes, bytes]) -> bool:
    return b"x-cloud-trace-context" in fields or b"traceparent" in fields


def _trace_id(fields: dict[bytes, bytes]) -> str:
    """The trace a request belongs to: ``X-Cloud-Trace-Context`` or W3C ``traceparent``."""
    cloud = fields.get(b"x-cloud-trace-context")
    if cloud:
        return cloud.split(b"/", 1)[0].split(b";", 1)[0].decode("latin-1")
    parent = fields.get(b"traceparent")
    if parent:
        parts = parent.split(b"-")
        if len(parts) >= 3:
            return parts[1].decode("latin-1")
    return f"{random.getrandbits(128):032x}"  # no trace header, and refused before a revision
