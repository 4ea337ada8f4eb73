"""Local alert receivers for the monitor's tests: real HTTP servers on 127.0.0.1 (one
thread each, a thread per request) that record every request and answer as told.

    with ServerPool() as pool:
        hook = pool.start()                      # answers 200
        hook.respond(429, 500, retry_after=0)    # the next two requests, then 200 again
        hook.delay = 5.0                         # every request answered after 5 s
        ...
        hook.wait_for(2)                         # until 2 requests arrived (or fail)
        hook.requests[0].json

Tests take them with the ``receiver_servers`` fixture (``pool.start``); the end-to-end
tests of the engine reuse them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = [
    "Recorded",
    "RecordingServer",
    "ServerPool",
    "receiver_servers",
]


@dataclass
class Recorded:
    """One request as the server got it; ``finished`` is set once it was answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    started: float
    finished: float | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class _Answer:
    status: int
    retry_after: str | None = None


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A sender that hangs up mid-request (a receiver closed while slow) is expected
        here: no traceback on the test run's stderr."""


@dataclass
class RecordingServer:
    """An HTTP server recording every request; answers ``status`` (queued answers from
    ``respond`` first), after ``delay`` seconds."""

    status: int = 200
    answer_body: bytes = b'{"status": "success", "message": "Event processed"}'
    delay: float = 0.0
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._answers: list[_Answer] = []
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def respond(self, *statuses: int, retry_after: float | str | None = None) -> None:
        """Answer the next requests with ``statuses``, one each (with ``Retry-After``
        when given), then ``status`` again."""
        with self._cond:
            for status in statuses:
                after = None if retry_after is None else str(retry_after)
                self._answers.append(_Answer(status, after))

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Recorded]:
        """The first ``count`` requests, once they were answered; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(1 for r in self.requests if r.finished is not None) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.requests)} request(s) arrived at {self.url}, not {count}"
                    )
                self._cond.wait(left)
            return list(self.requests[:count])

    def bodies(self) -> list[Any]:
        """The JSON body of every request so far."""
        with self._cond:
            return [r.json for r in self.requests]

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _next(self) -> _Answer:
        with self._cond:
            return self._answers.pop(0) if self._answers else _Answer(self.status)

    def _record(self, recorded: Recorded) -> None:
        with self._cond:
            self.requests.append(recorded)
            self._cond.notify_all()

    def _done(self, recorded: Recorded) -> None:
        with self._cond:
            recorded.finished = time.monotonic()
            self._cond.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                answer = server._next()
                recorded = Recorded(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    status=answer.status,
                    started=time.monotonic(),
                )
                server._record(recorded)
                if server.delay:
                    server._closing.wait(server.delay)
                payload = server.answer_body if answer.status < 300 else b'{"error": "no"}'
                self.send_response(answer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                if answer.retry_after is not None:
                    self.send_header("retry-after", answer.retry_after)
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                server._done(recorded)

            do_PUT = do_POST

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

        return Handler


class ServerPool:
    """Recording servers closed together."""

    def __init__(self) -> None:
        self.servers: list[RecordingServer] = []

    def start(self, **options: Any) -> RecordingServer:
        server = RecordingServer(**options)
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in self.servers:
            server.close()

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def receiver_servers() -> Iterator[Callable[..., RecordingServer]]:
    """``start(**options) -> RecordingServer``; every server is closed after the test."""
    with ServerPool() as pool:
        yield pool.start
