"""``rollsafe web`` and the pages over HTTP: a real server on 127.0.0.1 (an ephemeral
port), read-only (405 to everything but GET and HEAD), 404s, gzip on the wire, no secret
value and no receiver URL in any page or document, and the command's usage errors."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rollsafe.cli import app as cli
from rollsafe.monitor.server import MonitorServer
from rollsafe.state.records import DeployRecord
from rollsafe.state.sqlite import SQLiteStateStore
from rollsafe.web.app import StatusApp
from rollsafe.web.model import ServiceState
from tests.conftest import CANARY_JWT, CANARY_STRONG
from tests.web._fake import NOW, FakeStatusData, episode, status
from tests.web._html_check import check

_ROLLSAFE = Path(sys.executable).with_name("rollsafe")
RECEIVER_CANARY = "RcvCanary-Yh3Tq9wLm2Zp"

MANIFEST = f"""
version: 1
project: netra
environments:
  staging:
    platform: cloudrun
    gcp_project: netra-staging
    region: us-central1
    strict: true
    store: "dotenv:staging.env"
    alerts:
      - {{type: alertmanager, url: "http://127.0.0.1:9/{RECEIVER_CANARY}"}}
      - {{type: webhook, url: {{secret: "hook-{{env}}"}}}}
services:
  backend:
    image: us-docker.pkg.dev/netra/app/backend:1.4.2
    health: {{path: /health}}
    monitor: {{interval: 2s}}
    secrets:
      SERVICE_SECRET: {{secret: "service-secret-{{env}}", rules: [machine_secret]}}
  frontend:
    image: us-docker.pkg.dev/netra/app/frontend:2.0.0
    health: {{path: /}}
    monitor: {{interval: 2s}}
