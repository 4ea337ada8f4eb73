"""The hosts the emulator answers for: its own, the regional form, and proxy requests.

gcloud reaches Cloud Run on a regional host: with ``api_endpoint_overrides/run`` set to
``http://127.0.0.1:PORT/`` it calls ``http://REGION-127.0.0.1:PORT/`` (``DeriveRegionalEndpoint``
in gcloud's ``command_lib/run/connection_context.py``). No resolver knows that name, so
``rollsafe emulator gcloud-config`` also makes the emulator gcloud's HTTP proxy: requests
then arrive in absolute form (``GET http://REGION-127.0.0.1:PORT/apis/... HTTP/1.1``), which
uvicorn puts verbatim into the ASGI path.

This middleware turns such requests back into ordinary ones: the path becomes the URL's
path, the ``Host`` header the URL's authority, and a regional host becomes the emulator's
own, with the region kept in ``scope["state"]["region"]`` (``request.state.region``) for
the APIs that take their region from the host (Knative serving v1).

The emulator is never a proxy to anywhere else: a proxy request for any other host is
answered 502 here, and ``CONNECT`` (what a client sends through a proxy for https) 403.
Nothing is forwarded; no connection leaves the machine.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["REGION_KEY", "HostMiddleware", "split_regional_host"]

#: key in ``scope["state"]`` (``request.state``) holding the region of a regional host
REGION_KEY = "region"
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
# REGION-HOST as gcloud derives it: a region is lowercase letters, digits and hyphens
_REGIONAL = re.compile(r"^([a-z][a-z0-9-]*[a-z0-9])-(127\.0\.0\.1|localhost|\[::1\])$")


def _split_port(host: str) -> tuple[str, str]:
    """``NAME:PORT`` -> (NAME, PORT); ``[::1]`` has colons but no port."""
    name, sep, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    return (name, port) if sep else (host, "")


def split_regional_host(host: str) -> tuple[str | None, str]:
    """``us-central1-127.0.0.1:8790`` -> (``us-central1``, ``127.0.0.1:8790``).

    A host that is not in the regional form comes back unchanged with region None.
    """
    name, port = _split_port(host)
    match = _REGIONAL.match(name.lower())
    if match is None:
        return None, host
    base = match.group(2) + (f":{port}" if port else "")
    return match.group(1), base


def _is_own(host: str, server_port: int | None) -> bool:
    """Is ``host`` (``NAME[:PORT]``, already without a region) this emulator?"""
    name, port = _split_port(host)
    port = port or "80"
    if name.lower() not in _LOOPBACK:
        return False
    return server_port is None or port == str(server_port)


async def _refuse(send: Send, status: int, reason: str, message: str) -> None:
    body = json.dumps({"error": {"code": status, "message": message, "status": reason}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def _with_host(scope: Scope, host: str) -> list[tuple[bytes, bytes]]:
    headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"host"]
    return [(b"host", host.encode("latin-1")), *headers]


class HostMiddleware:
    """Normalise absolute-form targets and regional hosts; refuse to proxy elsewhere."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        server = scope.get("server")
        port = int(server[1]) if server and server[1] is not None else None
        own = f"127.0.0.1:{port}" if port else "127.0.0.1"
        if scope.get("method") == "CONNECT":
            await _refuse(
                send,
                403,
                "PERMISSION_DENIED",
                f"the rollsafe emulator is not a proxy: CONNECT {scope.get('path', '')} refused."
                f" It answers only for http://{own} and http://REGION-{own}.",
            )
            return
        path: str = scope.get("path", "")
        proxied = path.startswith(("http://", "https://"))
        host = _header(scope, b"host")
        if proxied:
            target = urlsplit(path)
            host = target.netloc
        region, base = split_regional_host(host)
        if proxied and not _is_own(base, port):
            await _refuse(
                send,
                502,
                "UNAVAILABLE",
                f"the rollsafe emulator does not forward requests: {host or '(no host)'} is not"
                f" one of its hosts (http://{own}, http://REGION-{own}); nothing was sent.",
            )
            return
        if not proxied and region is None:
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        if proxied:
            raw = bytes(scope.get("raw_path") or path.encode("latin-1"))
            raw_target = urlsplit(raw.decode("latin-1"))
            scope["path"] = unquote(raw_target.path or "/")
            scope["raw_path"] = (raw_target.path or "/").encode("latin-1")
        scope["headers"] = _with_host(scope, base)
        state: dict[str, Any] = dict(scope.get("state") or {})
        if region is not None:
            state[REGION_KEY] = region
        scope["state"] = state
        await self.app(scope, receive, send)
