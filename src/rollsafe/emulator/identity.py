"""Where google-auth finds tokens: a metadata server, IAM Credentials and Google's JWKS.

Served on the emulator's main port, so pointing ``GCE_METADATA_HOST`` and
``GCE_METADATA_IP`` at the emulator makes ``google.oauth2.id_token.fetch_id_token`` and
``google.auth.default()`` work as on Cloud Run:

- ``GET /`` answers with ``Metadata-Flavor: Google`` (the ping; see ``app``);
- ``GET /computeMetadata/v1/instance/service-accounts/default/identity?audience=A``: an ID
  token (RS256 JWT) for ``A``; ``.../token``: an access token; ``.../email``; ``.../`` with
  ``?recursive=true`` as JSON; ``/computeMetadata/v1/project/project-id``. Every metadata
  request must carry ``Metadata-Flavor: Google`` (else 403, as the metadata server);
- ``POST /v1/projects/-/serviceAccounts/SA:generateIdToken`` (and ``:generateAccessToken``),
  IAM Credentials for impersonation; the caller needs an access token of the emulator;
- ``GET /oauth2/v3/certs``: the public keys that verify the emulator's ID tokens.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from rollsafe.emulator._google import GoogleError, invalid_argument
from rollsafe.emulator.state import EmulatorState
from rollsafe.emulator.tokens import (
    DEFAULT_PROJECT,
    DEFAULT_SERVICE_ACCOUNT,
    TokenIssuer,
    issuer,
)

__all__ = ["METADATA_ROOT", "routes"]

METADATA_ROOT = "/computeMetadata/v1"
_FLAVOR = {"Metadata-Flavor": "Google"}
_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
_NUMERIC_PROJECT_ID = "100000000001"
_UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)


def _text(body: str, status: int = 200) -> Response:
    return PlainTextResponse(
        body, status_code=status, headers=_FLAVOR, media_type="application/text"
    )


def _metadata_error(status: int, path: str, reason: str) -> Response:
    title = {400: "Bad Request", 403: "Forbidden", 404: "Not Found"}[status]
    body = (
        f"<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
        f"  <title>Error {status} ({title})!!1</title>\n"
        f"  <p><b>{status}.</b> <ins>That's an error.</ins>\n"
        f"  <p>{html.escape(reason)}  <ins>That's all we know.</ins>\n"
    )
    return Response(body, status_code=status, headers=_FLAVOR, media_type="text/html")


def _refused(request: Request) -> Response | None:
    """The metadata server's own refusals: the flavor header is required, proxies are not."""
    if request.headers.get("metadata-flavor") != "Google":
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _metadata_error(
            403,
            path,
            f"Your client does not have permission to get URL {path} from this server. "
            "Missing Metadata-Flavor:Google header.",
        )
    if "x-forwarded-for" in request.headers:
        return _metadata_error(403, request.url.path, "Request forwarded by a proxy: refused.")
    return None


def _account(request: Request) -> str | None:
    name = request.path_params["account"]
    return DEFAULT_SERVICE_ACCOUNT if name in ("default", DEFAULT_SERVICE_ACCOUNT) else None


