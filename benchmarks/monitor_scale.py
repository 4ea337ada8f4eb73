"""What `rollsafe monitor` costs at scale, and how fast it alerts, against its anchors.

(a) 1,000 services probed every second. A child process serves them all (small asyncio
HTTP servers answering ``GET /svc-N/health``, 200 or, once flipped, 503; one port per
service by default, as Cloud Run gives each service its own origin, ``--origins 1`` puts
them all behind one host:port) and a recording webhook receiver; this process is the monitor alone, so its CPU time is the monitor's:
``MonitorEngine`` with ``targets`` (one per service), a webhook receiver, thresholds 3 / 2
and a 1 s interval. Figures: probes per second achieved, the monitor's CPU % (process CPU
time / wall time, 100 % = one core of this 2-core machine), probe lag (how late each probe
ran versus its schedule) at p50 and p99, the time from services failing (10 flipped to
503 at once) to their notification arriving at the receiver, and from recovering to the
resolve, and healthy services alerted on (false alarms: probes timing out because the
monitor cannot keep up). Gatus's default (60 s interval x failure threshold 3 = 180 s) is
the comparison. Also: the time to render ``/metrics`` for 1,000 services, and the CPU per
probe of a raw asyncio HTTP/1.1 client on the same endpoints (the floor, same run).

(b) Log ingestion: error lines per second through ``LogAlertMatcher`` (the default log
alerts: JWT, start-up guard, exit, probes) plus ``ErrorTemplates`` (Drain3, with the
monitor's masking and its seen-template state), against Drain3 alone
(``TemplateMiner().add_log_message``, and with rollsafe's masks) on the same lines,
alternating rounds in the same run; while learning (fresh state) and once learnt.

Run: ``.venv/bin/python benchmarks/monitor_scale.py [--services N] [--seconds S]
[--lines N] [--only scale|logs]`` (about 2 minutes at 1,000 services).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from rollsafe.manifest._monitor_resolved import ResolvedMonitor  # noqa: E402
from rollsafe.monitor.metrics import MonitorMetrics  # noqa: E402

SERVICES = 1000
INTERVAL = 1.0
FAILURE_THRESHOLD = 3
SUCCESS_THRESHOLD = 2
FLIPPED = 10  # services that start answering 503 at once: one grouped notification
STEADY = 25.0  # seconds of steady state measured (after WARMUP)
WARMUP = 5.0
GATUS_INTERVAL, GATUS_THRESHOLD = 60.0, 3
GATUS_WAIT = GATUS_INTERVAL * GATUS_THRESHOLD  # waited for a notification at most
LOG_LINES = 20_000
LOG_ROUNDS = 3

# The services and the receiver, in a child process: asyncio, keep-alive, no framework, so
# the monitor (this process) is measured alone. stdin: "fail A B" makes svc-A..svc-(B-1)
# answer 503, "heal" makes all answer 200, "dump" prints what the receiver got (one JSON line).
CHILD = r"""
import asyncio, json, sys, time

failing = set()
received = []

async def handle(reader, writer, receiver):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length) if length else b""
            if receiver:
                received.append((time.time(), body.decode("utf-8", "replace")))
                status, answer = b"200 OK", b"{}"
            else:
                path = head.split(b" ", 2)[1]
                name = path.split(b"/")[1].decode()
                if name in failing:
                    status, answer = b"503 Service Unavailable", b'{"status":"down"}'
                else:
                    status, answer = b"200 OK", b'{"status":"ok"}'
            writer.write(b"HTTP/1.1 %b\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
                         % (status, len(answer), answer))
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
        pass
    finally:
        writer.close()

async def commands():
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        words = line.split()
        if words[0] == "fail":
            failing.update(f"svc-{i}" for i in range(int(words[1]), int(words[2])))
            print("ok", flush=True)
        elif words[0] == "heal":
            failing.clear()
            print("ok", flush=True)
        elif words[0] == "dump":
            print(json.dumps(received), flush=True)

async def main():
    receiver = await asyncio.start_server(lambda r, w: handle(r, w, True), "127.0.0.1", 0)
    ports = [receiver.sockets[0].getsockname()[1]]
    for _ in range(int(sys.argv[1])):  # origins: Cloud Run gives each service its own
        services = await asyncio.start_server(lambda r, w: handle(r, w, False), "127.0.0.1", 0, backlog=2048)
        ports.append(services.sockets[0].getsockname()[1])
    print(*ports, flush=True)
    await commands()

