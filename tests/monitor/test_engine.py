"""The monitor's engine on plain targets: real local HTTP services, the real AlertBook and
Notifier, the in-memory receiver twin, a stepped clock (each pass is one interval later).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rollsafe.manifest import ResolvedEnvironment
from rollsafe.manifest._monitor_resolved import ResolvedMonitor
from rollsafe.monitor import InMemoryReceiver, MonitorEngine, MonitorLine
from rollsafe.monitor.logs import ServiceLogReader
from rollsafe.monitor.model import AlertName, EventKind
from rollsafe.state.memory import MemoryStateStore
from rollsafe.state.postgresql import PostgresStateStore
from tests._postgres import PostgresCluster
from tests.deploy.conftest import ENV as ENV_SITE
from tests.deploy.conftest import SERVICE, Site
from tests.monitor._health_service import HealthService
from tests.monitor._monitor_site import monitored

ENV = "qa"
SETTINGS = ResolvedMonitor(interval=1.0, failure_threshold=3, success_threshold=2)


@pytest.fixture
def services() -> Iterator[dict[str, HealthService]]:
    made = {name: HealthService() for name in ("api", "web")}
    try:
        yield made
    finally:
        for service in made.values():
            service.close()


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _env(tmp_path: Path) -> ResolvedEnvironment:
    return ResolvedEnvironment(
        name=ENV,
        project="p",
        platform="local",
        strict=False,
        gcp_project="p",
        region="us-central1",
        store=None,
        manifest_path=tmp_path / "rollsafe.yaml",
    )


class _Run:
    """An engine on the ``services``' URLs and what it said."""

    def __init__(self, tmp_path: Path, services: dict[str, HealthService], store: Any) -> None:
        self.clock = _Clock()
        self.receiver = InMemoryReceiver()
        self.lines: list[MonitorLine] = []
        self.engine = MonitorEngine(
            _env(tmp_path),
            store=store,
            targets={name: s.url for name, s in services.items()},
            default_monitor=SETTINGS,
            receivers=[self.receiver],
            listener=self.lines.append,
            clock=self.clock,
        )

    def passes(self, count: int) -> list[Any]:
        results = []
        for _ in range(count):
            results.append(self.engine.run_once())
            self.clock.now += SETTINGS.interval
        assert self.engine._notifier is not None
        assert self.engine._notifier.flush(10.0)
        return results

    def states(self, alert: str = AlertName.SERVICE_DOWN.value) -> list[tuple[str, str]]:
        return [(line.service, line.state) for line in self.lines if line.alert == alert]


@pytest.fixture
def run(tmp_path: Path, services: dict[str, HealthService]) -> Iterator[_Run]:
    made = _Run(tmp_path, services, MemoryStateStore())
    try:
        yield made
    finally:
        made.engine.close()


def test_healthy_services_say_nothing(run: _Run) -> None:
    results = run.passes(3)
    assert all(r.healthy for r in results)
    assert run.lines == []
    assert run.receiver.events == []


def test_a_failing_service_goes_pending_fires_and_resolves_once(
    run: _Run, services: dict[str, HealthService]
) -> None:
    run.passes(1)
    services["api"].status = 503
    failing = run.passes(4)
    assert not failing[0].healthy
    assert failing[0].failing == ["api/ServiceDown"]
    assert run.states() == [("api", "pending"), ("api", "firing")]
    services["api"].status = 200
    run.passes(3)
    assert run.states()[-1] == ("api", "resolved")
    kinds = [(e.service, e.kind) for e in run.receiver.events]
    assert kinds == [("api", EventKind.FIRING), ("api", EventKind.RESOLVED)]
    firing = run.receiver.events[0]
    assert firing.labels["alertname"] == "ServiceDown"
    assert firing.labels["env"] == ENV
    assert "503" in firing.annotations["summary"] + firing.annotations["description"]
    assert firing.evidence
    assert firing.evidence[0].startswith("monitor:ServiceDown/api/")


def test_services_failing_together_are_one_notification(
    run: _Run, services: dict[str, HealthService]
) -> None:
    for service in services.values():
        service.status = 500
    run.passes(3)
    firing = [n for n in run.receiver.notifications if n.events]
    assert len(firing) == 1, "grouping: one notification per environment and pass"
    assert sorted(e.service for e in firing[0].events) == ["api", "web"]


def test_a_restarted_engine_neither_resends_nor_forgets(
    tmp_path: Path, services: dict[str, HealthService]
) -> None:
    store = MemoryStateStore()
    first = _Run(tmp_path, services, store)
    services["web"].status = 503
    try:
        first.passes(3)
    finally:
        first.engine.close()
    assert [e.kind for e in first.receiver.events] == [EventKind.FIRING]
    second = _Run(tmp_path, services, store)
    second.clock.now = first.clock.now
    try:
        second.passes(2)
        services["web"].status = 200
        second.passes(2)
    finally:
        second.engine.close()
    assert [e.kind for e in second.receiver.events] == [EventKind.RESOLVED]


