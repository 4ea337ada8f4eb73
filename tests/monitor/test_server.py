"""MonitorServer: loopback by default, /metrics and /healthz, routes, close, port in use."""

from __future__ import annotations

import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rollsafe.errors import RollsafeError
from rollsafe.monitor.metrics import MonitorMetrics
from rollsafe.monitor.server import MonitorServer, MonitorServerError, Request, Response, parse_addr


@pytest.fixture
def metrics() -> MonitorMetrics:
    m = MonitorMetrics("qa", interval=1.0)
    m.observe_requests("web", "web-00001-abc", 3, 1)
    m.mark_pass()
    return m


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        pytest.param("127.0.0.1:9464", ("127.0.0.1", 9464), id="ipv4"),
        pytest.param(":9464", ("127.0.0.1", 9464), id="empty-host-is-loopback"),
        pytest.param("localhost:9464", ("127.0.0.1", 9464), id="localhost"),
        pytest.param("[::1]:9464", ("::1", 9464), id="ipv6"),
        pytest.param("0.0.0.0:9464", ("0.0.0.0", 9464), id="all-interfaces-written-out"),
        pytest.param("127.0.0.1:0", ("127.0.0.1", 0), id="any-port"),
    ],
)
def test_parse_addr(addr: str, expected: tuple[str, int]) -> None:
    assert parse_addr(addr) == expected


@pytest.mark.parametrize(
    ("addr", "message"),
    [
        pytest.param("9464", "no port", id="no-port"),
        pytest.param("127.0.0.1:http", "port must be", id="named-port"),
        pytest.param("127.0.0.1:70000", "port must be", id="port-range"),
        pytest.param("::1:9464", "brackets", id="bare-ipv6"),
        pytest.param("metrics.example.com:9464", "IP address or localhost", id="host-name"),
    ],
)
def test_bad_addresses_are_refused_with_a_hint(addr: str, message: str) -> None:
    with pytest.raises(MonitorServerError, match=message) as caught:
        MonitorServer(addr)
    assert isinstance(caught.value, RollsafeError)
    assert caught.value.exit_code == 2
    assert caught.value.hint


def test_serves_metrics_and_healthz_on_loopback(metrics: MonitorMetrics) -> None:
    server = MonitorServer(":0", metrics)
    assert server.host == "127.0.0.1"
    assert server.loopback
    with server, httpx.Client(base_url=server.url) as client:
        assert server.port != 0
        # the listening socket itself is on loopback, not on every interface
        assert server._server is not None
        assert server._server.socket.getsockname() == ("127.0.0.1", server.port)
        assert server.url == f"http://127.0.0.1:{server.port}"
        answer = client.get("/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        names = {family.name for family in text_string_to_metric_families(answer.text)}
        assert {
            "rollsafe_monitor_requests",
            "rollsafe_monitor_probes",
            "rollsafe_monitor_alerts",
        } <= names

        om = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.rstrip().endswith("# EOF")

        health = client.get("/healthz")
        assert (health.status_code, health.text) == (200, "ok\n")
        assert client.head("/metrics").content == b""
        assert client.get("/nope").status_code == 404
        assert client.post("/metrics").status_code == 405
    # closed: nothing listens any more
    with pytest.raises(httpx.ConnectError), httpx.Client() as client:
        client.get(f"{server.url}/healthz")


def test_healthz_fails_when_passes_stop() -> None:
    now = [1000.0]
    metrics = MonitorMetrics("qa", interval=1.0, clock=lambda: now[0])
    metrics.mark_pass()
    now[0] += 60
    with MonitorServer("127.0.0.1:0", metrics) as server:
        answer = httpx.get(f"{server.url}/healthz")
    assert answer.status_code == 503
    assert "no pass for 60 s" in answer.text


def test_routes_added_after_start_are_served(metrics: MonitorMetrics) -> None:
    seen: list[Request] = []

    def status(request: Request) -> Response:
        seen.append(request)
        return Response(b"<h1>qa</h1>", content_type="text/html; charset=utf-8")

    def broken(request: Request) -> Response:
        raise RuntimeError("state with a secret in it")

    with MonitorServer("127.0.0.1:0", metrics) as server:
        server.routes["/status"] = status
        server.routes["/broken"] = broken
        answer = httpx.get(f"{server.url}/status?service=web")
        failing = httpx.get(f"{server.url}/broken")
    assert answer.text == "<h1>qa</h1>"
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert seen[0].query == {"service": ["web"]}
    assert (failing.status_code, failing.text) == (500, "internal error\n")


def test_ipv6_loopback(metrics: MonitorMetrics) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    try:
        server = MonitorServer("[::1]:0", metrics).start()
    except MonitorServerError as exc:
        pytest.skip(f"::1 not available: {exc}")
    with server:
        assert server.loopback
        assert server.url.startswith("http://[::1]:")
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_port_in_use_is_a_rollsafe_error_with_a_hint(metrics: MonitorMetrics) -> None:
    with MonitorServer("127.0.0.1:0", metrics) as first:
        second = MonitorServer(f"127.0.0.1:{first.port}", metrics)
        with pytest.raises(MonitorServerError, match="already in use") as caught:
            second.start()
        assert caught.value.exit_code == 2
        assert caught.value.hint is not None
        assert "another port" in caught.value.hint
        second.close()  # never started: a no-op
        # the first server still answers
        assert httpx.get(f"{first.url}/healthz").status_code == 200


def test_non_loopback_is_reported_not_hidden() -> None:
    server = MonitorServer("0.0.0.0:9464")
    assert not server.loopback
    assert "stopped" in repr(server)


def test_close_twice_and_start_twice(metrics: MonitorMetrics) -> None:
    server = MonitorServer("127.0.0.1:0", metrics)
    assert server.start() is server.start()
    server.close()
    server.close()