asyncio.run(main())
"""


class _Child:
    """The child process serving the services and the receiver."""

    def __init__(self, origins: int = 1) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(origins)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.receiver_port, *self.ports = (int(w) for w in self._line().split())
        self.services_port = self.ports[0]

    def url(self, i: int) -> str:
        """svc-i's URL: the services are spread over the origins (ports) round-robin."""
        return f"http://127.0.0.1:{self.ports[i % len(self.ports)]}/svc-{i}"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the services' process stopped")
        return line

    def command(self, text: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self._line()

    def received(self) -> list[tuple[float, str]]:
        return [(t, body) for t, body in json.loads(self.command("dump"))]

    def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


class _RecordingMetrics(MonitorMetrics):
    """MonitorMetrics that also keeps every lag, for exact percentiles (not buckets).

    The engine reports, per probe, the sample then its lag (pass start - the probe's due
    time), and ``mark_pass(pass start, seconds)`` after the pass: a probe's own lag is its
    start (``sample.at``) - its due time = ``sample.at - pass start + the engine's lag``.
    """

    def __init__(self, env: str) -> None:
        super().__init__(env, interval=INTERVAL)
        self.probes = 0
        self._starts: list[float] = []
        self._lags: list[float] = []
        #: (monotonic, the engine's lag, the probe's own start lag)
        self.lags: list[tuple[float, float, float]] = []
        self.passes: list[tuple[float, float]] = []  # (monotonic, seconds)
        self.failed: list[int] = []  # failed probes per pass
        self._failed = 0

    def observe_probe(self, sample: Any) -> None:
        self.probes += 1
        self._failed += not sample.ok
        self._starts.append(sample.at)
        super().observe_probe(sample)

    def observe_lag(self, seconds: float) -> None:
        self._lags.append(seconds)
        super().observe_lag(seconds)

    set_lag = observe_lag

    def mark_pass(self, at: float | None = None, seconds: float | None = None) -> None:
        mono = time.monotonic()
        if at is not None:
            for start, lag in zip(self._starts, self._lags, strict=False):
                self.lags.append((mono, lag, max(0.0, start - at + lag)))
        self._starts, self._lags = [], []
        self.failed.append(self._failed)
        self._failed = 0
        if seconds is not None:
            self.passes.append((mono, seconds))
        super().mark_pass(at, seconds)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _alerts_in(body: str) -> list[tuple[str, str]]:
    """(status, service) of each alert of a webhook payload (Alertmanager's, version 4)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return []
    return [
        (str(alert.get("status")), str(alert.get("labels", {}).get("service")))
        for alert in payload.get("alerts", [])
    ]


def _arrival(
    child: _Child, since: float, services: set[str], status: str, timeout: float
) -> float | None:
    """When the first notification carrying every one of ``services`` as ``status`` arrived."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen: set[str] = set()
        for at, body in child.received():
            if at < since:
                continue
            seen |= {svc for st, svc in _alerts_in(body) if st == status and svc in services}
            if seen >= services:
                return at
        time.sleep(0.1)
    return None


def _engine_parts(
    child: _Child, services: int, metrics: MonitorMetrics, concurrency: int | None = None
) -> tuple[Any, str]:
    """The monitor under test: MonitorEngine (H3) with a webhook receiver."""
    from rollsafe.manifest.resolved import ResolvedEnvironment
    from rollsafe.monitor.engine import MonitorEngine
    from rollsafe.monitor.receivers.webhook import WebhookReceiver
    from rollsafe.state.memory import MemoryStateStore

    env = ResolvedEnvironment(
        name="bench",
        project="bench",
        platform="local",
        strict=False,
        gcp_project="bench",
        region="local",
        store=None,
        manifest_path=ROOT / "rollsafe.yaml",
    )
    receiver = WebhookReceiver("hook", f"http://127.0.0.1:{child.receiver_port}/hook")
    engine = MonitorEngine(
        env,
        store=MemoryStateStore(),
        receivers=[receiver],
        metrics=metrics,
        probe_concurrency=concurrency,
        targets={f"svc-{i}": child.url(i) for i in range(services)},
        default_monitor=ResolvedMonitor(
            interval=INTERVAL,
            failure_threshold=FAILURE_THRESHOLD,
            success_threshold=SUCCESS_THRESHOLD,
        ),
    )
    limit = "the prober's default" if concurrency is None else concurrency
    what = f"MonitorEngine (AsyncProber, {limit} probes in flight; AlertBook; Notifier) -> webhook"
    return engine, what


async def _raw_pass(port: int, services: int, connections: int = 64) -> None:
    """One pass of ``services`` GETs over kept-alive connections, parsing only the status
    line and Content-Length: the floor of what probing costs in Python."""

    async def worker(names: range) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in names:
                writer.write(b"GET /svc-%d/health HTTP/1.1\r\nHost: bench\r\n\r\n" % i)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 503")):
                    raise RuntimeError(head[:40])
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(worker(range(c, services, connections)) for c in range(connections)))


