"""The probes' lean HTTP/1.1 client, against real asyncio servers on loopback (and TLS)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rollsafe.manifest.resolved import ResolvedHealth
from rollsafe.monitor._http_probe import BODY_LIMIT, HEAD_LIMIT, Answer, NoAnswer, Origin
from rollsafe.monitor.probe import AsyncProber

TOKEN = "Bearer eyJcanary.eyJcanary-token.c2lnbmF0dXJl"  # must never be in a detail
JSON = b'{"status":"ok"}'
HANG = "hang"  # a reply: never answer
#: a reply: bytes to send, and whether to close the connection after them; None closes the
#: connection without answering; HANG never answers
Reply = tuple[bytes, bool] | None | str


def answer(body: bytes = JSON, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    return head + b"Content-Length: %d\r\n%b\r\n%b" % (len(body), extra, body)


def ok(body: bytes = JSON, *, extra: bytes = b"", close: bool = False) -> Reply:
    return answer(body, extra), close


@dataclass
class Served:
    """What a test server saw: connections accepted and request heads, in order."""

    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    closed: int = 0  # connections that ended (either side)


@contextlib.asynccontextmanager
async def serve(
    script: Callable[[int], Reply], tls: ssl.SSLContext | None = None
) -> AsyncIterator[Served]:
    """An asyncio server on 127.0.0.1 replying to request N (1-based, over all connections)
    with ``script(N)``; every connection is closed when the block ends."""
    served = Served()
    tasks: set[asyncio.Task[Any]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.append(writer)
        served.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                served.requests.append(head)
                reply = script(len(served.requests))
                if reply == HANG:
                    await reader.read()  # until the client gives up and closes
                if not isinstance(reply, tuple):
                    break
                writer.write(reply[0])
                await writer.drain()
                if reply[1]:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            served.closed += 1
            writer.transport.abort()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    served.port = server.sockets[0].getsockname()[1]
    try:
        yield served
    finally:
        server.close()
        for writer in writers:
            writer.transport.abort()  # its handler then reads the end and returns
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def run(script: Callable[[int], Reply], body: Callable[[Origin, Served], Awaitable[Any]]) -> Any:
    """Start a server with ``script``, run ``body`` with an Origin for it, close both."""

    async def main() -> Any:
        async with serve(script) as served:
            origin = Origin("http", "127.0.0.1", served.port)
            try:
                return await body(origin, served)
            finally:
                await origin.aclose()

    return asyncio.run(main())


async def fails(origin: Origin, timeout: float = 5.0, path: bytes = b"/health") -> str:
    with pytest.raises(NoAnswer) as caught:
        await origin.get(path, TOKEN, timeout)
    assert "canary" not in str(caught.value)
    return caught.value.detail


def test_content_length_answer_and_request_head() -> None:
    async def body(origin: Origin, served: Served) -> tuple[Answer, Served]:
        return await origin.get(b"/svc/health?x=1", TOKEN, 5.0), served

    answer, served = run(lambda n: ok(extra=b"X-Rollsafe-Revision: rev-1\r\n"), body)
    assert (answer.status, answer.body) == (200, JSON)
    assert (b"X-Rollsafe-Revision", b"rev-1") in answer.headers
    lines = served.requests[0].split(b"\r\n")
    assert lines[0] == b"GET /svc/health?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{served.port}".encode() in lines
    assert b"Connection: keep-alive" in lines
    assert b"Authorization: " + TOKEN.encode() in lines


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\n" + JSON[:5] + b"\r\n" + b"a\r\n" + JSON[5:] + b"\r\n0\r\nX-Trailer: t\r\n\r\n"
)
EARLY = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
TO_EOF = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + JSON

BODIES = [
    ("content-length", lambda n: ok(), 1),
    ("chunked", lambda n: (CHUNKED, False), 1),
    ("to-eof", lambda n: (TO_EOF, True), 3),  # the end of the body is the end of the connection
    ("http-1.0", lambda n: (b"HTTP/1.0 200 OK\r\nContent-Length: 15\r\n\r\n" + JSON, True), 3),
    ("connection-close", lambda n: ok(extra=b"Connection: close\r\n", close=True), 3),
    ("informational-first", lambda n: (EARLY + answer(), False), 1),
]


@pytest.mark.parametrize(
    ("script", "connections"), [b[1:] for b in BODIES], ids=[b[0] for b in BODIES]
)
def test_bodies_and_whether_the_connection_is_kept(
    script: Callable[[int], Reply], connections: int
) -> None:
    async def body(origin: Origin, served: Served) -> list[Answer]:
        return [await origin.get(b"/health", None, 5.0) for _ in range(3)]

    answers, served = run(script, _with_served(body))
    assert [(a.status, a.body) for a in answers] == [(200, JSON)] * 3
    assert served.connections == connections
    assert len(served.requests) == 3


def _with_served(
    body: Callable[[Origin, Served], Awaitable[Any]],
) -> Callable[[Origin, Served], Awaitable[tuple[Any, Served]]]:
    async def wrapped(origin: Origin, served: Served) -> tuple[Any, Served]:
        return await body(origin, served), served

    return wrapped


def test_redirects_are_answers_not_followed() -> None:
    reply = (b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n", False)

    async def body(origin: Origin, served: Served) -> Answer:
        return await origin.get(b"/health", None, 5.0)

    answer, served = run(lambda n: reply, _with_served(body))
    assert (answer.status, answer.body) == (302, b"")
    assert len(served.requests) == 1


CLOSINGS = [
    # the server closes its side right after an answer that said nothing of it
    ("closed-while-idle", lambda n: ok(close=True)),
    # the server reads the next request and closes without an answer (its idle timeout
    # raced the request): retried once on a new connection
    ("closed-on-the-request", lambda n: None if n == 2 else ok()),
]


@pytest.mark.parametrize("script", [c[1] for c in CLOSINGS], ids=[c[0] for c in CLOSINGS])
def test_a_kept_alive_connection_the_server_closed_is_replaced(
    script: Callable[[int], Reply],
) -> None:
    async def body(origin: Origin, served: Served) -> list[Answer]:
        first = await origin.get(b"/health", None, 5.0)
        if served.requests and script(2) is not None:
            # let the server's close arrive before the next probe, as between two passes
            while served.closed < 1:
                await asyncio.sleep(0.01)
        return [first, await origin.get(b"/health", None, 5.0)]

    answers, served = run(script, _with_served(body))
    assert [a.status for a in answers] == [200, 200]
    assert served.connections == 2


def test_a_new_connection_closed_without_answer_is_not_retried() -> None:
    async def body(origin: Origin, served: Served) -> str:
        return await fails(origin)

    detail, served = run(lambda n: None, _with_served(body))
    assert detail == "request failed (RemoteProtocolError)"
    assert (served.connections, len(served.requests)) == (1, 1)


def test_a_stale_connection_is_retried_once_only() -> None:
    async def body(origin: Origin, served: Served) -> tuple[Answer, str]:
        return await origin.get(b"/health", None, 5.0), await fails(origin)

    (first, detail), served = run(lambda n: ok() if n == 1 else None, _with_served(body))
    assert first.status == 200
    assert detail == "request failed (RemoteProtocolError)"
    assert (served.connections, len(served.requests)) == (2, 3)


FAILURES = [
    ("slow-server", lambda n: HANG, "timed out after 0.2 s"),
    (
        "head-too-large",
        lambda n: (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * HEAD_LIMIT + b"\r\n\r\n", False),
        "response head too large (over 64 KiB)",
    ),
    (
        "content-length-too-large",
        lambda n: (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (BODY_LIMIT + 1), False),
        "body too large (over 1 MiB)",
    ),
    (
        "chunked-too-large",
        lambda n: (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + (b"10000\r\n" + b"a" * 0x10000 + b"\r\n") * 17
            + b"0\r\n\r\n",
            False,
        ),
        "body too large (over 1 MiB)",
    ),
    (
        "to-eof-too-large",
        lambda n: (b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * (BODY_LIMIT + 1), True),
        "body too large (over 1 MiB)",
    ),
    (
        "not-http",
        lambda n: (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", True),
        "request failed (RemoteProtocolError)",
    ),
    (
        "truncated-body",
        lambda n: (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + JSON, True),
        "request failed (RemoteProtocolError)",
    ),
    (
        "bad-chunk-size",
        lambda n: (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", True),
        "request failed (RemoteProtocolError)",
    ),
    (
        "two-content-lengths",
        lambda n: (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", True),
        "request failed (RemoteProtocolError)",
    ),
]


@pytest.mark.parametrize(
    ("script", "detail"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
def test_failures_are_no_answer_with_a_short_reason(
    script: Callable[[int], Reply], detail: str
) -> None:
    async def body(origin: Origin, served: Served) -> tuple[str, bool]:
        got = await fails(origin, timeout=0.2 if script(1) == HANG else 5.0)
        return got, not origin._open  # the failed connection is closed, not kept

    assert run(script, body) == (detail, True)


def test_connection_refused_is_a_connect_error() -> None:
    async def main() -> str:
        async with serve(lambda n: ok()) as served:
            port = served.port
        origin = Origin("http", "127.0.0.1", port)
        try:
            return await fails(origin)
        finally:
            await origin.aclose()

    assert asyncio.run(main()) == "request failed (ConnectError)"


def test_a_header_value_with_a_line_break_is_refused_without_telling_it() -> None:
    async def body(origin: Origin, served: Served) -> tuple[str, int]:
        with pytest.raises(NoAnswer) as caught:
            await origin.get(b"/health", "Bearer canary\r\nX-Evil: 1", 5.0)
        return caught.value.detail, len(served.requests)

    detail, sent = run(lambda n: ok(), body)
    assert (detail, sent) == ("request failed (LocalProtocolError)", 0)


def test_aclose_closes_idle_and_busy_connections() -> None:
    async def main() -> tuple[int, str]:
        async with serve(lambda n: ok() if n == 1 else HANG) as served:
            idle = Origin("http", "127.0.0.1", served.port)
            busy = Origin("http", "127.0.0.1", served.port)
            await idle.get(b"/health", None, 5.0)
            probe = asyncio.create_task(fails(busy, timeout=60.0))
            while len(served.requests) < 2:
                await asyncio.sleep(0.01)
            await idle.aclose()
            await busy.aclose()
            detail = await probe
            while served.closed < 2:
                await asyncio.sleep(0.01)
            return served.closed, detail

    closed, detail = asyncio.run(main())
    assert closed == 2
    assert detail.startswith("request failed (")


# --- https --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert file, key file, PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder / "cert.pem", folder / "key.pem", pem


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_https_with_a_trusted_certificate(certificate: tuple[Path, Path, bytes], host: str) -> None:
    cert, key, pem = certificate
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cadata=pem.decode())

    async def main() -> tuple[list[int], int, str]:
        async with serve(lambda n: ok(), tls=server_tls) as served:
            trusted = Origin("https", host, served.port, tls=client_tls)
            untrusted = Origin("https", host, served.port)  # the system's CAs only
            try:
                answers = [await trusted.get(b"/health", TOKEN, 5.0) for _ in range(2)]
                refused = await fails(untrusted)
            finally:
                await trusted.aclose()
                await untrusted.aclose()
            return [a.status for a in answers], served.connections, refused

    statuses, connections, refused = asyncio.run(main())
    assert statuses == [200, 200]
    assert connections == 1  # kept alive; the refused handshake never became a connection
    assert refused == "request failed (ConnectError)"


# --- through AsyncProber -----------------------------------------------------------------


def test_prober_judges_the_lean_clients_answers() -> None:
    """Chunked JSON, an informational answer first, a gzip body it did not ask for: judged
    as httpx's answers were; one connection for the three probes."""
    import gzip

    replies = [
        (CHUNKED, False),
        (EARLY + answer(), False),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%b"
            % (len(gzip.compress(JSON)), gzip.compress(JSON)),
            False,
        ),
    ]

    async def main() -> tuple[list[tuple[bool, int | None, str]], int]:
        async with serve(lambda n: replies[n - 1]) as served:
            health = ResolvedHealth(path="/health", expect_json={"status": "ok"})
            async with AsyncProber(None) as prober:
                samples = [
                    await prober.probe("svc", f"http://127.0.0.1:{served.port}", health)
                    for _ in replies
                ]
            return [(s.ok, s.status, s.detail) for s in samples], served.connections

    samples, connections = asyncio.run(main())
    assert samples == [(True, 200, "")] * 3
    assert connections == 1
