"""StatusData: the status page's read model over a real state store (in memory and
SQLite), filled by the monitor's own hooks (ProbeRecorder with its RollupWriter, alert
states, alert history, service snapshots, the heartbeat) and the journal; the state
mapping, uptime windows, staleness, the indicator, incidents, retention, and a store
filled by ``fill_synthetic``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollsafe.drift.model import DriftReport
from rollsafe.manifest import ResolvedEnvironment, load_manifest
from rollsafe.monitor.alerts import AlertState
from rollsafe.monitor.alerts import namespace as alerts_namespace
from rollsafe.monitor.history import AlertRecord, history_namespace
from rollsafe.monitor.rollups import DAY, HOUR, RollupWriter
from rollsafe.monitor.samples import ProbeRecorder
from rollsafe.monitor.snapshots import ServiceSnapshots, write_drift_snapshot, write_heartbeat
from rollsafe.platforms.base import ServiceInfo, TrafficTarget
from rollsafe.state.base import StateStore
from rollsafe.state.memory import MemoryStateStore
from rollsafe.state.records import DeployRecord
from rollsafe.state.sqlite import SQLiteStateStore
from rollsafe.web import ServiceState, StatusData
from rollsafe.web._synthetic import fill_synthetic, synthetic_names
from rollsafe.web.data import alert_state, indicator_of

ENV = "qa"
#: midnight UTC; "now" in these tests is noon of that day
D0 = 1_796_515_200
NOW = float(D0 + 12 * HOUR)

MANIFEST = """
version: 1
project: shop
environments: {qa: {platform: local}}
services:
  web:
    command: [python]
    monitor: {interval: 10s}
  api:
    command: [python]
  jobs:
    command: [python]
    monitor: {retention: {raw: 1d, hourly: 7d, daily: 30d}}
"""


@pytest.fixture(params=["memory", "sqlite"], ids=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    made: StateStore = (
        MemoryStateStore() if request.param == "memory" else SQLiteStateStore(tmp_path / "s.db")
    )
    with made:
        yield made


@pytest.fixture
def env(tmp_path: Path) -> ResolvedEnvironment:
    path = tmp_path / "rollsafe.yaml"
    path.write_text(MANIFEST)
    return load_manifest(path).resolve(ENV)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _probes(
    store: StateStore, service: str, start: float, seconds: int, *, every: int = 10, **kw: Any
) -> None:
    """Probes through the monitor's recorder and rollups, as the engine makes them."""
    writer = RollupWriter(store, ENV)
    recorder = ProbeRecorder(store, ENV, rollups=writer)
    ok = kw.get("ok", True)
    for at in range(int(start), int(start) + seconds, every):
        recorder.add(service, at, ok, 200 if ok else 503, kw.get("latency", 0.1), kw.get("rev"))
        recorder.flush(at + 1)
    recorder.flush(start + seconds + 120)


def _alert(store: StateStore, service: str, alertname: str, status: str, **kw: Any) -> None:
    state = AlertState(
        service,
        alertname,
        status=status,
        since=NOW - 300,
        fired_at=NOW - 200 if status == "firing" else None,
        severity=kw.get("severity", "critical"),
        summary=f"{alertname} of {service}",
    )
    store.kv_put(alerts_namespace(ENV), state.key, state.to_json())


def _record(**kw: Any) -> DeployRecord:
    fields: dict[str, Any] = {
        "id": "d-1",
        "env": ENV,
        "service": "web",
        "user": "ana",
        "host": "box",
        "pid": 1,
        "checks": "passed",
        "stage": "done",
        "started": NOW - 3 * HOUR,
        "revision": "web-2",
        "outcome": "succeeded",
        "finished": NOW - 3 * HOUR + 30,
    }
    fields.update(kw)
    return DeployRecord(**fields)


# -- the mappings -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("alertname", "severity", "status", "expected"),
    [
        pytest.param("ServiceDown", "critical", "firing", "major_outage", id="down"),
        pytest.param("RevisionNotReady", "critical", "firing", "major_outage", id="not-ready"),
        pytest.param("InstancesRestarting", "critical", "firing", "major_outage", id="restarts"),
        pytest.param(
            "InstancesRestarting", "warning", "firing", "degraded_performance", id="restarts-warn"
        ),
        pytest.param("High5xxRate", "critical", "firing", "partial_outage", id="5xx"),
        pytest.param("jwt", "warning", "firing", "degraded_performance", id="log-alert"),
        pytest.param("NewErrorTemplate", "info", "firing", "operational", id="info"),
        pytest.param("ServiceDown", "critical", "pending", "degraded_performance", id="pending"),
        pytest.param("jwt", "warning", "pending", "operational", id="pending-warning"),
    ],
)
def test_the_state_mapping(alertname: str, severity: str, status: str, expected: str) -> None:
    assert alert_state(alertname, severity, status).value == expected


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        pytest.param([], ("none", "All Systems Operational"), id="empty"),
        pytest.param(["operational"], ("none", "All Systems Operational"), id="ok"),
        pytest.param(
            ["operational", "degraded_performance"], ("minor", "Minor Service Outage"), id="minor"
        ),
        pytest.param(["partial_outage"], ("major", "Partial System Outage"), id="major"),
        pytest.param(
            ["partial_outage", "major_outage"], ("critical", "Major System Outage"), id="critical"
        ),
    ],
)
def test_the_indicator(states: list[str], expected: tuple[str, str]) -> None:
    assert indicator_of(ServiceState(s) for s in states) == expected