def _raw_floor(port: int, services: int, passes: int = 5) -> tuple[float, float]:
    """(CPU s per probe, median pass s) of the raw client, in this process."""

    async def run() -> tuple[float, list[float]]:
        await _raw_pass(port, services)  # warm up
        cpu0, times = time.process_time(), []
        for _ in range(passes):
            t = time.perf_counter()
            await _raw_pass(port, services)
            times.append(time.perf_counter() - t)
        return time.process_time() - cpu0, times

    cpu, times = asyncio.run(run())
    return cpu / (passes * services), statistics.median(times)


def _wait(done: Any, at_least: float, at_most: float) -> None:
    """Sleep ``at_least`` seconds, then until ``done()`` (or ``at_most`` seconds in all)."""
    start = time.monotonic()
    time.sleep(at_least)
    while not done() and time.monotonic() - start < at_most:
        time.sleep(0.1)


def scale(services: int, steady: float, concurrency: int | None = None, origins: int = 1) -> None:
    child = _Child(origins)
    metrics = _RecordingMetrics("bench")
    try:
        engine, what = _engine_parts(child, services, metrics, concurrency)
        stop = threading.Event()
        runner = threading.Thread(target=engine.run, args=(stop,), name="monitor")
        started = time.monotonic()
        runner.start()
        try:
            # warm-up: WARMUP seconds and two passes (connections made, caches filled)
            _wait(lambda: len(metrics.passes) >= 2, WARMUP, 120)
            wall0, cpu0, probes0 = time.monotonic(), time.process_time(), metrics.probes
            passes0 = len(metrics.passes)
            # measured: `steady` seconds and at least 3 passes, whatever a pass takes
            _wait(lambda: len(metrics.passes) >= passes0 + 3, steady, 180)
            wall1, cpu1, probes1 = time.monotonic(), time.process_time(), metrics.probes
            engine_lags = [lag for at, lag, _ in metrics.lags if wall0 <= at <= wall1]
            lags = [lag for at, _, lag in metrics.lags if wall0 <= at <= wall1]
            passes = [sec for at, sec in metrics.passes if wall0 <= at <= wall1]
            failed_steady = sum(metrics.failed[passes0 : passes0 + len(passes)])

            flipped = {f"svc-{i}" for i in range(FLIPPED)}
            failed_at = time.time()
            child.command(f"fail 0 {FLIPPED}")
            fired = _arrival(child, failed_at, flipped, "firing", timeout=GATUS_WAIT)
            healed_at = time.time()
            child.command("heal")
            resolved = _arrival(child, healed_at, flipped, "resolved", timeout=GATUS_WAIT)
            # services that never failed but were alerted on: the monitor's own false alarms
            false_alarms = {
                service
                for _, body in child.received()
                for status, service in _alerts_in(body)
                if status == "firing" and service not in flipped
            }

            render = []
            for _ in range(5):
                t = time.perf_counter()
                body = metrics.render()
                render.append(time.perf_counter() - t)
        finally:
            stop.set()
            runner.join(timeout=600)  # a pass ends: every probe has a timeout
            engine.close()  # its Notifier closes the receiver
        total = time.monotonic() - started
        raw_cpu, raw_pass = _raw_floor(child.services_port, services)
    finally:
        child.close()

    wall = wall1 - wall0
    cpu_pct = (cpu1 - cpu0) / wall * 100
    to_alert = fired - failed_at if fired else float("nan")
    to_resolve = resolved - healed_at if resolved else float("nan")
    gatus = GATUS_INTERVAL * GATUS_THRESHOLD
    print(
        f"(a) {services:,} services (cheap local endpoints on {origins} origin(s)) at a "
        f"{INTERVAL:g} s interval, "
        f"thresholds {FAILURE_THRESHOLD}/{SUCCESS_THRESHOLD}; {wall:.0f} s measured "
        f"({len(passes)} passes) after a warm-up of {WARMUP:g} s and 2 passes ({total:.0f} s in "
        f"all); monitor: {what}"
    )
    print(f"{'':44}{'value':>12}")
    print(
        f"{'probes per second (target ' + format(services / INTERVAL, ',.0f') + ')':44}{(probes1 - probes0) / wall:>12,.0f}"
    )
    print(f"{'monitor CPU % (100 % = one core)':44}{cpu_pct:>12.1f}")
    for label, values in (("probe start lag", lags), ("pass start lag (in /metrics)", engine_lags)):
        for p in (50, 99):
            print(f"{f'{label} p{p} (ms)':44}{_pct(values, p) * 1000:>12.1f}")
    print(f"{'lag samples':44}{len(lags):>12,}")
    print(f"{'pass duration p50 (ms)':44}{_pct(passes, 50) * 1000:>12.1f}")
    print(f"{'pass duration max (ms)':44}{max(passes, default=float('nan')) * 1000:>12.1f}")
    cold = metrics.failed[0] if metrics.failed else 0
    print(f"{'failed probes in the first (cold) pass':44}{cold:>12,}")
    print(f"{'failed probes in the measured passes':44}{failed_steady:>12,}")
    print(f"{'healthy services alerted on (false alarms)':44}{len(false_alarms):>12,}")
    print(f"{f'{FLIPPED} services fail -> firing at receiver (s)':44}{to_alert:>12.2f}")
    print(f"{'recover -> resolved at receiver (s)':44}{to_resolve:>12.2f}")
    print(
        f"{'/metrics render, ' + format(services, ',') + ' services (ms)':44}{statistics.median(render) * 1000:>12.1f}"
    )
    print(f"{'/metrics size (KiB)':44}{len(body) / 1024:>12.0f}")
    probes = probes1 - probes0
    cpu_probe = (cpu1 - cpu0) / probes if probes else float("nan")
    print(
        f"CPU per probe: monitor {cpu_probe * 1000:.2f} ms (everything: probe, alert book, "
        f"metrics); a raw asyncio HTTP/1.1 client (64 kept-alive connections, status line "
        f"only) {raw_cpu * 1000:.3f} ms, {cpu_probe / raw_cpu:.0f}x less; its pass of "
        f"{services:,} takes {raw_pass * 1000:.0f} ms"
    )
    if fired is None or resolved is None:
        print(f"(a notification did not arrive within {GATUS_WAIT:g} s: nan above)")
    print(
        f"time to alert: {to_alert:.1f} s (at best {FAILURE_THRESHOLD - 1:g}-{FAILURE_THRESHOLD:g} "
        f"intervals = {(FAILURE_THRESHOLD - 1) * INTERVAL:g}-{FAILURE_THRESHOLD * INTERVAL:g} s) against Gatus's default {GATUS_INTERVAL:g} s x "
        f"{GATUS_THRESHOLD} = {gatus:g} s: {gatus / to_alert:.0f}x sooner"
    )


