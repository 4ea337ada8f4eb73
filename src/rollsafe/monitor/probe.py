"""The monitor's health probes: many services, one event loop, kept-alive connections.

Each probe is a GET of the service URL plus ``health.path``, judged by the same pure
function the deploy's verification uses (``rollsafe.deploy.health.judge``): the expected
status, the ``expect_json`` fields and ``max_latency``.

Scale: the requests go through a lean HTTP/1.1 client of our own
(``rollsafe.monitor._http_probe``), not httpx: at 1,000 services probed every second httpx
spent 2-6.5 ms of CPU per probe and passes outlasted the interval (probes timed out: false
alerts); the lean client spends a small fraction of that. One ``Origin`` per (scheme, host,
port) keeps its connections alive, so a service's probes reuse one; all share one TLS
context (made once: it loads the CA bundle). A semaphore keeps at most ``concurrency``
probes in flight; a probe's latency is measured once it has its turn and a connection of
its origin; the whole request (connecting included) is bounded by ``health.timeout``. The
answer is handed to ``judge`` as an ``httpx.Response``, so probes are judged exactly as the
deploy's verification judges them (a gzip body is decoded by httpx there); redirects are
not followed, as before.

Private services are probed with an ID token for their URL's origin. Minting one is
blocking (google-auth), so it runs in a worker thread (``asyncio.to_thread``); tokens are
cached per audience and renewed ``_REFRESH`` seconds before they expire, by one probe while
the others keep using the current token, so the event loop never waits on google-auth.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from rollsafe.deploy.health import judge
from rollsafe.manifest.resolved import ResolvedHealth
from rollsafe.monitor._http_probe import NoAnswer, Origin
from rollsafe.platforms.idtoken import IdTokenError, IdTokens, audience_of

__all__ = ["AsyncProber", "ProbeSample", "ProbeTarget"]

#: connections open at once to one origin (a service is probed once per pass: one is used)
_PER_ORIGIN = 4
#: a cached token is renewed this long before it expires (less than IdTokens' own margin,
#: so that asking it then mints a new one instead of returning the same token)
_REFRESH = 240.0
#: while one probe renews a token, the others keep the current one if it is valid this long
_STILL_VALID = 30.0


@dataclass(frozen=True, slots=True)
class ProbeSample:
    """One probe of one service: ``ok`` and, if not, why (``detail``, never a token).

    ``status`` is None when no answer came; ``latency`` (seconds) is None when the request
    was never sent (no ID token). ``at`` is the ``time.time()`` the probe started.
    """

    service: str
    url: str
    ok: bool
    status: int | None
    latency: float | None
    detail: str
    at: float
    #: the revision that answered, when the platform says (the emulator's
    #: ``x-rollsafe-revision`` header); None otherwise
    revision: str | None = None

    def describe(self) -> str:
        """``HTTP 503 in 12 ms: expected HTTP 200`` or ``no answer: timed out after 2 s``."""
        answer = f"HTTP {self.status}" if self.status is not None else "no answer"
        if self.latency is not None:
            answer += f" in {self.latency * 1000:.0f} ms"
        return f"{answer}: {self.detail}" if self.detail else answer


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """What to probe: a service's URL with its health conditions; ``private`` services
    get an ID token."""

    service: str
    url: str
    health: ResolvedHealth
    private: bool = False


@dataclass(frozen=True, slots=True)
class _Target:
    """A probed URL, parsed: its origin's audience and connections, the path and query to
    send, and a request without token for ``judge`` (which only reads its headers)."""

    audience: str
    origin: Origin
    path: bytes
    request: httpx.Request


@dataclass(slots=True)
class _Token:
    token: str
    expires: float

    def __repr__(self) -> str:  # a bearer credential: never in a repr
        return f"_Token(expires={self.expires:.0f})"


def _expiry(token: str) -> float:
    """The ``exp`` claim of a JWT, read without verifying it (only to know when to renew);
    0 when it has none, so the token is asked for again next time."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return 0.0


