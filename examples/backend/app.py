"""The example backend: a small FastAPI service guarded by rollsafe at start-up.

Run it (from this folder) with the rules of examples/rollsafe.yaml:

    ROLLSAFE_MANIFEST=../rollsafe.yaml ROLLSAFE_SERVICE=backend ROLLSAFE_ENV=dev \\
    SERVICE_SECRET=... JWT_SECRET_KEY=... SECRET_KEY=... FRONTEND_URL=... \\
    OAUTH_REDIRECT_URI=... python -m uvicorn app:app --host 127.0.0.1 --port 8080

`rollsafe deploy` sets ROLLSAFE_CONTRACT instead, so the image needs no manifest.

Routes:
- GET /health, /ready: the guard's (200 healthy / 503 with the failed checks).
- GET /auth/callback?code=...&next=/path: the OAuth callback. It refuses a `next` that
  leaves the FRONTEND_URL origin, signs a session token (HS256, the resolved JWT secret)
  and redirects to the frontend with it in an HttpOnly cookie.
- GET /api/me: the caller, from a JWT (Authorization: Bearer, or the session cookie)
  verified with PyJWT and the resolved secret.
- GET /api/fingerprint: the first 8 hex characters of SHA-256(SERVICE_SECRET), so a deploy
  can tell which secret version a revision runs with. Never the value.

BACKEND_FAIL_HEALTH=1 makes /health answer 503 after a good start (its first answer, the
startup probe's, is healthy): a revision that starts but is broken, for the deploy's
verification and rollback to catch; BACKEND_FAIL_HEALTH=N keeps the first N answers healthy
(a revision that breaks later, at a canary step). BACKEND_FAIL_HEALTH=start makes every
answer 503: the startup probe fails and the revision never becomes ready.

BACKEND_ERROR_RATE=0.2 makes that share of the answers of GET / a 500 (every fifth one, so
the share is exact), while /health stays healthy: a revision broken for its users only,
for canary analysis to catch in the request logs. BACKEND_FIRST_REQUEST_DELAY=1.5 makes the
first request after start (Cloud Run's startup probe, User-Agent GoogleHC, aside) wait that
many seconds, as an app that fills its caches on first use: a cold start.
BACKEND_HEALTH_DELAY=1.5 makes every /health answer but the startup probe's wait that long:
a slow serving revision, so that a deploy spends seconds in its current-health stage.

For the monitor's tests, two flag files switch a running revision:
BACKEND_FAIL_FILE=path makes /health and every route answer 503 while that file exists
(a revision that breaks, and recovers, after its deploy). BACKEND_LOG_FILE=path logs each
new line appended to that file once, at ERROR, as a JSON line on stderr (Cloud Run reads
its severity), e.g. ``JWT secret not configured``: a revision whose logs show an error.

BACKEND_GUARD=off runs the service as it was before the start-up guard (the incident
reports' tests need it): no guard and no contract, /health and /ready always 200, and the
routes read JWT_SECRET_KEY themselves; when it is missing, /api/me and /auth/callback answer
500 and log one ERROR JSON line ``JWT secret not configured`` on stderr. Any other value
(or none) keeps the guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import sys
import threading
import time
from typing import Annotated, Any
from urllib.parse import urlsplit

import jwt
from fastapi import Cookie, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.middleware.base import RequestResponseEndpoint

from rollsafe.startup import StartupCheckError, StartupGuard

SESSION_COOKIE = "session"
TOKEN_LIFETIME = 3600

GUARDED = os.environ.get("BACKEND_GUARD", "").strip().lower() != "off"

guard = StartupGuard.from_env() if GUARDED else None
app = FastAPI(title="netra backend", version="1.4.2")
if guard is not None:
    guard.install(app)


_health_answers = 0


def revision() -> dict[str, Any]:
    """The deploy's stand-in for a revision that starts fine and then breaks."""
    global _health_answers
    _health_answers += 1
    broken = os.environ.get("BACKEND_FAIL_HEALTH", "")
    # N (a number): the first N answers are good, every later one fails
    if broken == "start" or (broken.isdigit() and _health_answers > int(broken)):
        raise StartupCheckError(
            f"BACKEND_FAIL_HEALTH={broken}: this revision is broken on purpose",
            key="BACKEND_FAIL_HEALTH",
            rule="health",
            hint="unset BACKEND_FAIL_HEALTH",
        )
    return {"fingerprint": _fingerprint(), "environment": os.environ.get("ENVIRONMENT", "")}


if guard is not None:
    guard.health_check(revision)
else:

    @app.get("/health")
    @app.get("/ready")
    def unguarded_health() -> dict[str, str]:
        """BACKEND_GUARD=off: nothing was checked at start, so there is nothing to fail."""
        return {"status": "healthy", "guard": "off"}


def _log_error(text: str) -> None:
    """One ERROR entry for Cloud Logging: a JSON line on stderr (Cloud Run reads its severity)."""
    entry = {"severity": "ERROR", "message": text, "logger": "backend"}
    sys.stderr.write(json.dumps(entry) + "\n")
    sys.stderr.flush()


def _jwt_key() -> tuple[str, str, str]:
    """The JWT signing key: (value, algorithm, name).

    Guarded, the guard resolved and checked it at start. BACKEND_GUARD=off, the route reads
    JWT_SECRET_KEY itself, as the service did before the guard, and a missing key is only
    found by the first request that needs it: a 500 and an ERROR line.
    """
    if guard is not None:
        key = guard.jwt_secret()
        return key.reveal(), key.algorithm, key.name
    value = os.environ.get("JWT_SECRET_KEY", "")
    if not value:
        _log_error("JWT secret not configured")
        raise HTTPException(500, "JWT secret not configured")
    return value, "HS256", "JWT_SECRET_KEY"


