"""The emulator's ASGI app: Secret Manager v1, Cloud Run Admin v2 and Logging v2 routes.

A path or method no route serves answers 501 UNIMPLEMENTED in Google's error shape, never
404 (which only ever means "no such resource"); metadata server paths keep its 404.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rollsafe import __version__
from rollsafe.emulator._google import GoogleError, error_response, unimplemented
from rollsafe.emulator._hosts import HostMiddleware
from rollsafe.emulator.state import EmulatorState

__all__ = ["API_MODULES", "build_app"]

#: each module has ``routes(state) -> list[BaseRoute]`` and may have async ``startup(state)``
#: and ``shutdown(state)`` hooks (run in this order at start, reversed at stop)
API_MODULES = (
    # first: its /v1/projects/P/locations/L/services (Cloud Run v1, on run.googleapis.com)
    # shares a prefix with Secret Manager's /v1/projects/P/locations catch-all
    "rollsafe.emulator.knative",
    "rollsafe.emulator.secretmanager",
    "rollsafe.emulator.logging_api",
    "rollsafe.emulator.cloudrun",
    "rollsafe.emulator.identity",
)


def _modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in API_MODULES]


async def _google_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GoogleError)
    return error_response(exc.code, exc.status, exc.message, exc.details)


#: paths of the metadata server, which answers 404 for an attribute it does not have
_METADATA_PREFIX = "/computeMetadata/"


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing errors: a path or method no route serves is 501 UNIMPLEMENTED in Google's
    shape (404 is kept for "no such resource", so ``exists()`` checks never lie)."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code in (404, 405) and not path.startswith(_METADATA_PREFIX):
        error = unimplemented(request.method, path)
        return error_response(error.code, error.status, error.message)
    status = {404: "NOT_FOUND"}.get(exc.status_code, "UNKNOWN")
    message = f"{request.method} {path}: {exc.detail}"
    return error_response(exc.status_code, status, message)


def build_app(state: EmulatorState) -> Starlette:
    """The app for ``state``; API modules start (revisions, router) in its lifespan."""
    modules = _modules()

    async def root(request: Request) -> Response:
        # the metadata server's ping: google-auth checks this header (see emulator.identity)
        return JSONResponse(
            {"emulator": "rollsafe", "version": __version__},
            headers={"Metadata-Flavor": "Google"},
        )

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
        # absolute-form (proxy) targets and REGION-127.0.0.1 hosts, as gcloud sends them
        middleware=[Middleware(HostMiddleware)],
        exception_handlers={GoogleError: _google_error, HTTPException: _http_error},
    )