def test_json_and_text_lines(run: _Run, services: dict[str, HealthService]) -> None:
    services["web"].status = 503
    run.passes(3)
    line = next(line for line in run.lines if line.state == "firing")
    data = line.to_dict()
    assert data["service"] == "web"
    assert data["alert"] == "ServiceDown"
    assert data["time"].endswith("Z")
    text = line.text()
    assert " web " in text
    assert "ServiceDown firing:" in text


def test_the_tick_is_the_shortest_interval(run: _Run) -> None:
    assert run.engine.tick == 1.0


def test_run_stops_when_told(run: _Run) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=run.engine.run, args=(stop,))
    thread.start()
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_slow_receiver_does_not_hold_up_the_passes(
    tmp_path: Path, services: dict[str, HealthService]
) -> None:
    clock = _Clock()
    slow = InMemoryReceiver("slow", delay=5.0)
    engine = MonitorEngine(
        _env(tmp_path),
        store=MemoryStateStore(),
        targets={name: s.url for name, s in services.items()},
        default_monitor=SETTINGS,
        receivers=[slow],
        clock=clock,
    )
    try:
        services["api"].status = 503
        fired = []
        for _ in range(6):
            fired += engine.run_once().events
            clock.now += SETTINGS.interval
        hits = services["api"].hits
        # the firing event is with the receiver, which sleeps: the passes went on
        assert [e.kind for e in fired] == [EventKind.FIRING]
        assert hits >= 6
        assert slow.notifications == []
        assert engine._notifier is not None
        assert engine._notifier.flush(30.0)
        assert [e.kind for e in slow.events] == [EventKind.FIRING]
    finally:
        engine.close()


def test_the_monitor_goes_on_while_the_state_store_is_down(
    tmp_path: Path,
    services: dict[str, HealthService],
    postgres_cluster: PostgresCluster,
    postgres_url: str,
    postgres_password: str,
) -> None:
    lines: list[MonitorLine] = []
    with PostgresStateStore(postgres_url, password=postgres_password) as store:
        engine = MonitorEngine(
            _env(tmp_path),
            store=store,
            targets={"api": services["api"].url},
            default_monitor=SETTINGS,
            listener=lines.append,
        )
        stop = threading.Event()
        thread = threading.Thread(target=engine.run, args=(stop,))
        thread.start()
        try:
            _until(lambda: services["api"].hits >= 1)
            postgres_cluster.stop()
            services["api"].status = 503
            seen = services["api"].hits
            _until(lambda: services["api"].hits >= seen + 3)  # the passes go on
            postgres_cluster.start()
            _until(lambda: any(line.state == "firing" for line in lines))
            services["api"].status = 200
            _until(lambda: any(line.state == "resolved" for line in lines))
        finally:
            stop.set()
            thread.join(timeout=30)
            engine.close()
    assert not thread.is_alive()
    assert postgres_password not in " ".join(line.text() for line in lines)


def _until(ready: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_down_inhibits_the_5xx_alert_which_fires_after_if_still_failing(site: Site) -> None:
    """On the emulator: the probes' own 503s land in the request logs. While ServiceDown
    fires, High5xxRate is withheld; once the service is up, the 5xx share of the window is
    still too high, and it fires then."""
    monitored(
        site,
        monitor="interval: 1s, failure_threshold: 2, success_threshold: 1, "
        "rollback_within: off, max_error_rate: 0.01, min_requests: 1, window: 60s",
    )
    flag = site.root / "broken"
    site.seed()
    assert site.deploy(extra_env={"BACKEND_FAIL_FILE": str(flag)}).exit_code == 0
    receiver = InMemoryReceiver()
    store = site.journal.store
    with ServiceLogReader(site.env.gcp_project, store=store, env=ENV_SITE, logs=site.logs) as logs:
        engine = MonitorEngine(
            site.env,
            store=store,
            journal=site.journal,
            platform=site.platform,
            tokens=site.tokens,
            logs=logs,
            receivers=[receiver],
        )
        try:
            flag.touch()
            withheld = _passes_until(
                engine,
                lambda: any(
                    a["alertname"] == "High5xxRate" and a["inhibited"]
                    for a in engine._book.active()
                ),
            )
            assert withheld
            flag.unlink()
            _passes_until(engine, lambda: _fired(receiver, "High5xxRate"))
            assert engine._notifier is not None
            assert engine._notifier.flush(10.0)
        finally:
            engine.close()
    said = [(e.alertname, e.kind) for e in receiver.events if e.service == SERVICE]
    down_resolved = said.index(("ServiceDown", EventKind.RESOLVED))
    assert said.index(("ServiceDown", EventKind.FIRING)) < down_resolved
    assert said.index(("High5xxRate", EventKind.FIRING)) > down_resolved


def _fired(receiver: InMemoryReceiver, alert: str) -> bool:
    return any(e.alertname == alert and e.kind is EventKind.FIRING for e in receiver.events)


def _passes_until(engine: MonitorEngine, done: Callable[[], bool], limit: int = 90) -> bool:
    for _ in range(limit):
        engine.run_once()
        if done():
            return True
        time.sleep(1.0)
    raise AssertionError("not within the passes allowed")