def _bearer(request: Request, tokens: TokenIssuer) -> str:
    """The account of the request's access token; 401 as Google's APIs when there is none."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    email = tokens.access_email(token.strip()) if scheme.lower() == "bearer" else None
    if email is None:
        raise GoogleError(401, "UNAUTHENTICATED", _UNAUTHENTICATED)
    return email


class _Api:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    @property
    def tokens(self) -> TokenIssuer:
        return issuer(self.state)

    async def metadata(self, request: Request) -> Response:
        refused = _refused(request)
        if refused is not None:
            return refused
        path = request.url.path.removeprefix(METADATA_ROOT)
        if path in ("/project/project-id", "/project/project-id/"):
            return _text(DEFAULT_PROJECT)
        if path == "/project/numeric-project-id":
            return _text(_NUMERIC_PROJECT_ID)
        if path == "/universe/universe-domain":
            return _text("googleapis.com")
        if path == "/instance/service-accounts/":
            return _text(f"default/\n{DEFAULT_SERVICE_ACCOUNT}/\n")
        return _metadata_error(404, request.url.path, "The requested URL was not found.")

    async def account(self, request: Request) -> Response:
        refused = _refused(request)
        if refused is not None:
            return refused
        email = _account(request)
        attribute = request.path_params.get("attribute", "")
        if email is None:
            return _metadata_error(404, request.url.path, "The requested URL was not found.")
        if attribute == "":
            if request.query_params.get("recursive", "").lower() == "true":
                info = {"aliases": ["default"], "email": email, "scopes": _SCOPES}
                return JSONResponse(info, headers=_FLAVOR)
            return _text("aliases\nemail\nidentity\nscopes\ntoken\n")
        if attribute == "email":
            return _text(email)
        if attribute == "aliases":
            return _text("default")
        if attribute == "scopes":
            return _text("\n".join(_SCOPES) + "\n")
        if attribute == "token":
            token, lifetime = self.tokens.access_token(email)
            body = {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
            return JSONResponse(body, headers=_FLAVOR)
        if attribute == "identity":
            audience = request.query_params.get("audience", "")
            if not audience:
                return _metadata_error(
                    400, request.url.path, "non-empty audience parameter required"
                )
            return _text(self.tokens.id_token(audience, email))
        return _metadata_error(404, request.url.path, "The requested URL was not found.")

    async def credentials(self, request: Request) -> Response:
        """IAM Credentials ``:generateIdToken`` / ``:generateAccessToken``."""
        account, _, method = request.path_params["name"].partition(":")
        if method not in ("generateIdToken", "generateAccessToken"):
            raise GoogleError(
                501, "UNIMPLEMENTED", f"Method {method or 'GET'} is not implemented here."
            )
        tokens = self.tokens
        _bearer(request, tokens)
        if "@" not in account:
            raise GoogleError(404, "NOT_FOUND", f"Not found; Gaia id not found for email {account}")
        body = _json(await request.body())
        if method == "generateIdToken":
            audience = body.get("audience")
            if not isinstance(audience, str) or not audience:
                raise invalid_argument("Request contains an invalid argument.")
            include = bool(body.get("includeEmail", False))
            return JSONResponse(
                {"token": tokens.id_token(audience, account, include_email=include)}
            )
        if not body.get("scope"):
            raise invalid_argument("Request contains an invalid argument.")
        token, lifetime = tokens.access_token(account)
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lifetime)
        return JSONResponse(
            {"accessToken": token, "expireTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
        )

    async def certs(self, request: Request) -> Response:
        return JSONResponse(self.tokens.jwks(), headers={"Cache-Control": "public, max-age=3600"})


def _json(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise invalid_argument("Invalid JSON payload received.") from None
    if not isinstance(body, dict):
        raise invalid_argument("Invalid JSON payload received.")
    return body


def routes(state: EmulatorState) -> list[BaseRoute]:
    """The metadata server, IAM Credentials and JWKS routes."""
    api = _Api(state)
    accounts = f"{METADATA_ROOT}/instance/service-accounts/{{account}}"
    return [
        Route(f"{accounts}/", api.account, methods=["GET"]),
        Route(f"{accounts}/{{attribute}}", api.account, methods=["GET"]),
        Route(f"{METADATA_ROOT}/{{path:path}}", api.metadata, methods=["GET"]),
        Route("/v1/projects/-/serviceAccounts/{name}", api.credentials, methods=["POST"]),
        Route("/oauth2/v3/certs", api.certs, methods=["GET"]),
    ]


async def startup(state: EmulatorState) -> None:
    """Create the signing key now, so the first token request does not pay for it."""
    issuer(state)
