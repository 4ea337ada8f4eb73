"""Throughput and added latency of the emulator's router, against calling the revision directly.

One revision (uvicorn, a plain ASGI app answering "ok") and the router run in child
processes, as in the emulator; this process is the client, over kept-alive loopback
connections. Direct and routed runs alternate in the same run, and the ratios are printed.
Run: ``.venv/bin/python benchmarks/router.py``.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
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


async def _serve_router(backend_port: int) -> None:
    from rollsafe.emulator.router import Router

    router = Router({"bench-00001-abc": backend_port}.get)
    routes = await router.set_service(
        "projects/bench/locations/us-central1/services/bench", [("bench-00001-abc", 100)], {}
    )
    print(routes.port, flush=True)
    # serve until the parent closes our stdin
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await router.close()


_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


async def _client(port: int, path: str, requests: int, latencies: list[float] | None = None) -> int:
    """Send ``requests`` GETs on one kept-alive connection; returns the body bytes read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
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


def _start(args: list[str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise RuntimeError(f"{args[:2]} did not start")
    return proc, int(line)


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
    measure: Callable[[int], Awaitable[float]], direct: int, routed: int
) -> tuple[float, float]:
    """Best of ROUNDS for each, direct and routed alternating so drift hits both alike."""
    results: dict[int, list[float]] = {direct: [], routed: []}
    for _ in range(ROUNDS):
        for port in (direct, routed):
            results[port].append(await measure(port))
    return max(results[direct]), max(results[routed])


def _ms(seconds: list[float], percentile: int) -> float:
    return statistics.quantiles(seconds, n=100)[percentile - 1] * 1000


async def _run(direct: int, routed: int, pids: tuple[int, int]) -> None:
    for port in (direct, routed):  # warm up: connections, imports, caches
        await _client(port, "/", 200)
        await _client(port, "/big", 5)

    lat: dict[int, list[float]] = {direct: [], routed: []}
    for _ in range(ROUNDS):
        for port in (direct, routed):
            lat[port] += await _latency(port)
    rps = await _rounds(_throughput, direct, routed)
    # CPU per request of each process under load: the router's cost in itself, whatever
    # the client (one Python process, sharing the 2 cores) can send
    before = [_cpu_seconds(pid) for pid in pids]
    await _throughput(routed)
    cpu = [
        (_cpu_seconds(pid) - start) / (THROUGHPUT_CONNECTIONS * THROUGHPUT_REQUESTS) * 1e6
        for pid, start in zip(pids, before, strict=True)
    ]
    mbs = await _rounds(_bandwidth, direct, routed)

    med = _ms(lat[direct], 50), _ms(lat[routed], 50)
    p95 = _ms(lat[direct], 95), _ms(lat[routed], 95)
    print(
        f"router benchmark: {LATENCY_REQUESTS * ROUNDS} sequential requests on one connection; "
        f"{THROUGHPUT_CONNECTIONS} connections x {THROUGHPUT_REQUESTS} requests; "
        f"{LARGE_REQUESTS} x {LARGE_BODY // 1024} KiB bodies"
    )
    print(f"{'':28}{'direct':>10}{'router':>10}{'ratio':>8}{'added':>12}")
    print(f"{'throughput (req/s)':28}{rps[0]:>10,.0f}{rps[1]:>10,.0f}{rps[1] / rps[0]:>8.2f}")
    print(f"{'large bodies (MB/s)':28}{mbs[0]:>10,.0f}{mbs[1]:>10,.0f}{mbs[1] / mbs[0]:>8.2f}")
    for label, (d, r) in (("latency median (ms)", med), ("latency p95 (ms)", p95)):
        print(f"{label:28}{d:>10.3f}{r:>10.3f}{r / d:>8.2f}{r - d:>+9.3f} ms")
    if cpu[0]:
        print(f"CPU per routed request: router {cpu[1]:.0f} us, revision (uvicorn) {cpu[0]:.0f} us")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-router":
        asyncio.run(_serve_router(int(sys.argv[2])))
        return
    backend, backend_port = _start(["-c", BACKEND, str(LARGE_BODY)])
    try:
        router, router_port = _start([__file__, "--serve-router", str(backend_port)])
        try:
            asyncio.run(_run(backend_port, router_port, (backend.pid, router.pid)))
        finally:
            _stop(router, terminate=False)
    finally:
        _stop(backend, terminate=True)


if __name__ == "__main__":
    main()
