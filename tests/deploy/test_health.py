"""Verification and cold starts, against a real HTTP server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from rollsafe.deploy.health import HealthSpec, probe, verify

#: fast probes: 50 ms apart, answers slower than 200 ms fail once the revision is warm
SPEC = HealthSpec(
    path="/health", timeout=2.0, max_latency=0.2, interval=0.05, verify_timeout=5.0, consecutive=3
)


class _Script:
    """What the server answers, request by request: (delay in seconds, status); then 200."""

    def __init__(self, answers: list[tuple[float, int]]) -> None:
        self.answers = answers
        self.seen = 0
        self.lock = threading.Lock()

    def next(self) -> tuple[float, int]:
        with self.lock:
            self.seen += 1
            return self.answers.pop(0) if self.answers else (0.0, 200)


@pytest.fixture
def server() -> Iterator[tuple[str, list[_Script]]]:
    holder: list[_Script] = [_Script([])]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            delay, status = holder[0].next()
            time.sleep(delay)
            body = b'{"status": "ok"}'
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", holder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _verify(url: str, spec: HealthSpec = SPEC) -> tuple[bool, list[str]]:
    with httpx.Client() as client:
        ok, results = verify(client, url, spec)
    return ok, [r.describe() for r in results]


@pytest.mark.parametrize(
    ("answers", "ok", "probes"),
    [
        pytest.param([(0.6, 200)], True, 3, id="first-answer-slow-within-cold-start"),
        pytest.param([(0.0, 200), (0.6, 200)], False, 2, id="slow-after-first-success-fails"),
        pytest.param([(0.0, 503)], False, 1, id="wrong-status-fails-at-once"),
        pytest.param([(0.6, 503)], False, 1, id="slow-wrong-status-fails-at-once"),
    ],
)
def test_cold_start_allowance(
    server: tuple[str, list[_Script]], answers: list[tuple[float, int]], ok: bool, probes: int
) -> None:
    url, holder = server
    holder[0] = _Script(list(answers))
    passed, described = _verify(url)
    assert passed is ok, described
    assert len(described) == probes, described


def test_slower_than_cold_start_is_retried(server: tuple[str, list[_Script]]) -> None:
    url, holder = server
    holder[0] = _Script([(0.6, 200)])
    passed, described = _verify(url, replace(SPEC, cold_start=0.3))
    assert passed, described
    assert "slower than 300 ms (cold_start)" in described[0]
    assert len(described) == 4


def test_first_probe_timeout_stretches_to_cold_start(
    server: tuple[str, list[_Script]],
) -> None:
    # a request timeout shorter than cold_start is stretched for the first probe only
    url, holder = server
    holder[0] = _Script([(0.6, 200)])
    spec = replace(SPEC, timeout=0.3, max_latency=None, cold_start=2.0)
    passed, described = _verify(url, spec)
    assert passed, described
    assert len(described) == 3
    assert holder[0].seen == 3
    # a warm probe keeps the manifest's timeout
    holder[0] = _Script([(0.6, 200)])
    with httpx.Client() as client:
        result = probe(client, url, spec)
    assert result.status is None
    assert "timed out after 0.3 s" in result.reason


def test_connection_refused_is_retried_until_verify_timeout() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once it is closed
    passed, described = _verify(f"http://127.0.0.1:{port}", replace(SPEC, verify_timeout=0.5))
    assert not passed
    assert len(described) > 1, described
    assert all("no answer" in text for text in described)
