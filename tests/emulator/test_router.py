"""The router against real backends: uvicorn apps in child processes, raw TCP servers.

The router runs in an event loop of its own in a background thread (as it runs inside the
emulator's loop); the tests talk to it over loopback with blocking clients.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from rollsafe.emulator.router import REVISION_HEADER, Router, ServiceRoutes, SmoothWeighted

T = TypeVar("T")

SERVICE = "projects/p/locations/us-central1/services/web"
TIMEOUT = 15.0  # guards against a hang; no test asserts on time

# A revision: answers its name; /stream waits for /release between its two chunks, so that
# the first chunk can only arrive early if the router passes it through as it comes.
BACKEND = r"""
import asyncio, socket, sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

NAME = sys.argv[1]
release = asyncio.Event()

async def name(request):
    return PlainTextResponse(NAME)

async def headers(request):
    return JSONResponse([[k, v] for k, v in request.headers.items()])

async def echo(request):
    return Response(await request.body(), media_type="application/octet-stream")

async def stream(request):
    sse = request.query_params.get("sse") == "1"
    async def chunks():
        yield b"data: first\n\n" if sse else b"first\n"
        await release.wait()
        release.clear()
        yield b"data: second\n\n" if sse else b"second\n"
    return StreamingResponse(chunks(), media_type="text/event-stream" if sse else "text/plain")

async def do_release(request):
    release.set()
    return PlainTextResponse("released")

async def ws(websocket):
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(NAME + ":" + await websocket.receive_text())
    except WebSocketDisconnect:
        pass

app = Starlette(routes=[
    Route("/", name, methods=["GET", "POST", "HEAD"]),
    Route("/headers", headers),
    Route("/echo", echo, methods=["POST"]),
    Route("/stream", stream),
    Route("/release", do_release),
    WebSocketRoute("/ws", ws),
])
# IPPROTO_TCP, as uvicorn's own sockets have: asyncio sets TCP_NODELAY only on those, and
# without it each response waits out the client's delayed ACK (40 ms)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0))
sock.listen(128)  # before the port is told, so early connections wait in the backlog
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
"""

REVISIONS = ("web-00001-blu", "web-00002-grn", "web-00003-red")
BLUE, GREEN, RED = REVISIONS


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, int]]:
    """Three revisions, each a uvicorn process: revision name -> port."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", BACKEND, name], stdout=subprocess.PIPE, text=True
        )
        for name in REVISIONS
    }
    try:
        ports = {}
        for name, proc in procs.items():
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip().isdigit(), f"backend {name} did not start"
            ports[name] = int(line)
        yield ports
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


