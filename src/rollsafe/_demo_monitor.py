"""``rollsafe demo``'s monitor: ``MonitorEngine`` in a thread of the demo's process, as
``rollsafe monitor --serve`` runs it (its own clients, ``/metrics`` and the status page on a
loopback port), alerting ``AlertSink``, a webhook receiver on 127.0.0.1 that keeps what it
is sent. The receiver's URL is a secret in the emulator's Secret Manager, as receiver URLs
should be.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from rollsafe.errors import RollsafeError

if TYPE_CHECKING:
    from rollsafe.drift.model import DriftReport
    from rollsafe.incidents.model import Episode, IncidentReport
    from rollsafe.manifest import ResolvedEnvironment
    from rollsafe.monitor.engine import MonitorLine
    from rollsafe.monitor.server import MonitorServer
    from rollsafe.state.journal import DeployJournal
    from rollsafe.stores.secretmanager import SecretManagerStore

__all__ = ["ALERTS_SECRET", "AlertSink", "DemoMonitor"]

#: the receiver's URL, a secret as receiver URLs should be (``{env}`` expanded)
ALERTS_SECRET = "demo-alerts-{env}"


# -- the receiver --------------------------------------------------------------------------


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A sender hanging up mid-request is not the demo's business."""


class AlertSink:
    """A webhook receiver on 127.0.0.1 (a free port) that keeps every alert it is sent
    (Alertmanager's webhook payload v4, as rollsafe's ``webhook`` receiver sends it)."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._server = _Quiet(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="rollsafe-demo-receiver",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def start(self) -> AlertSink:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert received, oldest first."""
        with self._cond:
            return [a for p in self.payloads for a in p.get("alerts", []) if isinstance(a, dict)]

    def has(self, alertname: str, status: str) -> bool:
        return any(
            a.get("status") == status and a.get("labels", {}).get("alertname") == alertname
            for a in self.alerts()
        )

    def wait(self, ready: Callable[[], bool], timeout: float) -> bool:
        """True once ``ready()`` holds (checked on each arrival), False after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _keep(self, body: bytes) -> None:
        try:
            payload = json.loads(body)
        except ValueError:
            return
        if isinstance(payload, dict):
            with self._cond:
                self.payloads.append(payload)
                self._cond.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                sink._keep(self.rfile.read(length))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


# -- the monitor ---------------------------------------------------------------------------


class DemoMonitor:
    """The monitor of the demo's environment in a thread of this process, with its own
    clients (as a separate ``rollsafe monitor`` would have), the recording receiver, and
    ``monitor --serve``'s server on ``serve`` (a free loopback port by default).

    Use as a context manager: leaving it stops the loop, sends what is queued, closes the
    server, the receiver and the clients.
    """

    def __init__(
        self,
        env: ResolvedEnvironment,
        *,
        journal: DeployJournal,
        secrets: SecretManagerStore,
        endpoint: str,
        say: Callable[[str], None],
        serve: str = "127.0.0.1:0",
    ) -> None:
        self.env = env
        self.journal = journal
        self.secrets = secrets
        self.endpoint = endpoint
        self.say = say
        self.serve = serve
        self.sink = AlertSink()
        self.server: MonitorServer | None = None
        self.pages = False
        self._stop = threading.Event()
        self._stack = contextlib.ExitStack()
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None

    def __enter__(self) -> DemoMonitor:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def url(self) -> str | None:
        """The status page (``/metrics`` while the web pages are not installed)."""
        if self.server is None:
            return None
        return self.server.url + ("/" if self.pages else "/metrics")

    def _start(self) -> None:
        from rollsafe.monitor.engine import MonitorEngine
        from rollsafe.monitor.logs import ServiceLogReader
        from rollsafe.monitor.receivers import open_receivers
        from rollsafe.platforms.cloudrun import CloudRunPlatform
        from rollsafe.platforms.idtoken import IdTokens

        env, stack = self.env, self._stack
        stack.enter_context(contextlib.closing(self.sink.start()))
        self.secrets.add_version(ALERTS_SECRET.format(env=env.name), self.sink.url)
        platform = stack.enter_context(
            CloudRunPlatform(env.gcp_project, env.region, endpoint=self.endpoint)
        )
        tokens = stack.enter_context(IdTokens(emulator=self.endpoint))
        # from now on: the earlier scenes' start-up failures are the deploys' business, and
        # a reused workspace's cursor (the last run's) is too old to go on from
        logs = stack.enter_context(
            ServiceLogReader(
                env.gcp_project,
                endpoint=self.endpoint,
                store=self.journal.store,
                env=env.name,
                backfill=0.0,
                max_backlog=1.0,
            )
        )
        receivers = open_receivers(env, self.secrets)
        for receiver in receivers:
            stack.callback(receiver.close)
        metrics = self._serving()
        engine = MonitorEngine(
            env,
            store=self.journal.store,
            journal=self.journal,
            platform=platform,
            tokens=tokens,
            logs=logs,
            receivers=receivers,
            listener=self._heard,
            metrics=metrics,
            drift=self._drift,
        )
        stack.callback(engine.close)
        self._thread = threading.Thread(
            target=self._run, args=(engine,), name="rollsafe-demo-monitor", daemon=True
        )
        self._thread.start()
        stack.callback(self._halt)

    def _serving(self) -> Any:
        """``monitor --serve``'s server: /metrics and the status page, as its hook mounts
        it (``cli._web.mount_status_page``) but with reports read from this demo's
        emulator whatever ``ROLLSAFE_HOME`` or ``ROLLSAFE_GCP_ENDPOINT`` say."""
        from rollsafe.monitor.server import MonitorServer
        from rollsafe.state.sqlite import SQLiteStateStore
        from rollsafe.web.app import StatusApp
        from rollsafe.web.data import StatusData

        interval = min((s.monitor.interval for s in self.env.services.values()), default=30.0)
        metrics: Any = None
        with contextlib.suppress(RollsafeError):  # prometheus-client missing: no /metrics
            from rollsafe.monitor.metrics import MonitorMetrics

            metrics = MonitorMetrics(self.env.name, interval=max(1.0, interval))
        server = MonitorServer(self.serve, metrics)
        store = None
        if self.journal.path is not None:
            # the pages read from the server's threads: a connection of their own, closed
            # after the server (an exit stack unwinds in reverse)
            store = self._stack.enter_context(SQLiteStateStore(self.journal.path))
        self.server = server.start()
        self._stack.callback(server.close)
        if store is not None:
            reports = functools.partial(self._report, store)
            page = StatusApp(StatusData(store, self.env), reports=reports, base_url=server.url)
            page.mount(server)
            self.pages = True
        return metrics

    def _drift(self) -> DriftReport:
        """A drift run for the status page (from the monitor's own thread for it, so with
        clients of its own)."""
        from rollsafe.drift.engine import run_drift

        with _clients(self.env, self.endpoint) as (platform, _logs, secrets):
            return run_drift(self.env, secrets, platform)

    def _report(self, store: Any, episode: Episode) -> IncidentReport:
        """An incident's report for the page, built on demand as `rollsafe why` builds it."""
        from rollsafe.incidents import EvidenceCollector, build_report
        from rollsafe.incidents.window import episode_window

        now = time.time()
        with _clients(self.env, self.endpoint) as (platform, logs, secrets):
            collector = EvidenceCollector(
                self.env, state=store, platform=platform, logs=logs, secrets=secrets
            )
            evidence = collector.collect(list(episode.services), *episode_window(episode, now))
        return build_report(evidence, episode, now=now)

    def _run(self, engine: Any) -> None:
        try:
            engine.run(self._stop)
        except BaseException as exc:  # reported by the loop's waits, never a thread traceback
            self._failed = exc

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _heard(self, line: MonitorLine) -> None:
        if line.state in ("pending", "firing", "resolved", "error"):
            self.say(f"    monitor: {line.text()}")

    @property
    def failed(self) -> str | None:
        """Why the monitor's loop stopped by itself, if it did."""
        if self._failed is None:
            return None
        exc = self._failed
        return exc.message if isinstance(exc, RollsafeError) else exc.__class__.__name__


@contextlib.contextmanager
def _clients(env: ResolvedEnvironment, endpoint: str) -> Iterator[tuple[Any, Any, Any]]:
    """Cloud Run, Cloud Logging and Secret Manager of the demo's emulator."""
    from rollsafe.platforms.cloudrun import CloudRunPlatform
    from rollsafe.platforms.logs import CloudLoggingRevisionLogs
    from rollsafe.stores.secretmanager import SecretManagerStore

    with (
        CloudRunPlatform(env.gcp_project, env.region, endpoint=endpoint) as platform,
        CloudLoggingRevisionLogs(env.gcp_project, endpoint=endpoint) as logs,
        SecretManagerStore(env.gcp_project, endpoint=endpoint) as secrets,
    ):
        yield platform, logs, secrets