# -- (b) log ingestion ----------------------------------------------------------------------

_TEMPLATES = (
    "Traceback: KeyError 'user_{n}' in handler /api/orders/{n}",
    "database timeout after {ms} ms on query id={n}",
    "upstream 502 from payments-{n}.internal in {ms} ms",
    "JWT secret not configured: refusing to sign token for request {hex}",
    "failed to decode token {hex}: signature invalid",
    "worker {n} crashed with exit code {code}",
    "cache miss storm: {n} misses in {ms} ms for key session:{hex}",
    "rate limited client 10.0.{n}.{code} on /api/v1/items/{n}",
)


def _log_lines(count: int) -> list[Any]:
    from rollsafe.monitor.logs import LogEntryLine

    rng = random.Random(12)
    lines = []
    now = time.time()
    for i in range(count):
        text = rng.choice(_TEMPLATES).format(
            n=rng.randrange(100_000),
            ms=rng.randrange(5_000),
            hex=f"{rng.getrandbits(64):016x}",
            code=rng.randrange(256),
        )
        lines.append(
            LogEntryLine(
                service=f"svc-{i % 20}",
                revision=f"svc-{i % 20}-00002-abc",
                log_name="run.googleapis.com/stderr",
                severity="ERROR",
                text=text,
                insert_id=f"ins{i:08d}",
                at=now + i * 0.001,
            )
        )
    return lines


def _rates(feed: Any, lines: list[Any]) -> tuple[float, float]:
    """(lines/s while learning, lines/s once learnt): ``feed`` the first half of ``lines``
    to a fresh instance, then the second half (new lines, the same shapes)."""
    half = len(lines) // 2
    rates = []
    for part in (lines[:half], lines[half:]):
        start = time.perf_counter()
        feed(part)
        rates.append(len(part) / (time.perf_counter() - start))
    return rates[0], rates[1]


