"""ID tokens for calling private Cloud Run services, from google-auth, cached per audience.

On Google: ``google.oauth2.id_token.fetch_id_token`` with Application Default Credentials,
or, with a service account to impersonate (``--impersonate-service-account SA`` or
``ROLLSAFE_IMPERSONATE_SERVICE_ACCOUNT``), ``impersonated_credentials.IDTokenCredentials``
built on ADC. On an emulator (``platform: local``), google-auth's own metadata and IAM
Credentials calls are routed to the emulator's endpoint by the request object rollsafe hands
to google-auth (no process environment is changed), and any other host is refused, so
google-auth never reaches Google from a local environment.

A token is a bearer credential: it never appears in a repr, a message or an exception text
(``_scrub`` removes anything JWT-shaped from the vendor errors rollsafe re-raises).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from rollsafe._gcp import import_google
from rollsafe.errors import RollsafeError

__all__ = [
    "IMPERSONATE_ENV",
    "IdTokenAuth",
    "IdTokenError",
    "IdTokens",
    "audience_of",
]

#: names a service account to impersonate when no ``--impersonate-service-account`` is given
IMPERSONATE_ENV = "ROLLSAFE_IMPERSONATE_SERVICE_ACCOUNT"
_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
#: a cached token is renewed this long before it expires (google-auth's own margin is 225 s)
_MARGIN = 300.0
#: after a failure, asking again within this long fails at once: without credentials, each
#: try costs google-auth's metadata-server detection (retries and timeouts)
_RETRY_AFTER = 30.0
_TIMEOUT = 10.0
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "169.254.169.254"})
_IAM_CREDENTIALS_HOST = "iamcredentials.googleapis.com"
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
#: google-auth's transport logs each request's headers (Authorization) and each JSON answer
#: (``{"token": ...}`` from generateIdToken) at DEBUG, once the ``google`` logger is set up
_TRANSPORT_LOGGER = "google.auth.transport.requests"

_HINT_GOOGLE = (
    "rollsafe calls private services with an ID token from Application Default Credentials: "
    "run where ADC is a service account (GOOGLE_APPLICATION_CREDENTIALS, or the metadata "
    "server on Cloud Build, GCE or Cloud Run), or impersonate one with "
    f"--impersonate-service-account SA (or {IMPERSONATE_ENV}=SA) after granting yourself "
    "roles/iam.serviceAccountTokenCreator on it; user credentials from `gcloud auth "
    "application-default login` cannot mint ID tokens. See docs/access.md"
)
_HINT_EMULATOR = (
    "the emulator mints the tokens of a local environment: check it with `rollsafe emulator "
    "status`. See docs/access.md"
)


class IdTokenError(RollsafeError):
    """No ID token could be had for an audience (never holds a token)."""

    exit_code = 1


class _Failed(Exception):
    """A vendor failure, reduced to a scrubbed reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def audience_of(url: str | httpx.URL) -> str:
    """The audience Cloud Run expects for a request to ``url``: its origin
    (``https://svc-abc-uc.a.run.app``), as Google's ID-token samples use it."""
    parsed = httpx.URL(str(url))
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


class _NoCredentialLogs(logging.Filter):
    """Drops google-auth's request and response debug records (they carry credentials)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (hasattr(record, "httpRequest") or hasattr(record, "httpResponse"))


@contextmanager
def _quiet_transport() -> Iterator[None]:
    """While a token is minted, google-auth's transport logs no request or answer."""
    logger = logging.getLogger(_TRANSPORT_LOGGER)
    quiet = _NoCredentialLogs()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _scrub(text: str) -> str:
    """A vendor error's text, without anything shaped like a JWT, on one short line."""
    flat = " ".join(_JWT.sub("[token]", text).split())
    return flat[:300]


@dataclass(frozen=True, slots=True)
class _Cached:
    token: str
    expires: float

    def __repr__(self) -> str:  # the token is a credential: never in a repr
        return f"_Cached(expires={self.expires:.0f})"