def _follow_log_file(path: str, poll: float = 0.1) -> None:
    """Log each line appended to ``path`` once, at ERROR, on stderr (a daemon thread).

    Lines already in the file when the app starts are not logged again: a new instance of
    the same revision logs only what is written after it started."""
    offset = 0
    with contextlib.suppress(OSError):
        offset = os.path.getsize(path)
    pending = b""
    while True:
        try:
            with open(path, "rb") as handle:
                if os.fstat(handle.fileno()).st_size < offset:
                    offset = 0  # truncated or replaced: start over
                handle.seek(offset)
                chunk = handle.read()
        except OSError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                text = raw.decode("utf-8", "replace").strip()
                if text:
                    _log_error(text)
        time.sleep(poll)


if os.environ.get("BACKEND_LOG_FILE"):
    threading.Thread(
        target=_follow_log_file,
        args=(os.environ["BACKEND_LOG_FILE"],),
        name="backend-log-file",
        daemon=True,
    ).start()


@app.middleware("http")
async def fail_file(request: Request, call_next: RequestResponseEndpoint) -> Response:
    """BACKEND_FAIL_FILE: every answer is a 503 while that file exists."""
    flag = os.environ.get("BACKEND_FAIL_FILE")
    if flag and os.path.exists(flag):
        body = {"status": "unhealthy", "reason": "BACKEND_FAIL_FILE exists: broken on purpose"}
        return Response(json.dumps(body), status_code=503, media_type="application/json")
    return await call_next(request)


_first_request_done = False


@app.middleware("http")
async def cold_start(request: Request, call_next: RequestResponseEndpoint) -> Response:
    """BACKEND_FIRST_REQUEST_DELAY: the first request after start is slow (a cold start)."""
    global _first_request_done
    if not _first_request_done and not request.headers.get("user-agent", "").startswith(
        "GoogleHC/"
    ):
        _first_request_done = True
        delay = float(os.environ.get("BACKEND_FIRST_REQUEST_DELAY") or 0)
        if delay > 0:
            await asyncio.sleep(delay)
    health_delay = float(os.environ.get("BACKEND_HEALTH_DELAY") or 0)
    if (
        health_delay > 0
        and request.url.path == "/health"
        and not request.headers.get("user-agent", "").startswith("GoogleHC/")
    ):
        await asyncio.sleep(health_delay)
    return await call_next(request)


_root_answers = 0


@app.get("/")
async def root() -> dict[str, str]:
    """The page users get; BACKEND_ERROR_RATE of its answers are 500 (exactly that share)."""
    global _root_answers
    _root_answers += 1
    rate = float(os.environ.get("BACKEND_ERROR_RATE") or 0)
    if math.floor(_root_answers * rate) > math.floor((_root_answers - 1) * rate):
        raise HTTPException(500, f"BACKEND_ERROR_RATE={rate:g}: broken on purpose")
    return {"service": "backend", "environment": os.environ.get("ENVIRONMENT", "")}


def _fingerprint() -> str:
    secret = os.environ.get("SERVICE_SECRET", "")
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _frontend() -> str:
    return os.environ["FRONTEND_URL"].rstrip("/")


def _same_origin_path(url: str, frontend: str) -> str | None:
    """The path (and query) of ``url`` if it stays on the frontend's origin, else None."""
    if "\\" in url or any(ord(c) < 32 for c in url):
        return None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        if _origin(url) != _origin(frontend):
            return None
    elif not url.startswith("/"):
        return None
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@app.get("/api/fingerprint")
def fingerprint() -> dict[str, str]:
    return {"key": "SERVICE_SECRET", "sha256_8": _fingerprint()}


@app.get("/auth/callback")
def oauth_callback(
    code: Annotated[str, Query(min_length=1, max_length=512)],
    next_path: Annotated[str, Query(alias="next")] = "/",
) -> RedirectResponse:
    """Finish a login: stays on the frontend's origin, whatever `next` says."""
    frontend = _frontend()
    redirect_uri = os.environ["OAUTH_REDIRECT_URI"]
    if _origin(redirect_uri) != _origin(frontend):  # the guard already refused this at start
        raise HTTPException(500, "OAUTH_REDIRECT_URI is not on the FRONTEND_URL origin")
    target = _same_origin_path(next_path, frontend)
    if target is None:
        raise HTTPException(400, "next must stay on the frontend's origin")
    key, algorithm, _ = _jwt_key()
    now = int(time.time())
    subject = "oauth:" + hashlib.sha256(code.encode("utf-8")).hexdigest()[:12]
    claims = {"sub": subject, "iat": now, "exp": now + TOKEN_LIFETIME, "aud": frontend}
    token = jwt.encode(claims, key, algorithm=algorithm)
    response = RedirectResponse(frontend + target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=TOKEN_LIFETIME,
        httponly=True,
        secure=frontend.startswith("https://"),
        samesite="lax",
    )
    return response


@app.get("/api/me")
def me(
    authorization: Annotated[str | None, Header()] = None,
    session: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
) -> dict[str, Any]:
    """The caller, from a token signed with the service's JWT secret."""
    token = session
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    if not token:
        raise HTTPException(401, "missing token", headers={"WWW-Authenticate": "Bearer"})
    key, algorithm, name = _jwt_key()
    try:
        claims = jwt.decode(token, key, algorithms=[algorithm], audience=_frontend())
    except jwt.InvalidTokenError as exc:
        raise HTTPException(
            401, f"invalid token: {type(exc).__name__}", headers={"WWW-Authenticate": "Bearer"}
        ) from None
    return {"sub": claims["sub"], "exp": claims["exp"], "signed_with": name}