# -- the overview -------------------------------------------------------------------------
def test_an_empty_store_lists_every_service_operational_without_data(
    store: StateStore, env: ResolvedEnvironment
) -> None:
    data = StatusData(store, env, clock=Clock())
    rows = data.services()
    assert [r.name for r in rows] == ["web", "api", "jobs"]  # manifest order
    assert {r.state for r in rows} == {ServiceState.OPERATIONAL}
    assert rows[0].uptime == {"24h": None, "7d": None, "30d": None, "90d": None}
    assert len(rows[0].days) == 90
    assert rows[0].days[-1].start == D0
    assert len(rows[0].latency) == 24
    assert rows[0].latency[-1].start == NOW
    assert rows[0].last_deploy is None
    assert rows[0].updated is None
    assert data.indicator() == ("none", "All Systems Operational")
    assert data.staleness().stale
    assert data.staleness().last_write is None
    assert data.interval == 10.0
    assert data.env_name == ENV
    assert data.service("nope") is None


def test_the_monitor_s_hooks_make_the_rows(store: StateStore, env: ResolvedEnvironment) -> None:
    clock = Clock()
    _probes(store, "web", NOW - 2 * HOUR, 3600, rev="web-2")  # an hour, all passing
    _probes(store, "web", NOW - 600, 60, ok=False, rev="web-2")  # a failing minute
    _alert(store, "web", "ServiceDown", "firing")
    _alert(store, "api", "High5xxRate", "firing")
    _alert(store, "jobs", "ServiceDown", "pending")
    ServiceSnapshots(store, ENV, clock=clock).observe(
        "web",
        ServiceInfo("web", "http://127.0.0.1:9/", (TrafficTarget("web-2", 100, tag="cur"),)),
    )
    store.save_record(_record())
    store.save_record(_record(id="d-0", started=NOW - 9 * HOUR, finished=NOW - 9 * HOUR + 9))
    store.save_record(_record(id="d-dry", started=NOW - HOUR, outcome="dry-run"))
    write_heartbeat(store, ENV, NOW - 5, 10.0, "test")
    data = StatusData(store, env, clock=clock)
    web, api, jobs = data.services()
    assert (web.state, api.state, jobs.state) == (
        ServiceState.MAJOR_OUTAGE,
        ServiceState.PARTIAL_OUTAGE,
        ServiceState.DEGRADED_PERFORMANCE,
    )
    assert web.uptime["24h"] == pytest.approx(360 / 366)
    assert web.uptime["90d"] == pytest.approx(360 / 366)
    hour_point = web.latency[-3]  # NOW - 2h
    assert (hour_point.start, hour_point.total) == (NOW - 2 * HOUR, 360)
    assert hour_point.latency == pytest.approx(0.1)
    assert web.days[-1].state is ServiceState.MAJOR_OUTAGE
    assert web.traffic == ({"revision": "web-2", "percent": 100, "tag": "cur"},)
    assert web.last_deploy is not None
    assert (web.last_deploy["id"], web.last_deploy["user"], web.last_deploy["checks"]) == (
        "d-1",
        "ana",
        "passed",
    )
    assert [a["alertname"] for a in web.alerts] == ["ServiceDown"]
    assert set(web.alerts[0]) == {"alertname", "severity", "status", "since", "summary"}
    assert web.updated is not None
    assert web.updated <= NOW
    assert data.indicator() == ("critical", "Major System Outage")
    assert not data.staleness().stale
    # the JSON shapes hold
    assert web.to_dict()["state"] == "major_outage"


