"""Throughput and added latency of the emulator's router, against calling the revision directly.

One revision (uvicorn, a plain ASGI app answering "ok") and the router run in child
processes, as in the emulator; this process is the client, over kept-alive loopback
connections. The service is private, as on Cloud Run: every request carries an ID token
signed by the emulator's key, which the router checks. The router process serves the
revision twice, through one router with request logging on (as in the emulator) and one
with it off, so the cost of request logging is measured in the same run. Direct and routed
runs alternate, and the ratios are printed.
Run: ``.venv/bin/python benchmarks/router.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

LATENCY_REQUESTS = 2000  # sequential, one connection, per round
THROUGHPUT_CONNECTIONS = 16
THROUGHPUT_REQUESTS = 400  # per connection, per round
LARGE_BODY = 1024 * 1024
LARGE_REQUESTS = 100  # per round
ROUNDS = 2

BACKEND = r"""
import socket, sys
import uvicorn

BIG = b"x" * int(sys.argv[1])

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = BIG if scope["path"] == "/big" else b"ok"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

# IPPROTO_TCP so that asyncio sets TCP_NODELAY, as on uvicorn's own sockets
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0))
sock.listen(1024)
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
"""


SERVICE = "projects/bench/locations/us-central1/services/bench"
REVISION = f"{SERVICE}/revisions/bench-00001-abc"


async def _serve_router(backend_port: int, state_dir: str) -> None:
    from rollsafe.emulator._request_log import RequestLog
    from rollsafe.emulator._run_iam import ServiceAccess
    from rollsafe.emulator.router import Router
    from rollsafe.emulator.state import EmulatorState

    state = EmulatorState.open(state_dir)
    access = ServiceAccess(state)  # creates the signing key the parent mints tokens with
    request_log = RequestLog(state.logs)
    lookup = {REVISION: backend_port}.get
    logged = Router(lookup, access=access, request_log=request_log.add)
    unlogged = Router(lookup, access=access)
    ports = []
    for router in (logged, unlogged):
        routes = await router.set_service(SERVICE, [(REVISION, 100)], {})
        ports.append(routes.port)
    print(*ports, flush=True)
    # serve until the parent closes our stdin
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for router in (logged, unlogged):
        await router.close()
    await request_log.close()
    state.close()


_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


#: Authorization field per port: an ID token for that router's URL (the revision ignores it)
_AUTH: dict[int, bytes] = {}


async def _client(port: int, path: str, requests: int, latencies: list[float] | None = None) -> int:
    """Send ``requests`` GETs on one kept-alive connection; returns the body bytes read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    auth = _AUTH.get(port, b"")
    request = b"GET %b HTTP/1.1\r\nHost: bench\r\n%b\r\n" % (path.encode(), auth)
    received = 0
    try:
        for _ in range(requests):
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(f"unexpected answer: {head[:80]!r}")
            match = _LENGTH.search(head)
            assert match is not None
            received += len(await reader.readexactly(int(match.group(1))))
            if latencies is not None:
                latencies.append(time.perf_counter() - start)
    finally:
        writer.close()
        await writer.wait_closed()
    return received


async def _latency(port: int) -> list[float]:
    latencies: list[float] = []
    await _client(port, "/", LATENCY_REQUESTS, latencies)
    return latencies


async def _throughput(port: int) -> float:
    start = time.perf_counter()
    await asyncio.gather(
        *(_client(port, "/", THROUGHPUT_REQUESTS) for _ in range(THROUGHPUT_CONNECTIONS))
    )
    return THROUGHPUT_CONNECTIONS * THROUGHPUT_REQUESTS / (time.perf_counter() - start)


async def _bandwidth(port: int) -> float:
    start = time.perf_counter()
    received = await _client(port, "/big", LARGE_REQUESTS)
    return received / (time.perf_counter() - start) / 1e6