"""


def _request(
    url: str, method: str = "GET", path: str = "/", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, headers={k.replace("_", "-"): v for k, v in headers.items()})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


# -- the pages on a real server, over the in-memory read model ---------------------------


@pytest.fixture
def served() -> Iterator[str]:
    data = FakeStatusData(
        [status("backend", ServiceState.MAJOR_OUTAGE), status("frontend")],
        [episode("backend", ended=False)],
    )
    with MonitorServer("127.0.0.1:0") as server:
        StatusApp(data, clock=lambda: NOW).mount(server)
        yield server.url


@pytest.mark.parametrize(
    "path",
    ["/", "/services/backend", "/incidents", f"/incidents/{episode('backend', ended=False).id}"],
    ids=["overview", "service", "incidents", "incident"],
)
def test_every_page_is_served_and_well_formed(served: str, path: str) -> None:
    code, headers, body = _request(served, path=path)
    assert code == 200, body[:200]
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'sha256-" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"
    check(body.decode())


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/", "/api/v1/summary", "/services/backend"])
def test_the_page_is_read_only(served: str, method: str, path: str) -> None:
    code, headers, _ = _request(served, method, path)
    assert code == 405
    assert headers["Allow"] == "GET, HEAD"


def test_head_answers_headers_only(served: str) -> None:
    code, headers, body = _request(served, "HEAD", "/")
    assert code == 200
    assert body == b""
    assert int(headers["Content-Length"]) > 1000


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/nope", "text/plain"),
        ("/services/nope", "text/html"),
        ("/incidents/INC-nope", "text/html"),
        ("/api/v1/services/nope", "application/json"),
    ],
    ids=["path", "service", "incident", "api"],
)
def test_unknown_things_are_404(served: str, path: str, kind: str) -> None:
    code, headers, _ = _request(served, path=path)
    assert code == 404
    assert headers["Content-Type"].startswith(kind)


def test_gzip_on_the_wire(served: str) -> None:
    code, headers, body = _request(served, path="/", accept_encoding="gzip")
    assert code == 200
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body).startswith(b"<!DOCTYPE html>")
    assert int(headers["Content-Length"]) == len(body)


def test_the_metrics_server_keeps_its_own_routes(served: str) -> None:
    assert _request(served, path="/healthz")[0] == 200
    assert _request(served, path="/metrics")[0] == 404  # no metrics on this server


# -- rollsafe web: the command, end to end over a state file ----------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "rollsafe.yaml").write_text(textwrap.dedent(MANIFEST).lstrip(), encoding="utf-8")
    (tmp_path / "staging.env").write_text(
        f"service-secret-staging={CANARY_STRONG}\nhook-staging=http://127.0.0.1:9/{CANARY_JWT}\n",
        encoding="utf-8",
    )
    from rollsafe.web._synthetic import fill_synthetic

    now = time.time()
    store = SQLiteStateStore(tmp_path / "state.sqlite3")
    try:
        fill_synthetic(store, "staging", ["backend", "frontend"], 3, now, down=["backend"])
        store.save_record(
            DeployRecord(
                id="d-broken",
                env="staging",
                service="backend",
                user="alice",
                host="ci",
                pid=1,
                checks="skipped",
                stage="done",
                started=now - 600,
                finished=now - 500,
                outcome="rolled-back",
                reason="hotfix",
                revision="backend-00009-bad",
                previous_revision="backend-00008-ok",
            )
        )
    finally:
        store.close()
    return tmp_path


@pytest.fixture
def web(workspace: Path) -> Iterator[str]:
    env = {
        **os.environ,
        # Google's clients go to a closed loopback port: the report says what it could not read
        "ROLLSAFE_GCP_ENDPOINT": "http://127.0.0.1:9",
        "ROLLSAFE_STATE": f"sqlite:{workspace / 'state.sqlite3'}",
    }
    proc = subprocess.Popen(
        [str(_ROLLSAFE), "web", "--env", "staging", "--serve", "127.0.0.1:0"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), "rollsafe web printed no URL"
        yield url.rstrip("/")
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr


def test_rollsafe_web_serves_every_page_without_a_secret_or_receiver_url(web: str) -> None:
    pages = ["/", "/services/backend", "/services/frontend?range=30d", "/incidents"]
    documents = ["summary", "summary.json", "services", "services/backend", "incidents"]
    bodies: dict[str, bytes] = {}
    for path in pages + [f"/api/v1/{d}" for d in documents]:
        code, _, body = _request(web, path=path)
        assert code == 200, (path, body[:300])
        bodies[path] = body
    summary = json.loads(bodies["/api/v1/summary"])
    assert {s["name"]: s["state"] for s in summary["services"]} == {
        "backend": "major_outage",
        "frontend": "operational",
    }
    check(bodies["/"].decode())
    incidents = json.loads(bodies["/api/v1/incidents"])["incidents"]
    assert incidents, "the rolled-back deploy is an incident"
    for one in incidents[:2]:
        for path in (f"/incidents/{one['id']}", f"/api/v1/incidents/{one['id']}"):
            code, _, body = _request(web, path=path)
            assert code == 200, (path, body[:300])
            bodies[path] = body
    page = bodies[f"/incidents/{incidents[0]['id']}"].decode()
    check(page)
    assert '<article id="report"><h1>' in page
    for path, body in bodies.items():
        for canary in (CANARY_STRONG, CANARY_JWT, RECEIVER_CANARY, "127.0.0.1:9/"):
            assert canary.encode() not in body, (canary, path)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--serve", "example.com:80"], "the host must be an IP address or localhost"),
        (["--serve", "127.0.0.1"], "has no port"),
        (["--serve", "127.0.0.1:99999"], "the port must be 0-65535"),
        (["--env", "nope"], "nope"),
        (["-f", "missing.yaml"], "missing.yaml"),
    ],
    ids=["hostname", "no-port", "bad-port", "unknown-env", "no-manifest"],
)
def test_usage_errors_exit_2_without_a_traceback(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], says: str
) -> None:
    monkeypatch.chdir(workspace)
    full = ["web", "--env", "staging", *args] if "--env" not in args else ["web", *args]
    code, output = _run(*full)
    assert code == 2, output
    assert says in output
    assert "Traceback" not in output


def test_a_port_in_use_is_named(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workspace)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = _run("web", "--env", "staging", "--serve", f"127.0.0.1:{port}")
    assert code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in output


def test_monitor_serve_mounts_the_page_beside_metrics(workspace: Path) -> None:
    import contextlib

    from rollsafe.cli._monitor import _serving
    from rollsafe.manifest import load_manifest

    resolved = load_manifest(workspace / "rollsafe.yaml").resolve("staging")
    with contextlib.ExitStack() as stack:
        metrics, server = _serving(
            resolved, "127.0.0.1:0", stack, f"sqlite:{workspace / 'state.sqlite3'}"
        )
        assert metrics is not None
        code, headers, body = _request(server.url, path="/metrics")
        assert code == 200
        assert headers["Content-Type"].startswith("text/plain")
        code, _, body = _request(server.url, path="/")
        assert code == 200
        assert b'<tr data-service="backend">' in body
        code, _, body = _request(server.url, path="/api/v1/summary.json")
        assert json.loads(body)["page"]["url"] == server.url