def test_uptime_windows_and_the_day_bar(store: StateStore, env: ResolvedEnvironment) -> None:
    writer = RollupWriter(store, ENV)
    # today 100 probes all good; 3 days ago 100 with 50 failed; 20 days ago 100 with 100
    # failed; 60 days ago 100 good
    for back, failed in ((60, 0), (20, 100), (3, 50), (0, 0)):
        start = D0 - back * DAY + HOUR
        writer.add("api", start, 100, failed, 10.0, 0.2)
        writer.flush(NOW)
    row = StatusData(store, env, clock=Clock()).services()[1]
    assert row.uptime["7d"] == pytest.approx(150 / 200)
    assert row.uptime["30d"] == pytest.approx(150 / 300)
    assert row.uptime["90d"] == pytest.approx(250 / 400)
    assert row.uptime["24h"] == pytest.approx(1.0)
    by_start = {d.start: d for d in row.days}
    assert by_start[D0 - 3 * DAY].uptime == pytest.approx(0.5)
    # no alert that day: probes passing less than 95 % make it degraded
    assert by_start[D0 - 3 * DAY].state is ServiceState.DEGRADED_PERFORMANCE
    assert by_start[D0 - 60 * DAY].state is ServiceState.OPERATIONAL
    assert by_start[D0 - 5 * DAY].uptime is None


def test_a_past_alert_colours_its_days(store: StateStore, env: ResolvedEnvironment) -> None:
    record = AlertRecord(
        service="web",
        alertname="ServiceDown",
        severity="critical",
        summary="down",
        description="",
        revision="web-1",
        evidence=(),
        starts_at=D0 - 2 * DAY + 100,
        fired_at=D0 - 2 * DAY + 200,
        ends_at=D0 - DAY + 100,
        action=None,
    )
    store.kv_put(history_namespace(ENV), record.key, record.to_json())
    days = {d.start: d.state for d in StatusData(store, env, clock=Clock()).services()[0].days}
    assert days[D0 - 2 * DAY] is ServiceState.MAJOR_OUTAGE
    assert days[D0 - DAY] is ServiceState.MAJOR_OUTAGE
    assert days[D0] is ServiceState.OPERATIONAL


@pytest.mark.parametrize(
    ("beat_age", "stale"),
    [
        pytest.param(5.0, False, id="fresh"),
        pytest.param(29.0, False, id="under-3-intervals"),
        pytest.param(31.0, True, id="over-3-intervals"),
    ],
)
def test_staleness(
    store: StateStore, env: ResolvedEnvironment, beat_age: float, stale: bool
) -> None:
    write_heartbeat(store, ENV, NOW - beat_age, 10.0, "test")
    found = StatusData(store, env, clock=Clock()).staleness()
    assert (found.stale, found.last_write, found.interval) == (stale, NOW - beat_age, 10.0)


def test_generation_moves_only_when_something_changed(
    store: StateStore, env: ResolvedEnvironment
) -> None:
    clock = Clock()
    write_heartbeat(store, ENV, NOW, 10.0, "test")
    data = StatusData(store, env, clock=clock)
    first = data.generation
    data.refresh()
    assert data.generation == first
    # the monitor folds a minute, then beats
    _probes(store, "web", NOW - 300, 60)
    write_heartbeat(store, ENV, NOW + 1, 10.0, "test")
    clock.now = NOW + 1
    data.refresh()
    assert data.generation == first + 1
    assert data.services()[0].uptime["24h"] == 1.0
    # a deploy shows without a heartbeat (the journal is read on every refresh)
    store.save_record(_record(started=NOW, finished=NOW + 1))
    data.refresh()
    assert data.generation == first + 2
    # no monitor for a while: stale, which the pages show
    clock.now = NOW + 100
    data.refresh()
    assert data.staleness().stale
    assert data.generation == first + 3


# -- a service's page ---------------------------------------------------------------------
def test_the_service_page(store: StateStore, env: ResolvedEnvironment) -> None:
    _probes(store, "web", NOW - 1800, 600, rev="web-1")
    _probes(store, "web", NOW - 900, 300, ok=False, rev="web-2")
    store.save_record(_record(id="d-2", started=NOW - 1000, outcome="succeeded"))
    store.save_record(
        _record(id="d-3", checks="rollback", started=NOW - 600, outcome="succeeded", user="mon")
    )
    store.save_record(_record(id="d-old", started=NOW - 40 * DAY, finished=NOW - 40 * DAY))
    report = DriftReport(
        env=ENV, project="p", region="r", platform="local", strict=False, services=["web"]
    )
    write_drift_snapshot(store, report, at=NOW - 60)
    data = StatusData(store, env, clock=Clock())
    detail = data.service("web")
    assert detail is not None
    assert [len(detail.charts[k]) for k in ("24h", "7d", "30d")] == [288, 168, 120]
    assert detail.charts["24h"][-1].start == NOW
    failing = [p for p in detail.charts["24h"] if p.error_rate]
    assert failing
    assert all(p.error_rate == 1.0 for p in failing)
    assert sum(p.total for p in detail.charts["7d"]) == 90
    assert sum(p.total for p in detail.charts["30d"]) == 90
    assert [(m.kind, m.deploy_id) for m in detail.markers] == [
        ("deploy", "d-2"),
        ("rollback", "d-3"),
    ]
    assert detail.revisions == {
        "web-1": {"total": 60, "failed": 0, "error_rate": 0.0},
        "web-2": {"total": 30, "failed": 30, "error_rate": 1.0},
    }
    assert [j["id"] for j in detail.journal] == ["d-3", "d-2", "d-old"]
    assert (detail.drift, detail.drift_at) == ((), NOW - 60)
    assert data.service("web") is detail  # cached until the data changes
    assert detail.to_dict()["drift"] == {"at": NOW - 60, "findings": []}