def _ours(lines: list[Any]) -> tuple[float, float]:
    from rollsafe.monitor.log_alerts import LogAlertMatcher
    from rollsafe.monitor.templates import ErrorTemplates
    from rollsafe.state.memory import MemoryStateStore

    settings = ResolvedMonitor()
    matcher = LogAlertMatcher(lambda service: settings)
    templates = ErrorTemplates(MemoryStateStore(), "bench")
    deployed = lines[0].at - 60

    def feed(part: list[Any]) -> None:
        for i in range(0, len(part), 500):  # one read of the Logging API: a page of lines
            page = part[i : i + 500]
            matcher.feed(page)
            for line in page:
                templates.add(line, "deploy-1", deployed)
            for service in {line.service for line in page}:
                matcher.observe(service, page[-1].at)
                templates.observe(service, page[-1].at)
        templates.flush()

    return _rates(feed, lines)


def _drain_alone(lines: list[Any], *, masked: bool = False) -> tuple[float, float]:
    """Drain3 by itself, one miner: its default configuration, or with rollsafe's masks."""
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    from rollsafe.monitor.templates import _MASKS

    config = TemplateMinerConfig()  # given, so drain3 does not look for drain3.ini
    if masked:
        config.masking_instructions = [MaskingInstruction(p, n) for p, n in _MASKS]
    miner = TemplateMiner(config=config)

    def feed(part: list[Any]) -> None:
        for line in part:
            miner.add_log_message(line.text)

    return _rates(feed, lines)


def logs(count: int) -> None:
    import logging

    logging.getLogger("drain3").setLevel(logging.WARNING)  # drain3 logs each new cluster
    lines = _log_lines(count)
    runs: dict[str, list[tuple[float, float]]] = {"alone": [], "masked": [], "ours": []}
    for _ in range(LOG_ROUNDS):  # alternating, so drift hits all alike; best of each
        runs["alone"].append(_drain_alone(lines))
        runs["masked"].append(_drain_alone(lines, masked=True))
        runs["ours"].append(_ours(lines))
    best = {k: (max(r[0] for r in v), max(r[1] for r in v)) for k, v in runs.items()}
    print(
        f"(b) log ingestion: {count:,} ERROR lines ({len(_TEMPLATES)} shapes with variable "
        f"parts, 20 services, pages of 500), best of {LOG_ROUNDS} alternating rounds; "
        f"'learning' = the first {count // 2:,} lines on a fresh state, 'learnt' = the next {count // 2:,}"
    )
    print(f"{'':52}{'learning':>10}{'ratio':>8}{'learnt':>10}{'ratio':>8}   lines/s")
    rows = (
        ("Drain3 alone (TemplateMiner.add_log_message)", "alone"),
        ("Drain3 alone, with rollsafe's masks", "masked"),
        ("LogAlertMatcher + ErrorTemplates (Drain3)", "ours"),
    )
    base = best["alone"]
    for label, key in rows:
        cold, warm = best[key]
        print(
            f"{label:52}{cold:>10,.0f}{cold / base[0]:>7.2f}x{warm:>10,.0f}{warm / base[1]:>7.2f}x"
        )
    ours, masked = best["ours"][1], best["masked"][1]
    print(
        f"learnt: {ours / base[1]:.2f}x of Drain3 alone, {(1 / ours - 1 / base[1]) * 1e6:+.0f} us "
        f"per line (masking {(1 / masked - 1 / base[1]) * 1e6:+.0f} us; log-alert matching, "
        f"one miner per service and the kept state {(1 / ours - 1 / masked) * 1e6:+.0f} us)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=SERVICES)
    parser.add_argument("--seconds", type=float, default=STEADY)
    parser.add_argument("--lines", type=int, default=LOG_LINES)
    parser.add_argument("--only", choices=("scale", "logs"))
    parser.add_argument("--concurrency", type=int, help="probes in flight (the prober's default)")
    parser.add_argument(
        "--origins",
        type=int,
        help="ports the services are spread over (default: one per service, as on Cloud Run; "
        "1 = all behind one host:port, the worst case for httpx's pool)",
    )
    args = parser.parse_args()
    print(
        f"monitor benchmark on {__import__('os').cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    if args.only != "logs":
        scale(args.services, args.seconds, args.concurrency, args.origins or args.services)
        print()
    if args.only != "scale":
        logs(args.lines)


if __name__ == "__main__":
    main()