def _start(args: list[str]) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen(
        [sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    words = proc.stdout.readline().split()
    if not words or not all(word.isdigit() for word in words):
        proc.kill()
        raise RuntimeError(f"{args[:2]} did not start")
    return proc, [int(word) for word in words]


def _stop(proc: subprocess.Popen[str], *, terminate: bool) -> None:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.close()  # the router process stops when its stdin closes
    if terminate:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _rounds(
    measure: Callable[[int], Awaitable[float]], ports: tuple[int, ...]
) -> tuple[float, ...]:
    """Best of ROUNDS for each port, alternating so that drift hits all alike."""
    results: dict[int, list[float]] = {port: [] for port in ports}
    for _ in range(ROUNDS):
        for port in ports:
            results[port].append(await measure(port))
    return tuple(max(results[port]) for port in ports)


def _ms(seconds: list[float], percentile: int) -> float:
    return statistics.quantiles(seconds, n=100)[percentile - 1] * 1000


async def _cpu(port: int, pids: tuple[int, int]) -> tuple[float, float, float]:
    """CPU seconds per request of this client, the revision and the router during a
    throughput run (the router's request log writer thread included)."""
    before = time.process_time(), *(_cpu_seconds(pid) for pid in pids)
    await _throughput(port)
    await asyncio.sleep(0.6)  # the last batch of request log entries is written meanwhile
    after = time.process_time(), *(_cpu_seconds(pid) for pid in pids)
    n = THROUGHPUT_CONNECTIONS * THROUGHPUT_REQUESTS
    client, backend, router = ((end - start) / n for start, end in zip(before, after, strict=True))
    return client, backend, router


async def _run(direct: int, logged: int, unlogged: int, pids: tuple[int, int]) -> int:
    """Measure and print; returns how many requests went through the logged router."""
    ports = (direct, logged, unlogged)
    for port in ports:  # warm up: connections, imports, caches, the token cache
        await _client(port, "/", 200)
        await _client(port, "/big", 5)
    sent = 200 + 5

    lat: dict[int, list[float]] = {port: [] for port in ports}
    for _ in range(ROUNDS):
        for port in ports:
            lat[port] += await _latency(port)
    sent += ROUNDS * LATENCY_REQUESTS
    rps = await _rounds(_throughput, ports)
    sent += ROUNDS * THROUGHPUT_CONNECTIONS * THROUGHPUT_REQUESTS
    # CPU per request of each process under load: the router's cost in itself, whatever
    # the client (one Python process, sharing the cores) can send
    cpu: dict[int, list[tuple[float, float, float]]] = {port: [] for port in ports}
    for _ in range(ROUNDS):  # alternating; the least of each, as noise only adds
        for port in ports:
            cpu[port].append(await _cpu(port, pids))
    sent += ROUNDS * THROUGHPUT_CONNECTIONS * THROUGHPUT_REQUESTS
    least = {
        port: tuple(min(parts) for parts in zip(*runs, strict=True)) for port, runs in cpu.items()
    }
    client_direct, backend_cpu, _ = least[direct]
    cpu_logged, cpu_unlogged = least[logged][2], least[unlogged][2]
    mbs = await _rounds(_bandwidth, ports)
    sent += ROUNDS * LARGE_REQUESTS

    print(
        f"router benchmark: {LATENCY_REQUESTS * ROUNDS} sequential requests on one connection; "
        f"{THROUGHPUT_CONNECTIONS} connections x {THROUGHPUT_REQUESTS} requests; "
        f"{LARGE_REQUESTS} x {LARGE_BODY // 1024} KiB bodies; every request with an ID token"
    )
    print(
        f"{'':24}{'direct':>10}{'router':>10}{'ratio':>8}{'added':>12}"
        f"{'router, no log':>16}{'ratio':>8}"
    )

    def row(label: str, values: tuple[float, ...], fmt: str, added: bool = False) -> None:
        d, r, u = values
        extra = f"{r - d:>+9.3f} ms" if added else " " * 12
        print(f"{label:24}{d:>10{fmt}}{r:>10{fmt}}{r / d:>8.2f}{extra}{u:>16{fmt}}{u / d:>8.2f}")

    row("throughput (req/s)", rps, ",.0f")
    row("large bodies (MB/s)", mbs, ",.0f")
    for label, pct in (("latency median (ms)", 50), ("latency p95 (ms)", 95)):
        row(label, tuple(_ms(lat[port], pct) for port in ports), ".3f", added=True)
    if cpu_logged:
        print(
            f"CPU per request: router {cpu_logged * 1e6:.0f} us with request logging, "
            f"{cpu_unlogged * 1e6:.0f} us without; revision (uvicorn) {backend_cpu * 1e6:.0f} us;"
            f" client {client_direct * 1e6:.0f} us"
        )
    print(
        f"request logging costs {(cpu_logged - cpu_unlogged) * 1e6:+.0f} us of router CPU and "
        f"{(1 / rps[1] - 1 / rps[2]) * 1e6:+.0f} us of wall time per request "
        f"(throughput {rps[1] / rps[2]:.2f}x of the router without it)"
    )
    return sent


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-router":
        asyncio.run(_serve_router(int(sys.argv[2]), sys.argv[3]))
        return
    from rollsafe.emulator.tokens import TokenIssuer

    with tempfile.TemporaryDirectory(prefix="rollsafe-bench-") as state_dir:
        backend, (backend_port,) = _start(["-c", BACKEND, str(LARGE_BODY)])
        try:
            args = [__file__, "--serve-router", str(backend_port), state_dir]
            router, (logged, unlogged) = _start(args)
            try:
                issuer = TokenIssuer(Path(state_dir))
                for port in (logged, unlogged):
                    token = issuer.id_token(f"http://127.0.0.1:{port}")
                    _AUTH[port] = b"Authorization: Bearer %b\r\n" % token.encode()
                _AUTH[backend_port] = _AUTH[logged]  # the same request bytes, direct
                sent = asyncio.run(_run(backend_port, logged, unlogged, (backend.pid, router.pid)))
            finally:
                _stop(router, terminate=False)
        finally:
            _stop(backend, terminate=True)
        with contextlib.closing(sqlite3.connect(Path(state_dir) / "emulator.sqlite3")) as db:
            (written,) = db.execute(
                "SELECT count(*) FROM log_entries WHERE log_name LIKE '%requests'"
            ).fetchone()
    print(f"request log entries written: {written:,} for {sent:,} requests to the logged router")


if __name__ == "__main__":
    main()