def test_incidents_come_from_alert_history_and_journal(
    store: StateStore, env: ResolvedEnvironment
) -> None:
    record = AlertRecord(
        service="web",
        alertname="ServiceDown",
        severity="critical",
        summary="down",
        description="",
        revision="web-2",
        evidence=(),
        starts_at=NOW - 3000,
        fired_at=NOW - 2900,
        ends_at=NOW - 2000,
        action="rolled back",
    )
    store.kv_put(history_namespace(ENV), record.key, record.to_json())
    store.save_record(
        _record(id="d-9", service="api", started=NOW - 7200, finished=NOW - 7000, outcome="failed")
    )
    data = StatusData(store, env, clock=Clock())
    found = data.incidents()
    assert [(e.services, e.kinds) for e in found] == [
        (("web",), ("alert",)),
        (("api",), ("deploy",)),
    ]
    detail = data.service("web")
    assert detail is not None
    assert [i["id"] for i in detail.incidents] == [found[0].id]


# -- retention through the engine ---------------------------------------------------------
def test_the_engine_prunes_by_retention_and_beats(
    store: StateStore, env: ResolvedEnvironment
) -> None:
    from rollsafe.monitor.engine import MonitorEngine
    from rollsafe.monitor.samples import probes_namespace

    clock = Clock()
    # jobs keeps raw buckets 1 day, history 30 days; web the defaults (2 d, 90 d)
    # (buckets are pruned in whole blocks of about a day below the cutoff)
    _probes(store, "web", NOW - 30 * HOUR, 60)
    _probes(store, "jobs", NOW - 60 * HOUR, 60)
    old = AlertRecord(
        "jobs",
        "X",
        "warning",
        "",
        "",
        None,
        (),
        NOW - 50 * DAY,
        NOW - 50 * DAY,
        NOW - 49 * DAY,
        None,
    )
    store.kv_put(history_namespace(ENV), old.key, old.to_json())
    # nothing listens on port 1: each probe fails at once
    targets = {name: "http://127.0.0.1:1/" for name in ("web", "jobs")}
    engine = MonitorEngine(env, store=store, targets=targets, clock=clock)
    try:
        engine.run_once()
    finally:
        engine.close(flush=0.1)
    left = sorted(store.kv_list(probes_namespace(ENV)))
    assert any(k.startswith("web/") and int(k.split("/")[1]) < NOW - DAY for k in left)
    assert not any(k.startswith("jobs/") and int(k.split("/")[1]) < NOW - DAY for k in left)
    # history past the longest `daily` (web: 90 d) stays; the heartbeat is written
    assert store.kv_list(history_namespace(ENV))
    beat = store.kv_get("monitor/heartbeat/qa", "monitor")
    assert beat is not None
    assert beat[0]["at"] == NOW
    assert beat[0]["interval"] == 10.0


# -- synthetic data -----------------------------------------------------------------------
def test_fill_synthetic_makes_a_status_page(store: StateStore, tmp_path: Path) -> None:
    names = synthetic_names(4)
    text = "version: 1\nproject: p\nenvironments: {qa: {platform: local}}\nservices:\n" + "".join(
        f"  {n}: {{command: [python]}}\n" for n in names
    )
    (tmp_path / "m.yaml").write_text(text)
    env = load_manifest(tmp_path / "m.yaml").resolve(ENV)
    assert (
        fill_synthetic(store, ENV, 4, 40, NOW, down=[names[0]], degraded=[names[1]], raw_hours=2)
        == names
    )
    data = StatusData(store, env, clock=Clock(NOW + 1))
    rows = data.services()
    assert [r.state for r in rows[:3]] == [
        ServiceState.MAJOR_OUTAGE,
        ServiceState.PARTIAL_OUTAGE,
        ServiceState.OPERATIONAL,
    ]
    assert all(r.uptime["30d"] is not None and r.uptime["90d"] is not None for r in rows)
    assert sum(d.uptime is not None for d in rows[2].days) == 40
    assert data.indicator()[0] == "critical"
    assert not data.staleness().stale
    detail = data.service(names[2])
    assert detail is not None
    assert detail.markers
    assert detail.revisions
    assert len(data.incidents()) == 2
