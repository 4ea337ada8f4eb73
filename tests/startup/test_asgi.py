"""The guard wired into Starlette and FastAPI apps, driven in-process over raw ASGI.

(Starlette's TestClient is avoided on purpose: it warns about its httpx backend, and
warnings are errors here. The driver below speaks the ASGI protocol itself.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from rollsafe.startup import DeterministicStartupError, StartupGuard
from tests.startup.conftest import WEAK_SECRET, contract_vars, staging_values


class Lifespan:
    """Runs an app's lifespan like a server: startup, then shutdown on exit."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Lifespan:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.create_task(self._run(scope))
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self.outbox.get()
        if message["type"] == "lifespan.startup.failed":
            await asyncio.gather(self.task, return_exceptions=True)
            raise StartupFailed(message.get("message", ""), self.task)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.outbox.get()
        assert self.task is not None
        await self.task

    async def _run(self, scope: dict[str, Any]) -> None:
        await self.app(scope, self.inbox.get, self.outbox.put)


class StartupFailed(Exception):
    def __init__(self, message: str, task: asyncio.Task[None]) -> None:
        super().__init__(message)
        self.error = task.exception()


async def request(app: Any, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], headers, body


async def websocket_first(app: Any, path: str) -> dict[str, Any]:
    """Connect and return the app's first answer (accept or close)."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
        "state": {},
    }
    sent: list[dict[str, Any]] = []
    incoming = iter([{"type": "websocket.connect"}])

    async def receive() -> dict[str, Any]:
        return next(incoming, {"type": "websocket.disconnect", "code": 1000})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]


def _guard(**changes: str) -> StartupGuard:
    guard = StartupGuard.from_env(
        {**contract_vars(), **staging_values(), **changes}, exit_process=False
    )
    guard._log = lambda line: None
    return guard


async def _own_health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("the app's own")


async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def _echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hi")
    await websocket.close()


def _starlette(events: list[str]) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("app start")
        yield
        events.append("app stop")

    routes = [Route("/", _hello), Route("/health", _own_health), WebSocketRoute("/ws", _echo)]
    return Starlette(routes=routes, lifespan=lifespan)


def test_starlette_app_keeps_its_lifespan_and_routes() -> None:
    events: list[str] = []
    guard = _guard()
    app = guard.install(_starlette(events))

    async def scenario() -> None:
        async with Lifespan(app):
            assert events == ["app start"]
            assert app.state.rollsafe_startup is guard.report
            assert (await request(app, "/"))[2] == b"hello"
            status, headers, body = await request(app, "/health")
            assert (status, json.loads(body)["status"]) == (200, "healthy")
            assert headers["cache-control"] == "no-store"
            assert (await request(app, "/health", "HEAD"))[0] == 200
            assert (await websocket_first(app, "/ws"))["type"] == "websocket.accept"
        assert events == ["app start", "app stop"]

    asyncio.run(scenario())
    assert guard.state == "stopping"
    assert guard.ready()[0] == 503


def test_degraded_blocks_http_and_websockets() -> None:
    events: list[str] = []
    guard = _guard(SERVICE_SECRET=WEAK_SECRET, ROLLSAFE_STARTUP_MODE="degraded")
    app = guard.install(_starlette(events))

    async def scenario() -> None:
        async with Lifespan(app):
            assert events == ["app start"]  # the app starts: degraded, not dead
            status, headers, body = await request(app, "/")
            assert status == 503
            assert headers["content-type"] == "application/json"
            assert json.loads(body)["failures"][0]["key"] == "SERVICE_SECRET"
            assert (await request(app, "/health"))[0] == 503
            assert await websocket_first(app, "/ws") == {"type": "websocket.close", "code": 1013}

    asyncio.run(scenario())


def test_fail_fast_fails_the_lifespan_before_the_app_starts() -> None:
    events: list[str] = []
    guard = _guard(SERVICE_SECRET=WEAK_SECRET)
    app = guard.install(_starlette(events))

    async def scenario() -> None:
        async with Lifespan(app):
            pass

    with pytest.raises(StartupFailed) as info:
        asyncio.run(scenario())
    assert isinstance(info.value.error, DeterministicStartupError)
    assert str(info.value).startswith("start-up failed in phase config: SERVICE_SECRET")
    assert "Traceback" not in str(info.value)
    assert events == []
    assert guard.state == "failed"


def test_fastapi_lifespan_argument_and_install_run_the_checks_once() -> None:
    guard = _guard()
    runs: list[int] = []
    guard.add_check("dependencies", lambda: runs.append(1), name="count")
    app = FastAPI(lifespan=guard.lifespan)
    guard.install(app)
    app.get("/x")(lambda: {"x": 1})

    async def scenario() -> None:
        async with Lifespan(app):
            assert json.loads((await request(app, "/x"))[2]) == {"x": 1}
            assert json.loads((await request(app, "/ready"))[2]) == {
                "ready": True,
                "status": "ready",
            }
            assert "/health" not in json.loads((await request(app, "/openapi.json"))[2])["paths"]

    asyncio.run(scenario())
    assert runs == [1]


def test_without_a_lifespan_the_first_request_runs_the_checks() -> None:
    guard = _guard(SERVICE_SECRET=WEAK_SECRET, ROLLSAFE_STARTUP_MODE="degraded")
    app = guard.install(_starlette([]))
    assert guard.report is None
    assert asyncio.run(request(app, "/"))[0] == 503
    assert guard.state == "degraded"