class _EmulatorRequest:
    """A ``google.auth.transport.Request`` that sends google-auth's calls to the emulator.

    The metadata server (whatever host google-auth has for it) and IAM Credentials are
    answered by the emulator at ``endpoint``; loopback and the emulator's own host pass
    unchanged; every other host is refused before any connection is made.
    """

    def __init__(self, endpoint: str, session: Any) -> None:
        transport = import_google("google.auth.transport.requests")
        self._inner = transport.Request(session)
        self._endpoint = urlsplit(endpoint)
        metadata = import_google("google.auth.compute_engine._metadata")
        configured = str(getattr(metadata, "_GCE_METADATA_HOST", "")).split(":")[0]
        self._metadata_hosts = _METADATA_HOSTS | ({configured} if configured else set())

    def route(self, url: str) -> str:
        """Where ``url`` really goes; raises google-auth's TransportError for a foreign host."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host in self._metadata_hosts or host == _IAM_CREDENTIALS_HOST:
            return urlunsplit(
                (self._endpoint.scheme, self._endpoint.netloc, parts.path, parts.query, "")
            )
        if host in _LOOPBACK or host == self._endpoint.hostname:
            return url
        exceptions = import_google("google.auth.exceptions")
        raise exceptions.TransportError(
            f"refused to reach {host}: this environment's Google APIs are the emulator's"
        )

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        return self._inner(
            self.route(url), method=method, body=body, headers=headers, timeout=timeout, **kwargs
        )


class IdTokens:
    """Mints ID tokens for audiences and keeps each until shortly before it expires.

    ``emulator``: the emulator's endpoint when the environment's Google APIs are an
    emulator's (``rollsafe._environments.gcp_endpoint``), else None for Google.
    ``impersonate``: a service account email; defaults to ``ROLLSAFE_IMPERSONATE_SERVICE_ACCOUNT``.
    Thread-safe; ``close()`` closes the HTTP session google-auth used.
    """

    def __init__(
        self,
        *,
        emulator: str | None = None,
        impersonate: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.emulator = emulator
        self.impersonate = impersonate or os.environ.get(IMPERSONATE_ENV) or None
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._session: Any = None
        self._source: Any = None  # credentials impersonation starts from, built once
        self._failure: tuple[str, float] | None = None  # why minting failed, and until when
        self.minted = 0  # tokens fetched (not served from the cache), for tests and --verbose

    def __repr__(self) -> str:
        where = self.emulator or "google"
        who = f", impersonate={self.impersonate!r}" if self.impersonate else ""
        return f"IdTokens({where}{who}, cached={len(self._cache)})"

    def __enter__(self) -> IdTokens:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
            self._cache.clear()

    @property
    def hint(self) -> str:
        return _HINT_EMULATOR if self.emulator else _HINT_GOOGLE

    def token(self, audience: str) -> str:
        """An ID token whose ``aud`` is ``audience``; raises ``IdTokenError`` if none can be had."""
        with self._lock:
            cached = self._cache.get(audience)
            now = self._clock()
            if cached is not None and cached.expires - _MARGIN > now:
                return cached.token
            if self._failure is not None and self._failure[1] > now:
                raise self._error(audience, self._failure[0])
            try:
                with self._vendor_errors(), _quiet_transport():
                    token = self._mint(audience)
                    expires = float(self._claims(token)["exp"])
            except _Failed as failed:
                self._failure = (failed.reason, now + _RETRY_AFTER)
                raise self._error(audience, failed.reason) from None
            self._failure = None
            self._cache[audience] = _Cached(token, expires)
            self.minted += 1
            return token

    # -- minting --
    def _error(self, audience: str, reason: str) -> IdTokenError:
        via = f" as {self.impersonate}" if self.impersonate else ""
        return IdTokenError(f"cannot get an ID token{via} for {audience}: {reason}", hint=self.hint)

    @contextmanager
    def _vendor_errors(self) -> Iterator[None]:
        exceptions = import_google("google.auth.exceptions")
        try:
            yield
        except (exceptions.GoogleAuthError, ValueError, KeyError, TypeError, OSError) as exc:
            detail = _scrub(str(exc)) or "no detail"
            # the vendor's exception may carry a response body: it is not chained
            raise _Failed(f"{exc.__class__.__name__}: {detail}") from None

    def _request(self) -> Any:
        if self._session is None:
            requests = import_google("requests")
            self._session = requests.Session()
            # an emulator is reached directly: a proxy from the environment would take
            # google-auth's calls (and the credentials in them) off this machine
            self._session.trust_env = not self.emulator
        if self.emulator:
            return _EmulatorRequest(self.emulator, self._session)
        return import_google("google.auth.transport.requests").Request(self._session)

    def _mint(self, audience: str) -> str:
        request = self._request()
        if self.emulator:
            if self.impersonate:
                return self._emulator_impersonated(request, audience)
            compute = import_google("google.auth.compute_engine")
            credentials = compute.IDTokenCredentials(
                request, audience, use_metadata_identity_endpoint=True, bind_id_token=False
            )
            credentials.refresh(request)
            return str(credentials.token)
        if self.impersonate:
            impersonated = import_google("google.auth.impersonated_credentials")
            credentials = impersonated.IDTokenCredentials(
                self._impersonated_target(), target_audience=audience, include_email=True
            )
            credentials.refresh(request)
            return str(credentials.token)
        id_token = import_google("google.oauth2.id_token")
        return str(id_token.fetch_id_token(request, audience))

    def _impersonated_target(self) -> Any:
        if self._source is None:
            google_auth = import_google("google.auth")
            impersonated = import_google("google.auth.impersonated_credentials")
            source, _ = google_auth.default(scopes=list(_SCOPES))
            self._source = impersonated.Credentials(
                source_credentials=source,
                target_principal=self.impersonate,
                target_scopes=list(_SCOPES),
            )
        return self._source

    def _emulator_impersonated(self, request: _EmulatorRequest, audience: str) -> str:
        """IAM Credentials ``generateIdToken`` at the URL google-auth uses, answered by the
        emulator, authorized by the emulator's default service account (its metadata server).
        """
        if self._source is None:
            compute = import_google("google.auth.compute_engine")
            self._source = compute.Credentials()
        if not self._source.valid:
            self._source.refresh(request)
        iam = import_google("google.auth.iam")
        url = iam._IAM_IDTOKEN_ENDPOINT.format(self.impersonate)
        body = {"audience": audience, "delegates": [], "includeEmail": True}
        response = request(
            url,
            method="POST",
            body=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self._source.token}",
            },
            timeout=_TIMEOUT,
        )
        exceptions = import_google("google.auth.exceptions")
        if response.status != 200:
            raise exceptions.RefreshError(
                f"generateIdToken answered HTTP {response.status}: {_scrub(_text(response.data))}"
            )
        return str(json.loads(response.data)["token"])

    @staticmethod
    def _claims(token: str) -> dict[str, Any]:
        jwt = import_google("google.auth.jwt")
        claims = jwt.decode(token, verify=False)
        if not isinstance(claims, dict) or "exp" not in claims:
            raise ValueError("the ID token has no expiry")
        return claims


def _text(data: bytes | str) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


class IdTokenAuth(httpx.Auth):
    """Sends ``Authorization: Bearer`` with an ID token for each request's origin.

    ``required``: when no token can be had, raise ``IdTokenError`` (a private service: the
    request would only be refused) instead of sending the request without one (a public
    service answers anyway). ``audiences`` maps an origin to the audience its tokens name,
    read at each request: a tag URL's requests carry a token for the service's URL, which
    Cloud Run always accepts.
    """

    def __init__(
        self,
        tokens: IdTokens,
        *,
        required: bool = True,
        audiences: Mapping[str, str] | None = None,
    ) -> None:
        self.tokens = tokens
        self.required = required
        self.audiences = audiences if audiences is not None else {}

    def __repr__(self) -> str:
        return f"IdTokenAuth({self.tokens!r}, required={self.required})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        try:
            origin = audience_of(request.url)
            token = self.tokens.token(self.audiences.get(origin, origin))
        except IdTokenError:
            if self.required:
                raise
            yield request
            return
        request.headers["Authorization"] = f"Bearer {token}"
        yield request
