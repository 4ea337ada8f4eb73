"""The emulator end to end: deploy time, and its router against calling a revision directly.

1. Time from ``ServicesClient.update_service`` (a new template: a new revision, a new
   process) to the operation done with the revision Ready, median of 10. The operation is
   awaited with ``operations/{id}:wait``, which answers the moment it is done (the client's
   own polling sleeps 1 s first).
2. Throughput and added latency of the service URL (the router, inside the emulator's event
   loop) against the revision's own port, in the same run, with the ratios. The service is
   private, as on Cloud Run: every request carries an ID token from the emulator's metadata
   server, which the router checks, and the router writes a request log entry for each.

The revision is a trivial asyncio HTTP/1.1 server (keep-alive), written to a temp directory.
Run: ``.venv/bin/python benchmarks/emulator.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from google.cloud import run_v2

from rollsafe._gcp import client_kwargs
from rollsafe.emulator.server import start_emulator, stop_emulator

DEPLOYS = 10
LATENCY_REQUESTS = 2000  # sequential, one kept-alive connection, per round
THROUGHPUT_CONNECTIONS = 16
THROUGHPUT_REQUESTS = 300  # per connection, per round
ROUNDS = 2
PARENT = "projects/bench/locations/us-central1"

APP = r"""
import asyncio, os

PORT = int(os.environ["PORT"])
BODY = str(PORT).encode()
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY), BODY)

async def handle(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", PORT, backlog=1024)
    print("listening on", PORT, flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""

_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def template(app: Path, generation: int) -> run_v2.RevisionTemplate:
    container = run_v2.Container(
        image="ignored-locally",
        command=["python", str(app)],
        env=[run_v2.EnvVar(name="GENERATION", value=str(generation))],
    )
    return run_v2.RevisionTemplate(containers=[container])


def deploy_times(endpoint: str, app: Path) -> tuple[list[float], run_v2.Service]:
    client = run_v2.ServicesClient(**client_kwargs(endpoint))
    try:
        with httpx.Client(base_url=endpoint, timeout=120) as http:
            first = client.create_service(
                parent=PARENT, service_id="bench", service=run_v2.Service(template=template(app, 0))
            )
            http.post(f"/v2/{first.operation.name}:wait", json={"timeout": "60s"})
            times = []
            for generation in range(1, DEPLOYS + 1):
                service = run_v2.Service(
                    name=f"{PARENT}/services/bench", template=template(app, generation)
                )
                start = time.perf_counter()
                operation = client.update_service(service=service)
                done = http.post(f"/v2/{operation.operation.name}:wait", json={"timeout": "60s"})
                times.append(time.perf_counter() - start)
                if "response" not in done.json():
                    raise RuntimeError(f"deploy {generation} failed: {done.text}")
            return times, client.get_service(name=f"{PARENT}/services/bench")
    finally:
        client.transport.close()


#: the Authorization field sent on every request (to the revision too: same bytes)
_AUTH = [b""]


def id_token(endpoint: str, audience: str) -> str:
    """An ID token for ``audience`` from the emulator's metadata server."""
    response = httpx.get(
        f"{endpoint}/computeMetadata/v1/instance/service-accounts/default/identity",
        params={"audience": audience},
        headers={"Metadata-Flavor": "Google"},
    )
    response.raise_for_status()
    return response.text


async def _client(port: int, requests: int, latencies: list[float] | None = None) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    request = b"GET / HTTP/1.1\r\nHost: bench\r\n%b\r\n" % _AUTH[0]
    try:
        for _ in range(requests):
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(f"unexpected answer: {head[:80]!r}")
            match = _LENGTH.search(head)
            assert match is not None
            await reader.readexactly(int(match.group(1)))
            if latencies is not None:
                latencies.append(time.perf_counter() - start)
    finally:
        writer.close()
        await writer.wait_closed()


async def _throughput(port: int) -> float:
    start = time.perf_counter()
    await asyncio.gather(
        *(_client(port, THROUGHPUT_REQUESTS) for _ in range(THROUGHPUT_CONNECTIONS))
    )
    return THROUGHPUT_CONNECTIONS * THROUGHPUT_REQUESTS / (time.perf_counter() - start)


async def routing(direct: int, routed: int) -> tuple[dict[int, list[float]], dict[int, float]]:
    for port in (direct, routed):  # warm up
        await _client(port, 200)
    latencies: dict[int, list[float]] = {direct: [], routed: []}
    rps: dict[int, list[float]] = {direct: [], routed: []}
    for _ in range(ROUNDS):  # alternate, so that drift hits both alike
        for port in (direct, routed):
            await _client(port, LATENCY_REQUESTS, latencies[port])
            rps[port].append(await _throughput(port))
    return latencies, {port: max(values) for port, values in rps.items()}


def _ms(seconds: list[float], percentile: int) -> float:
    return statistics.quantiles(seconds, n=100)[percentile - 1] * 1000


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rollsafe-bench-") as tmp:
        state_dir = Path(tmp) / "state"
        app = Path(tmp) / "app.py"
        app.write_text(APP)
        endpoint = start_emulator(state_dir).endpoint
        assert endpoint is not None
        try:
            times, service = deploy_times(endpoint, app)
            routed = int(service.uri.rsplit(":", 1)[1])
            token = id_token(endpoint, service.uri)
            _AUTH[0] = b"Authorization: Bearer %b\r\n" % token.encode()
            # the app answers its own port
            direct = int(httpx.get(service.uri, headers={"Authorization": f"Bearer {token}"}).text)
            latencies, rps = asyncio.run(routing(direct, routed))
        finally:
            stop_emulator(state_dir)  # writes the last request log entries
        with contextlib.closing(sqlite3.connect(state_dir / "emulator.sqlite3")) as db:
            (logged,) = db.execute(
                "SELECT count(*) FROM log_entries WHERE log_name LIKE '%run.googleapis.com%2Frequests'"
            ).fetchone()
        sent = 1 + 200 + ROUNDS * (LATENCY_REQUESTS + THROUGHPUT_CONNECTIONS * THROUGHPUT_REQUESTS)

    print(f"emulator benchmark ({sys.platform}, Python {sys.version.split()[0]})")
    print(
        f"update_service -> Ready (new revision, new process): median "
        f"{statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms over {DEPLOYS} deploys"
    )
    print(
        f"{'':28}{'direct':>10}{'router':>10}{'ratio':>8}{'added':>12}"
        f"   ({LATENCY_REQUESTS * ROUNDS} sequential requests; "
        f"{THROUGHPUT_CONNECTIONS} connections x {THROUGHPUT_REQUESTS} requests)"
    )
    print(
        f"{'throughput (req/s)':28}{rps[direct]:>10,.0f}{rps[routed]:>10,.0f}"
        f"{rps[routed] / rps[direct]:>8.2f}"
    )
    for label, pct in (("latency median (ms)", 50), ("latency p95 (ms)", 95)):
        d, r = _ms(latencies[direct], pct), _ms(latencies[routed], pct)
        print(f"{label:28}{d:>10.3f}{r:>10.3f}{r / d:>8.2f}{r - d:>+9.3f} ms")
    print(f"request log entries: {logged:,} for {sent:,} requests through the service URL")


if __name__ == "__main__":
    main()
