"""The emulator's ASGI app: Secret Manager v1, Cloud Run Admin v2 and Logging v2 routes."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rollsafe import __version__
from rollsafe.emulator._google import GoogleError, error_response
from rollsafe.emulator.state import EmulatorState

__all__ = ["API_MODULES", "build_app"]

#: each module has ``routes(state) -> list[BaseRoute]`` and may have async ``startup(state)``
#: and ``shutdown(state)`` hooks (run in this order at start, reversed at stop)
API_MODULES = (
    "rollsafe.emulator.secretmanager",
    "rollsafe.emulator.logging_api",
    "rollsafe.emulator.cloudrun",
)


def _modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in API_MODULES]


async def _google_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GoogleError)
    return error_response(exc.code, exc.status, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = {404: "NOT_FOUND", 405: "UNIMPLEMENTED"}.get(exc.status_code, "UNKNOWN")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return error_response(exc.status_code, status, message)


def build_app(state: EmulatorState) -> Starlette:
    """The app for ``state``; API modules start (revisions, router) in its lifespan."""
    modules = _modules()

    async def root(request: Request) -> Response:
        return JSONResponse({"emulator": "rollsafe", "version": __version__})

    routes: list[BaseRoute] = [Route("/", root)]
    for module in modules:
        routes.extend(module.routes(state))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started: list[ModuleType] = []
        try:
            for module in modules:
                hook = getattr(module, "startup", None)
                if hook is not None:
                    await hook(state)
                started.append(module)
            yield
        finally:
            for module in reversed(started):
                hook = getattr(module, "shutdown", None)
                if hook is not None:
                    await hook(state)

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={GoogleError: _google_error, HTTPException: _http_error},
    )
