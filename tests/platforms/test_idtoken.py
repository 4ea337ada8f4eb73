"""ID tokens from google-auth against the emulator: minted per audience, cached until
shortly before they expire, failures remembered briefly, never shown."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from google.auth import jwt

from rollsafe.platforms.idtoken import IdTokenAuth, IdTokenError, IdTokens, audience_of


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_tokens_are_cached_per_audience_until_shortly_before_expiry(emulator: str) -> None:
    clock = _Clock()
    with IdTokens(emulator=emulator, clock=clock) as tokens:
        first = tokens.token("http://127.0.0.1:1")
        assert jwt.decode(first, verify=False)["aud"] == "http://127.0.0.1:1"
        assert tokens.token("http://127.0.0.1:1") == first
        assert tokens.minted == 1
        other = tokens.token("http://127.0.0.1:2")
        assert jwt.decode(other, verify=False)["aud"] == "http://127.0.0.1:2"
        assert tokens.minted == 2
        expires = jwt.decode(first, verify=False)["exp"]
        clock.now = expires - 301  # still more than the 5-minute margin left
        assert tokens.token("http://127.0.0.1:1") == first
        clock.now = expires - 299
        tokens.token("http://127.0.0.1:1")
        assert tokens.minted == 3
        for token in (first, other):
            assert token not in repr(tokens)


def test_auth_sends_a_token_for_the_request_origin(emulator: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200)

    with (
        IdTokens(emulator=emulator) as tokens,
        httpx.Client(
            transport=httpx.MockTransport(handler),
            auth=IdTokenAuth(tokens, audiences={"http://tag.test": "http://svc.test"}),
        ) as client,
    ):
        client.get("http://svc.test/health")
        client.get("http://tag.test:80/health")  # the tag's requests name the service URL
        client.get("http://other.test:8080/x")
    auds = [jwt.decode(h.removeprefix("Bearer "), verify=False)["aud"] for h in seen]
    assert auds == ["http://svc.test", "http://svc.test", "http://other.test:8080"]
    assert all(h.startswith("Bearer ey") for h in seen)


@pytest.mark.parametrize(
    ("url", "audience"),
    [
        ("https://svc-abc-uc.a.run.app/health?x=1", "https://svc-abc-uc.a.run.app"),
        ("http://127.0.0.1:8123/", "http://127.0.0.1:8123"),
        ("https://svc.a.run.app:443/", "https://svc.a.run.app"),
    ],
    ids=["run-app", "loopback-port", "default-port"],
)
def test_audience_is_the_origin(url: str, audience: str) -> None:
    assert audience_of(url) == audience


@pytest.fixture
def dead_metadata() -> Iterator[tuple[str, list[str]]]:
    """A metadata server that refuses every request (403), counting them."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_failure_is_remembered_briefly(dead_metadata: tuple[str, list[str]]) -> None:
    endpoint, hits = dead_metadata
    clock = _Clock()
    with IdTokens(emulator=endpoint, clock=clock) as tokens:
        with pytest.raises(IdTokenError) as first:
            tokens.token("http://127.0.0.1:1")
        asked = len(hits)
        assert asked >= 1
        assert "cannot get an ID token for http://127.0.0.1:1" in first.value.message
        with pytest.raises(IdTokenError) as again:
            tokens.token("http://127.0.0.1:2")  # no new attempt within 30 s
        assert len(hits) == asked
        assert "http://127.0.0.1:2" in again.value.message
        clock.now += 31
        with pytest.raises(IdTokenError):
            tokens.token("http://127.0.0.1:2")
        assert len(hits) > asked


def test_optional_auth_sends_anonymously_when_no_token(
    dead_metadata: tuple[str, list[str]],
) -> None:
    endpoint, _ = dead_metadata
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200)

    transport = httpx.MockTransport(handler)
    with IdTokens(emulator=endpoint) as tokens:
        with httpx.Client(transport=transport, auth=IdTokenAuth(tokens, required=False)) as c:
            assert c.get("http://svc.test/").status_code == 200
        with (
            httpx.Client(transport=transport, auth=IdTokenAuth(tokens)) as strict,
            pytest.raises(IdTokenError),
        ):
            strict.get("http://svc.test/")
    assert seen == [None]


@pytest.mark.parametrize(
    "impersonate", [None, "deployer@p.iam.gserviceaccount.com"], ids=["adc", "impersonated"]
)
def test_google_auth_debug_logs_never_carry_a_token(emulator: str, impersonate: str | None) -> None:
    """With the ``google`` logger at DEBUG (as a user may set it), google-auth's transport
    would log headers and JSON answers: nothing of a minting reaches a handler."""
    import logging

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    base = logging.getLogger("google")
    handler = Keep(level=logging.DEBUG)
    old_level = base.level
    base.addHandler(handler)
    base.setLevel(logging.DEBUG)
    try:
        with IdTokens(emulator=emulator, impersonate=impersonate) as tokens:
            token = tokens.token("http://127.0.0.1:1")
    finally:
        base.removeHandler(handler)
        base.setLevel(old_level)
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    assert token not in text
    assert "Bearer" not in text


def test_the_google_path_is_google_auths_fetch_id_token(
    emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an emulator endpoint, tokens come from ``fetch_id_token`` and ADC. Here ADC
    is a metadata server (as on Cloud Build, GCE or Cloud Run), which the emulator plays
    through google-auth's own settings for it."""
    from google.auth.compute_engine import _metadata

    host = emulator.removeprefix("http://")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("GCE_METADATA_IP", host)
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", host)  # read at import
    with IdTokens() as tokens:
        token = tokens.token("https://svc-abc-uc.a.run.app")
    claims = jwt.decode(token, verify=False)
    assert claims["aud"] == "https://svc-abc-uc.a.run.app"
    assert claims["iss"] == "https://accounts.google.com"