class RouterThread:
    """A Router in an event loop on a background thread, driven from the test's thread."""

    def __init__(self, lookup: Callable[[str], int | None], **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.router = self.call(self._create(lookup, options))

    @staticmethod
    async def _create(lookup: Callable[[str], int | None], options: dict[str, Any]) -> Router:
        return Router(lookup, **options)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT)

    def set_service(
        self,
        split: list[tuple[str, int]],
        tags: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> ServiceRoutes:
        return self.call(self.router.set_service(SERVICE, split, tags or {}, **kwargs))

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.call(self.router.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(TIMEOUT)
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()


@pytest.fixture
def lookup(backends: dict[str, int]) -> dict[str, int | None]:
    """What the router's lookup reads; a test may stop (None) or move a revision."""
    return dict(backends)


@pytest.fixture
def router(lookup: dict[str, int | None]) -> Iterator[RouterThread]:
    harness = RouterThread(lookup.get)
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def clients() -> Iterator[Callable[[str], http.client.HTTPConnection]]:
    """Keep-alive HTTP clients for a URL, all closed at the end."""
    opened: list[http.client.HTTPConnection] = []

    def connect(url: str) -> http.client.HTTPConnection:
        port = int(url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


def get(conn: http.client.HTTPConnection, path: str = "/", **kwargs: Any) -> tuple[int, str, str]:
    """(status, body, answering revision) of one request on a kept-alive connection."""
    conn.request("GET", path, **kwargs)
    response = conn.getresponse()
    body = response.read().decode()
    return response.status, body, response.getheader(REVISION_HEADER, "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT):
            return False
    except ConnectionRefusedError:
        return True


# -- the split -----------------------------------------------------------------------------


@pytest.mark.parametrize("revision", [BLUE, GREEN], ids=["blue", "green"])
def test_all_traffic_to_one_revision(router: RouterThread, clients: Any, revision: str) -> None:
    routes = router.set_service([(revision, 100)])
    conn = clients(routes.url)
    answers = [get(conn) for _ in range(20)]
    assert answers == [(200, revision, revision)] * 20
    assert router.router.stats() == {revision: 20}


@pytest.mark.parametrize(
    "split",
    [
        pytest.param([(BLUE, 50), (GREEN, 50)], id="50-50"),
        pytest.param([(BLUE, 90), (GREEN, 10)], id="90-10"),
        pytest.param([(BLUE, 34), (GREEN, 33), (RED, 33)], id="three-ways"),
    ],
)
def test_split_per_request_on_one_keepalive_connection(
    router: RouterThread, clients: Any, split: list[tuple[str, int]]
) -> None:
    routes = router.set_service(split)
    conn = clients(routes.url)
    seen: Counter[str] = Counter()
    get(conn)
    sock = conn.sock
    for _ in range(200):
        status, body, revision = get(conn)
        assert status == 200
        assert body == revision  # the header names the revision that answered
        seen[revision] += 1
    assert conn.sock is sock, "the client connection was not kept alive"
    for name, percent in split:
        share = seen[name] / 200 * 100
        assert percent - 10 <= share <= percent + 10, (name, share, seen)


def test_tag_url_reaches_its_revision_only(router: RouterThread, clients: Any) -> None:
    routes = router.set_service([(BLUE, 100)], {"canary": GREEN, "old": RED})
    assert set(routes.tag_urls) == {"canary", "old"}
    assert len({routes.port, *routes.tag_ports.values()}) == 3
    for tag, revision in [("canary", GREEN), ("old", RED)]:
        conn = clients(routes.tag_urls[tag])
        assert {get(conn)[2] for _ in range(20)} == {revision}
    assert {get(clients(routes.url))[2] for _ in range(20)} == {BLUE}


def test_split_and_tags_change_live(router: RouterThread, clients: Any) -> None:
    routes = router.set_service([(BLUE, 100)], {"canary": GREEN})
    conn = clients(routes.url)
    tag_conn = clients(routes.tag_urls["canary"])
    assert get(conn)[2] == BLUE
    assert get(tag_conn)[2] == GREEN

    again = router.set_service([(GREEN, 100)], {"canary": RED})
    assert again == routes  # same ports: the URLs are stable
    assert get(conn)[2] == GREEN  # the same kept-alive connection follows the new split
    assert get(tag_conn)[2] == RED


def test_in_flight_request_survives_a_split_change(
    router: RouterThread, clients: Any, backends: dict[str, int]
) -> None:
    routes = router.set_service([(BLUE, 100)])
    conn = clients(routes.url)
    conn.request("GET", "/stream")
    response = conn.getresponse()
    assert response.getheader(REVISION_HEADER) == BLUE
    assert response.readline() == b"first\n"

    router.set_service([(GREEN, 100)])
    get(clients(f"http://127.0.0.1:{backends[BLUE]}"), "/release")
    assert response.read() == b"second\n"
    assert get(conn)[2] == GREEN


# -- streams and websockets ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "first", "rest", "content_type"),
    [
        pytest.param("", b"first\n", b"second\n", "text/plain", id="chunked"),
        pytest.param(
            "?sse=1", b"data: first\n", b"\ndata: second\n\n", "text/event-stream", id="sse"
        ),
    ],
)
def test_streaming_response_arrives_in_pieces(
    router: RouterThread,
    clients: Any,
    backends: dict[str, int],
    query: str,
    first: bytes,
    rest: bytes,
    content_type: str,
) -> None:
    routes = router.set_service([(GREEN, 100)])
    conn = clients(routes.url)
    conn.request("GET", "/stream" + query)
    response = conn.getresponse()
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert (response.getheader("Content-Type") or "").startswith(content_type)
    # the backend holds its second chunk until /release: the first can only be read now if
    # the router relayed it without waiting for the end of the body
    assert response.readline() == first
    assert get(clients(f"http://127.0.0.1:{backends[GREEN]}"), "/release")[1] == "released"
    assert response.read() == rest
    assert get(conn)[:2] == (200, GREEN)  # the connection is still good afterwards


@pytest.mark.parametrize("via", ["service", "tag"])
def test_websocket_echo_through_the_router(router: RouterThread, via: str) -> None:
    from websockets.sync.client import connect

    routes = router.set_service([(BLUE, 100)], {"canary": RED})
    url, revision = (routes.url, BLUE) if via == "service" else (routes.tag_urls["canary"], RED)
    with connect(url.replace("http://", "ws://") + "/ws", open_timeout=TIMEOUT) as ws:
        assert ws.response is not None
        assert ws.response.headers[REVISION_HEADER] == revision
        for message in ["hello", "x" * 100_000]:
            ws.send(message)
            assert ws.recv(timeout=TIMEOUT) == f"{revision}:{message}"
        assert router.router.in_flight() == {revision: 1}


# -- bodies and headers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "chunked"),
    [(0, False), (1000, False), (300_000, False), (300_000, True)],
    ids=["empty", "small", "large", "chunked"],
)
def test_request_body_reaches_the_revision(
    router: RouterThread, clients: Any, size: int, chunked: bool
) -> None:
    routes = router.set_service([(RED, 100)])
    conn = clients(routes.url)
    payload = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    for _ in range(2):  # twice on one connection: the body's end was found exactly
        if chunked:
            pieces = [payload[i : i + 70_000] for i in range(0, size, 70_000)]
            conn.request("POST", "/echo", body=iter(pieces), encode_chunked=True)
        else:
            conn.request("POST", "/echo", body=payload)
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == payload


def test_forwarding_headers(router: RouterThread, clients: Any) -> None:
    routes = router.set_service([(BLUE, 100)])
    conn = clients(routes.url)
    status, body, revision = get(
        conn,
        "/headers",
        headers={
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "one hop only",
            "Keep-Alive": "timeout=5",
            "X-Custom": "kept",
        },
    )
    seen = dict(json.loads(body))
    assert status == 200
    assert revision == BLUE
    assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-custom"] == "kept"
    assert seen["host"] == f"127.0.0.1:{routes.port}"
    for hop in ("x-hop", "keep-alive", "connection"):
        assert hop not in seen


def test_head_request(router: RouterThread, clients: Any) -> None:
    routes = router.set_service([(BLUE, 100)])
    conn = clients(routes.url)
    conn.request("HEAD", "/")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader(REVISION_HEADER) == BLUE
    assert response.read() == b""
    assert get(conn)[1] == BLUE


def _raw_exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes, read until the router closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_http10_client(router: RouterThread) -> None:
    routes = router.set_service([(GREEN, 100)])
    answer = _raw_exchange(routes.port, b"GET / HTTP/1.0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Connection: close" in head
    assert body == GREEN.encode()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n Folded: no\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"NONSENSE\r\n\r\n",
    ],
    ids=["folded-header", "conflicting-length", "http2", "no-version"],
)
def test_malformed_request_gets_400(router: RouterThread, request_bytes: bytes) -> None:
    routes = router.set_service([(GREEN, 100)])
    answer = _raw_exchange(routes.port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == 400


# -- when no revision can answer -----------------------------------------------------------


@pytest.mark.parametrize(
    ("split", "stopped", "phrase"),
    [
        pytest.param([], None, "has no revision", id="no-targets"),
        pytest.param([(BLUE, 100)], "none", "is not running", id="not-running"),
        pytest.param([(BLUE, 100)], "refused", "connection refused", id="refused"),
    ],
)
def test_no_revision_to_answer_gives_503_json(
    router: RouterThread,
    clients: Any,
    lookup: dict[str, int | None],
    split: list[tuple[str, int]],
    stopped: str | None,
    phrase: str,
) -> None:
    if stopped == "none":
        lookup[BLUE] = None
    elif stopped == "refused":
        lookup[BLUE] = free_port()  # nothing listens there
    routes = router.set_service(split)
    conn = clients(routes.url)
    for _ in range(2):  # the connection stays usable after a 503
        conn.request("GET", "/")
        response = conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 503
        assert response.getheader("Content-Type") == "application/json; charset=utf-8"
        assert body["error"]["code"] == 503
        assert body["error"]["status"] == "UNAVAILABLE"
        assert phrase in body["error"]["message"]


async def _closed(server: asyncio.Server) -> None:
    # an asyncio server belongs to its loop: closing it from the test's thread races the
    # loop's own bookkeeping (asyncio.Server._wakeup then runs twice and fails)
    server.close()
    await server.wait_closed()


async def _canned_server(
    answer: bytes, *, one_per_connection: bool = False, hang: bool = False
) -> asyncio.Server:
    """A backend that answers the same bytes to any request, then closes.

    With ``one_per_connection`` it keeps the connection open after its answer (as if for
    keep-alive) but closes it, unanswered, when the next request comes in on it. With
    ``hang`` it never answers, and waits for the router to give up.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            if hang:
                await reader.read()
            writer.write(answer)
            await writer.drain()
            if one_per_connection:
                await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize(
    ("answer", "status", "body"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close",
            200,
            b"body until close",
            id="body-until-close",
        ),
        pytest.param(b"HTTP/1.0 200 OK\r\n\r\nold server", 200, b"old server", id="http10-server"),
        pytest.param(b"", 503, b"without a response", id="closes-without-answer"),
        pytest.param(b"garbage\r\n\r\n", 503, b"malformed response", id="malformed"),
    ],
)
def test_odd_backends(
    router: RouterThread,
    clients: Any,
    lookup: dict[str, int | None],
    answer: bytes,
    status: int,
    body: bytes,
) -> None:
    server = router.call(_canned_server(answer))
    try:
        lookup["odd"] = server.sockets[0].getsockname()[1]
        routes = router.set_service([("odd", 100)])
        conn = clients(routes.url)
        for _ in range(2):  # a body delimited by close is re-framed: the client keeps alive
            conn.request("GET", "/")
            response = conn.getresponse()
            assert response.status == status
            assert body in response.read()
    finally:
        router.call(_closed(server))


def test_revision_that_never_answers_gives_504(lookup: dict[str, int | None], clients: Any) -> None:
    harness = RouterThread(lookup.get, request_timeout=0.2)
    server = harness.call(_canned_server(b"", hang=True))
    try:
        lookup["odd"] = server.sockets[0].getsockname()[1]
        conn = clients(harness.set_service([("odd", 100)]).url)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 504
        assert json.loads(response.read())["error"]["status"] == "DEADLINE_EXCEEDED"
    finally:
        harness.call(_closed(server))
        harness.close()


def test_pooled_connection_closed_by_the_revision_is_retried(
    router: RouterThread, clients: Any, lookup: dict[str, int | None]
) -> None:
    server = router.call(
        _canned_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", one_per_connection=True)
    )
    try:
        lookup["odd"] = server.sockets[0].getsockname()[1]
        conn = clients(router.set_service([("odd", 100)]).url)
        # from the second request on, the pooled connection is closed on the request: the
        # router sends it again on a fresh connection instead of answering 503
        assert [get(conn)[:2] for _ in range(3)] == [(200, "ok")] * 3
    finally:
        router.call(_closed(server))


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_expect_100_continue(router: RouterThread) -> None:
    routes = router.set_service([(RED, 100)])
    with socket.create_connection(("127.0.0.1", routes.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        assert _read_until(sock, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        answer = _read_until(sock, b"never")  # the router closes: Connection: close
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"\r\n\r\nhello")


def test_pipelined_requests_are_split_too(router: RouterThread) -> None:
    routes = router.set_service([(BLUE, 50), (GREEN, 50)])
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = _raw_exchange(
        routes.port, request * 3 + request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    )
    assert answer.count(b"HTTP/1.1 200 OK") == 4
    assert answer.count(f"{REVISION_HEADER}: {BLUE}".encode()) == 2
    assert answer.count(f"{REVISION_HEADER}: {GREEN}".encode()) == 2


# -- ports ---------------------------------------------------------------------------------


def test_remove_service_closes_its_ports(router: RouterThread, clients: Any) -> None:
    routes = router.set_service([(BLUE, 100)], {"canary": GREEN})
    assert get(clients(routes.url))[1] == BLUE
    router.call(router.router.remove_service(SERVICE))
    assert router.router.routes(SERVICE) is None
    assert refused(routes.port)
    assert refused(routes.tag_ports["canary"])
    router.call(router.router.remove_service(SERVICE))  # removing twice is harmless


def test_removing_a_tag_closes_its_port(router: RouterThread, clients: Any) -> None:
    routes = router.set_service([(BLUE, 100)], {"canary": GREEN, "old": RED})
    conn = clients(routes.tag_urls["canary"])
    assert get(conn)[2] == GREEN
    after = router.set_service([(BLUE, 100)], {"old": RED})
    assert after.tag_ports == {"old": routes.tag_ports["old"]}
    assert refused(routes.tag_ports["canary"])
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        get(conn)  # the idle kept-alive connection to the removed tag was closed


def test_in_flight_request_finishes_when_its_tag_is_removed(
    router: RouterThread, clients: Any, backends: dict[str, int]
) -> None:
    routes = router.set_service([(BLUE, 100)], {"canary": GREEN})
    conn = clients(routes.tag_urls["canary"])
    conn.request("GET", "/stream")
    response = conn.getresponse()
    assert response.readline() == b"first\n"

    router.set_service([(BLUE, 100)], {})
    assert refused(routes.tag_ports["canary"])  # closed to new connections at once
    get(clients(f"http://127.0.0.1:{backends[GREEN]}"), "/release")
    assert response.read() == b"second\n"  # while the request in flight finishes


def test_close_cuts_requests_in_flight(
    router: RouterThread, clients: Any, backends: dict[str, int]
) -> None:
    routes = router.set_service([(BLUE, 100)])
    conn = clients(routes.url)
    conn.request("GET", "/stream")
    response = conn.getresponse()
    assert response.readline() == b"first\n"
    try:
        router.close()  # returns without waiting for the stream to end
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            response.read()
        assert refused(routes.port)
    finally:
        get(clients(f"http://127.0.0.1:{backends[BLUE]}"), "/release")


@pytest.mark.parametrize("restart", [False, True], ids=["same-router", "new-router"])
def test_preferred_ports_are_reused(
    router: RouterThread, lookup: dict[str, int | None], clients: Any, restart: bool
) -> None:
    port, tag_port = free_port(), free_port()
    routes = router.set_service(
        [(BLUE, 100)], {"canary": GREEN}, port=port, tag_ports={"canary": tag_port}
    )
    assert (routes.port, routes.tag_ports) == (port, {"canary": tag_port})
    assert routes.url == f"http://127.0.0.1:{port}"
    assert get(clients(routes.url))[2] == BLUE  # leaves a connection in TIME_WAIT

    if restart:
        router.close()
        router = RouterThread(lookup.get)
    else:
        router.call(router.router.remove_service(SERVICE))
    try:
        again = router.set_service(
            [(BLUE, 100)], {"canary": GREEN}, port=port, tag_ports={"canary": tag_port}
        )
        assert again == routes
        assert get(clients(again.tag_urls["canary"]))[2] == GREEN
    finally:
        if restart:
            router.close()


def test_taken_preferred_port_falls_back(router: RouterThread, clients: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        routes = router.set_service([(BLUE, 100)], port=port)
        assert routes.port not in (port, 0)
        assert get(clients(routes.url))[2] == BLUE


# -- the interface -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "split",
    [[(BLUE, 50)], [(BLUE, 60), (GREEN, 60)], [(BLUE, 110), (GREEN, -10)]],
    ids=["under-100", "over-100", "negative"],
)
def test_split_must_sum_to_100(router: RouterThread, split: list[tuple[str, int]]) -> None:
    with pytest.raises(ValueError, match="traffic percents"):
        router.set_service(split)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.com"])
def test_router_listens_on_loopback_only(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        Router(lambda name: None, host=host)


@pytest.mark.parametrize(
    ("split", "picks", "expected"),
    [
        pytest.param([("a", 50), ("b", 50)], 4, ["a", "b", "a", "b"], id="alternates"),
        pytest.param([("a", 100)], 3, ["a", "a", "a"], id="single"),
        pytest.param([("a", 0), ("b", 100)], 2, ["b", "b"], id="zero-weight"),
        pytest.param([], 2, [None, None], id="empty"),
    ],
)
def test_smooth_weighted_sequence(
    split: list[tuple[str, int]], picks: int, expected: list[str | None]
) -> None:
    balancer = SmoothWeighted(split)
    assert [balancer.pick() for _ in range(picks)] == expected


@pytest.mark.parametrize(
    "split",
    [
        [("a", 90), ("b", 10)],
        [("a", 1), ("b", 99)],
        [("a", 33), ("b", 33), ("c", 34)],
        [("a", 50), ("a", 25), ("b", 25)],
    ],
    ids=["90-10", "1-99", "thirds", "same-revision-twice"],
)
def test_smooth_weighted_is_exact_over_100_picks(split: list[tuple[str, int]]) -> None:
    balancer = SmoothWeighted(split)
    expected: Counter[str] = Counter()
    for name, percent in split:
        expected[name] += percent
    assert Counter(balancer.pick() for _ in range(100)) == expected


# -- access checks and request records -------------------------------------------------------


class BearerGood:
    """Passes ``Bearer good`` for the service's own URLs: 403 without a token, else 401."""

    def __init__(self) -> None:
        self.audiences: list[frozenset[str]] = []

    def check(self, service: str, audiences: frozenset[str], authorization: bytes | None) -> int:
        assert service == SERVICE
        self.audiences.append(audiences)
        if authorization is None:
            return 403
        return 0 if authorization == b"Bearer good" else 401


def test_access_refuses_with_cloud_run_pages_and_every_request_is_recorded(
    backends: dict[str, int], clients: Callable[[str], http.client.HTTPConnection]
) -> None:
    from rollsafe.emulator._request_log import RequestRecord

    access = BearerGood()
    records: list[RequestRecord] = []
    harness = RouterThread(backends.get, access=access, request_log=records.append)
    try:
        routes = harness.set_service([(BLUE, 100)], {"canary": GREEN})
        conn = clients(routes.url)
        status, body, revision = get(conn, "/headers?x=1")
        assert (status, revision) == (403, "")
        assert "<code>/headers?x=1</code> from this server." in body
        status, body, _ = get(conn, "/", headers={"Authorization": "Bearer bad"})
        assert status == 401
        assert "<h1>Error: Unauthorized</h1>" in body
        # the refusals kept the connection: it still serves, the token passed along
        status, body, revision = get(
            conn, "/headers", headers={"Authorization": "Bearer good", "User-Agent": "probe/1"}
        )
        assert (status, revision) == (200, BLUE)
        served_body = body
        forwarded = dict(json.loads(body))
        assert forwarded["authorization"] == "Bearer good"
        trace = forwarded["x-cloud-trace-context"].split("/")[0]
        status, _, revision = get(
            clients(routes.tag_urls["canary"]), "/", headers={"Authorization": "Bearer good"}
        )
        assert (status, revision) == (200, GREEN)
    finally:
        harness.close()

    urls = {routes.url, routes.tag_urls["canary"]}
    assert access.audiences[-1] == frozenset(urls | {url + "/" for url in urls})
    assert [(r.status, r.revision, r.target) for r in records] == [
        (403, BLUE, b"/headers?x=1"),  # refused requests name the revision that would answer
        (401, BLUE, b"/"),
        (200, BLUE, b"/headers"),
        (200, GREEN, b"/"),
    ]
    refused, _, served, _ = records
    assert "not authenticated" in refused.text
    assert served.text == ""
    assert served.trace_id == trace  # the trace the router started is the one it logs
    assert served.user_agent == b"probe/1"
    assert served.remote_ip == b"127.0.0.1"
    assert served.response_size > len(served_body.encode()) > 0
    assert served.request_size > 0
    assert served.latency >= 0