class AsyncProber:
    """Probes services concurrently on the running event loop.

    ``tokens`` mints ID tokens for private services (None: private services are probed
    without one and fail with Cloud Run's 403). ``concurrency`` bounds the probes in
    flight. Use ``async with`` or ``await aclose()``: the connections belong to the event
    loop they were first used on.
    """

    def __init__(
        self,
        tokens: IdTokens | None = None,
        *,
        concurrency: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tokens = tokens
        self.concurrency = concurrency
        self._clock = clock
        #: one per origin (its audience: ``scheme://host[:port]``)
        self._clients: dict[str, Origin] = {}
        self._targets: dict[str, _Target] = {}
        self._tls: ssl.SSLContext | None = None
        self._slots: asyncio.Semaphore | None = None
        self._cache: dict[str, _Token] = {}
        self._renewing: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return (
            f"AsyncProber(concurrency={self.concurrency}, origins={len(self._clients)},"
            f" tokens={len(self._cache)})"
        )

    async def __aenter__(self) -> AsyncProber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every origin's connections."""
        origins, self._clients = list(self._clients.values()), {}
        self._targets.clear()
        for origin in origins:
            await origin.aclose()
        self._cache.clear()

    def _target(self, target: str) -> _Target:
        """What a probe of ``target`` needs, parsed once (URL parsing is a good part of a
        probe's CPU otherwise); its origin made on first use."""
        known = self._targets.get(target)
        if known is not None:
            return known
        url = httpx.URL(target)
        audience = audience_of(url)
        origin = self._clients.get(audience)
        if origin is None:
            if url.scheme == "https" and self._tls is None:
                self._tls = ssl.create_default_context()
            host = url.raw_host.decode("ascii")
            origin = Origin(url.scheme, host, url.port, tls=self._tls, connections=_PER_ORIGIN)
            self._clients[audience] = origin
        known = self._targets[target] = _Target(
            audience, origin, url.raw_path, httpx.Request("GET", url)
        )
        return known

    async def probe(
        self, service: str, url: str, health: ResolvedHealth, *, private: bool = False
    ) -> ProbeSample:
        """GET ``url + health.path`` once and judge it; never raises for the service's sake
        (no answer, a timeout or no ID token are failed samples saying why)."""
        target = url.rstrip("/") + health.path
        at = self._clock()
        try:
            parsed = self._target(target)
        except (httpx.InvalidURL, UnicodeError):
            detail = "request failed (InvalidURL)"
            return ProbeSample(service, target, False, None, None, detail, at)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        authorization = None
        request = parsed.request
        if private and self.tokens is not None:
            try:
                authorization = "Bearer " + await self._token(parsed.audience)
            except IdTokenError as exc:
                return ProbeSample(
                    service, target, False, None, None, f"no ID token to send: {exc.message}", at
                )
            # judge() tells a 401/403 sent with a token from one sent without
            request = httpx.Request("GET", request.url, headers={"Authorization": authorization})
        async with self._slots:
            try:
                answer = await parsed.origin.get(parsed.path, authorization, health.timeout)
            except NoAnswer as exc:
                return ProbeSample(service, target, False, None, exc.elapsed, exc.detail, at)
        try:
            response = httpx.Response(
                answer.status, headers=answer.headers, content=answer.body, request=request
            )
        except httpx.DecodingError:  # a Content-Encoding it claims but does not hold
            detail = "request failed (DecodingError)"
            return ProbeSample(service, target, False, None, answer.elapsed, detail, at)
        result = judge(response, answer.elapsed, health)
        return ProbeSample(
            service,
            target,
            result.ok,
            result.status,
            result.latency,
            result.reason,
            at,
            result.revision,
        )

    async def probe_all(self, targets: Sequence[ProbeTarget]) -> list[ProbeSample]:
        """Probe every target concurrently; the samples in the targets' order."""
        return list(
            await asyncio.gather(
                *(self.probe(t.service, t.url, t.health, private=t.private) for t in targets)
            )
        )

    async def _token(self, audience: str) -> str:
        now = self._clock()
        cached = self._cache.get(audience)
        if cached is not None and cached.expires - _REFRESH > now:
            return cached.token
        lock = self._renewing.setdefault(audience, asyncio.Lock())
        if lock.locked() and cached is not None and cached.expires - _STILL_VALID > now:
            return cached.token  # another probe is renewing it
        async with lock:
            cached = self._cache.get(audience)
            if cached is not None and cached.expires - _REFRESH > self._clock():
                return cached.token
            assert self.tokens is not None
            token = await asyncio.to_thread(self.tokens.token, audience)
            self._cache[audience] = _Token(token, _expiry(token))
            return token
