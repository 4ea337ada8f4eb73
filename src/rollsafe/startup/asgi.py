"""The guard in an ASGI app: a pure ASGI middleware, the ``/health`` and ``/ready`` routes
and the lifespan, added to a FastAPI or Starlette app by ``StartupGuard.install``.

The middleware answers every request (but ``/health`` and ``/ready``) with 503 and a JSON
body naming the failed checks while the start-up checks have failed (``degraded`` mode).
It is pure ASGI: it never buffers or re-reads a request or a response.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from rollsafe.errors import UsageError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from rollsafe.startup.guard import StartupGuard

__all__ = ["GuardMiddleware", "install_into"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: "try again later": the WebSocket close code for a service that cannot serve yet
_WS_TRY_AGAIN_LATER = 1013


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    """A complete JSON response, as raw ASGI messages."""
    payload = json.dumps(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode("ascii")),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class GuardMiddleware:
    """503 for every request while the start-up checks have failed; ``exempt`` paths pass."""

    def __init__(self, app: ASGIApp, guard: StartupGuard, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.guard = guard
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        guard = self.guard
        if guard.report is None:
            await guard.ensure_started()
        if not guard.blocking or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": _WS_TRY_AGAIN_LATER})
            return
        report = guard.report
        assert report is not None
        body = guard.unhealthy_body(report, status="unavailable")
        body["error"] = "the service's start-up checks failed; see failures"
        await send_json(send, 503, body)

    def _lifespan_send(self, send: Send) -> Send:
        """The server logs a failed start-up's message: make it the guard's one-line
        summary rather than a traceback (the CRITICAL JSON line has the details)."""
        guard = self.guard

        async def lifespan_send(message: Message) -> None:
            failed = message.get("type") == "lifespan.startup.failed"
            if failed and guard.state == "failed" and guard.report is not None:
                message = {**message, "message": guard.redact(guard.report.summary())}
            await send(message)

        return lifespan_send


def install_into(
    guard: StartupGuard, app: Any, health_path: str, ready_path: str, *, lifespan: bool
) -> None:
    """Wire ``guard`` into a FastAPI or Starlette ``app``."""
    router = getattr(app, "router", None)
    if router is None or not hasattr(router, "lifespan_context") or not hasattr(app, "state"):
        raise UsageError(
            f"install() needs a FastAPI or Starlette app, not {type(app).__name__}",
            hint="for another framework, run guard.lifespan in its start-up hook",
        )
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if lifespan and router.lifespan_context != guard.lifespan:
        router.lifespan_context = _wrapped_lifespan(guard, router.lifespan_context)

    async def health(request: Request) -> Response:
        try:
            status, body = await guard.health()
        except Exception as exc:  # /health answers 503, never 500
            status, body = (
                503,
                {
                    "status": "unhealthy",
                    "phase": "runtime",
                    "failures": [{"rule": "exception", "message": type(exc).__name__}],
                },
            )
        return JSONResponse(body, status, headers={"cache-control": "no-store"})

    async def ready(request: Request) -> Response:
        status, body = guard.ready()
        return JSONResponse(body, status, headers={"cache-control": "no-store"})

    # first, so the guard's answer wins over a route of the app with the same path
    router.routes[0:0] = [
        Route(
            health_path, health, methods=["GET"], name="rollsafe_health", include_in_schema=False
        ),
        Route(ready_path, ready, methods=["GET"], name="rollsafe_ready", include_in_schema=False),
    ]
    app.add_middleware(GuardMiddleware, guard=guard, exempt=(health_path, ready_path))


def _wrapped_lifespan(
    guard: StartupGuard, inner: Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with guard.lifespan(app), inner(app) as state:
            yield state

    return lifespan
