"""AsyncProber: real HTTP servers on loopback, and the emulator's private backend."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rollsafe.manifest.resolved import ResolvedHealth
from rollsafe.monitor.probe import AsyncProber, ProbeSample, ProbeTarget
from rollsafe.platforms.idtoken import IdTokens
from tests.deploy.conftest import SERVICE, Site


class _Handler(BaseHTTPRequestHandler):
    """Answers by path: /ok, /down, /json-bad, /slow, /not-json; records Authorization."""

    seen: list[str | None]

    def do_GET(self) -> None:
        self.server.seen.append(self.headers.get("Authorization"))  # type: ignore[attr-defined]
        status, body = 200, {"status": "healthy", "db": {"ok": True}}
        if self.path == "/down":
            status = 503
        elif self.path == "/json-bad":
            body = {"status": "degraded"}
        elif self.path == "/slow":
            time.sleep(0.3)
        payload = b"not json" if self.path == "/not-json" else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Any]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _url(server: Any) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


async def _probe_once(url: str, health: ResolvedHealth, **kwargs: Any) -> ProbeSample:
    async with AsyncProber(**kwargs) as prober:
        return await prober.probe("svc", url, health)


CASES = [
    ("healthy", ResolvedHealth(path="/ok"), True, 200, ""),
    ("wrong-status", ResolvedHealth(path="/down"), False, 503, "expected HTTP 200"),
    (
        "json-field",
        ResolvedHealth(path="/json-bad", expect_json={"status": "healthy"}),
        False,
        200,
        "JSON 'status' is 'degraded', expected 'healthy'",
    ),
    (
        "nested-json",
        ResolvedHealth(path="/ok", expect_json={"db.ok": True}),
        True,
        200,
        "",
    ),
    (
        "not-json",
        ResolvedHealth(path="/not-json", expect_json={"status": "healthy"}),
        False,
        200,
        "body is not JSON",
    ),
    ("too-slow", ResolvedHealth(path="/slow", max_latency=0.05), False, 200, "slower than 50 ms"),
    ("timeout", ResolvedHealth(path="/slow", timeout=0.05), False, None, "timed out after 0.05 s"),
]


@pytest.mark.parametrize(
    ("health", "ok", "status", "detail"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_conditions_are_judged_like_the_deploys(
    server: Any, health: ResolvedHealth, ok: bool, status: int | None, detail: str
) -> None:
    sample = asyncio.run(_probe_once(_url(server), health))
    assert (sample.ok, sample.status, sample.detail) == (ok, status, detail)
    assert sample.service == "svc"
    assert sample.url == _url(server) + health.path
    assert sample.latency is not None


def test_no_answer_is_a_failed_sample(server: Any) -> None:
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    sample = asyncio.run(_probe_once(f"http://127.0.0.1:{port}", ResolvedHealth(path="/ok")))
    assert not sample.ok
    assert sample.status is None
    assert sample.detail == "request failed (ConnectError)"
    assert sample.describe().startswith("no answer")


def test_targets_of_one_origin_share_its_client_and_keep_their_order(server: Any) -> None:
    paths = ["/ok", "/down"] * 50
    targets = [
        ProbeTarget(f"svc{i}", _url(server), ResolvedHealth(path=p)) for i, p in enumerate(paths)
    ]

    async def run() -> list[ProbeSample]:
        async with AsyncProber(concurrency=8) as prober:
            first = await prober.probe_all(targets)
            clients = dict(prober._clients)
            second = await prober.probe_all(targets)
            assert prober._clients == clients  # one client for the one origin, kept
            assert list(clients) == [_url(server)]
            return first + second

    samples = asyncio.run(run())
    assert [s.service for s in samples] == [t.service for t in targets] * 2
    assert [s.ok for s in samples] == [p == "/ok" for p in paths] * 2
    assert server.seen == [None] * 200  # public: no token sent


def test_private_targets_get_a_cached_token_renewed_before_expiry(
    server: Any, emulator: str
) -> None:
    now = [time.time()]
    with IdTokens(emulator=emulator, clock=lambda: now[0]) as tokens:

        async def run() -> None:
            async with AsyncProber(tokens, clock=lambda: now[0]) as prober:
                health = ResolvedHealth(path="/ok")
                for _ in range(3):
                    sample = await prober.probe("svc", _url(server), health, private=True)
                    assert sample.ok
                assert tokens.minted == 1
                now[0] += 3600 - 200  # within the renewal margin of a one-hour token
                sample = await prober.probe("svc", _url(server), health, private=True)
                assert sample.ok
                assert tokens.minted == 2

        asyncio.run(run())
    assert len(server.seen) == 4
    assert all(h is not None and h.startswith("Bearer ey") for h in server.seen)
    assert server.seen[0] == server.seen[1] == server.seen[2]


def test_private_emulator_service_with_and_without_token(site: Site) -> None:
    site.baseline()
    url = site.service().url
    assert url is not None
    health = site.env.services[SERVICE].health

    async def run() -> tuple[ProbeSample, ProbeSample]:
        async with AsyncProber(site.tokens) as prober:
            good = await prober.probe(SERVICE, url, health, private=True)
        async with AsyncProber(None) as prober:
            refused = await prober.probe(SERVICE, url, health, private=True)
        return good, refused

    good, refused = asyncio.run(run())
    assert good.ok, good.describe()
    assert good.status == 200
    assert not refused.ok
    assert refused.status == 403
    assert "ID token" in refused.detail
    for sample in (good, refused):
        assert "eyJ" not in repr(sample)
