"""AlertHistory: every announced alert kept from firing to resolve (with the monitor's
action), read back by window and service, pruned after 90 days; on the in-memory store and
SQLite. And once through the real MonitorEngine: a firing then resolved ServiceDown is in
the history with its end, and the probe buckets count the failures."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rollsafe.manifest import ResolvedEnvironment
from rollsafe.manifest._monitor_resolved import ResolvedMonitor
from rollsafe.monitor import (
    AlertHistory,
    AlertRecord,
    MonitorEngine,
    ProbeRecorder,
    history_namespace,
    probes_namespace,
    read_alert_history,
    read_probe_buckets,
)
from rollsafe.monitor.engine import PRUNE_BATCH
from rollsafe.monitor.model import AlertEvent, EventKind
from rollsafe.state.base import StateStore
from rollsafe.state.memory import MemoryStateStore
from tests.monitor._health_service import HealthService
from tests.monitor._state_outage import MemoryOutage, SQLiteOutage

ENV = "qa"
DOWN = "ServiceDown"
DAY = 86400.0


@pytest.fixture(params=["memory", "sqlite"], ids=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    made: Any = MemoryOutage() if request.param == "memory" else SQLiteOutage(tmp_path / "s.db")
    with made:
        yield made


def _event(
    kind: EventKind = EventKind.FIRING,
    *,
    service: str = "web",
    alertname: str = DOWN,
    starts_at: float = 1_000.0,
    ends_at: float | None = None,
    action: str | None = None,
) -> AlertEvent:
    return AlertEvent(
        kind=kind,
        env=ENV,
        service=service,
        alertname=alertname,
        severity="critical",
        summary=f"{service} fails its health probe: expected HTTP 200",
        description=f"The health probe of {service} got HTTP 503.",
        starts_at=starts_at,
        ends_at=ends_at,
        revision=f"{service}-00002-abc",
        evidence=(f"monitor:{alertname}/{service}/{starts_at:.0f}",),
        action=action,
    )


def _resolved(event: AlertEvent, ends_at: float, action: str | None = None) -> AlertEvent:
    return replace(event, kind=EventKind.RESOLVED, ends_at=ends_at, action=action)


def _all(store: StateStore) -> list[AlertRecord]:
    return read_alert_history(store, ENV, since=0.0, until=1e12)


def test_a_firing_then_resolved_alert_is_one_record(store: StateStore) -> None:
    history = AlertHistory(store, ENV, clock=lambda: 5_000.0)
    fired = _event(starts_at=1_000.0)
    history.record([fired], fired_at={f"web/{DOWN}": 1_003.0})
    (open_,) = _all(store)
    assert open_.ends_at is None
    assert open_.fired_at == 1_003.0
    history.record([_resolved(fired, 1_090.0)])
    (record,) = _all(store)
    assert record == replace(open_, ends_at=1_090.0)
    assert record.revision == "web-00002-abc"
    assert record.evidence == (f"monitor:{DOWN}/web/1000",)
    assert record.summary.startswith("web fails")
    assert record.key == f"web/{DOWN}/1000.000"
    assert store.kv_get(history_namespace(ENV), record.key) is not None


@pytest.mark.parametrize(
    ("on_firing", "on_resolved", "kept"),
    [
        pytest.param("rolled back to web-00001", None, "rolled back to web-00001", id="firing"),
        pytest.param(None, "rolled back to web-00001", "rolled back to web-00001", id="resolved"),
        pytest.param(None, None, None, id="none"),
    ],
)
def test_the_monitors_action_is_kept(
    store: StateStore, on_firing: str | None, on_resolved: str | None, kept: str | None
) -> None:
    history = AlertHistory(store, ENV)
    fired = _event(action=on_firing)
    history.record([fired])
    history.record([_resolved(fired, 1_100.0, on_resolved)])
    (record,) = _all(store)
    assert record.action == kept
    assert record.ends_at == 1_100.0


def test_reminders_and_empty_passes_write_nothing(store: StateStore) -> None:
    history = AlertHistory(store, ENV)
    fired = _event()
    history.record([fired])
    before = store.kv_get(history_namespace(ENV), f"web/{DOWN}/1000.000")
    reminder = replace(fired, kind=EventKind.REMINDER, ends_at=4_600.0)
    for _ in range(3):
        history.record([reminder])
        history.record([])
    assert store.kv_get(history_namespace(ENV), f"web/{DOWN}/1000.000") == before


def test_a_restarted_monitor_resolves_what_the_last_one_recorded(store: StateStore) -> None:
    fired = _event(action="rolled back")
    AlertHistory(store, ENV).record([fired], fired_at={f"web/{DOWN}": 1_002.0})
    AlertHistory(store, ENV).record([_resolved(fired, 1_200.0)])
    (record,) = _all(store)
    assert (record.fired_at, record.ends_at, record.action) == (1_002.0, 1_200.0, "rolled back")


def test_a_resolve_with_nothing_recorded_is_recorded_all_the_same(store: StateStore) -> None:
    AlertHistory(store, ENV).record([_resolved(_event(), 1_300.0)])
    (record,) = _all(store)
    assert (record.starts_at, record.fired_at, record.ends_at) == (1_000.0, 1_000.0, 1_300.0)


def test_each_firing_of_an_alert_is_its_own_record(store: StateStore) -> None:
    history = AlertHistory(store, ENV)
    first, second = _event(starts_at=1_000.0), _event(starts_at=2_000.0)
    history.record([first])
    history.record([_resolved(first, 1_500.0)])
    history.record([second])
    assert [(r.starts_at, r.ends_at) for r in _all(store)] == [(1_000.0, 1_500.0), (2_000.0, None)]


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        pytest.param(0.0, 900.0, [], id="before-all"),
        pytest.param(1_050.0, 1_060.0, ["web/ServiceDown"], id="inside-one"),
        pytest.param(1_200.0, 1_200.0, ["web/ServiceDown", "api/High5xxRate"], id="at-an-end"),
        pytest.param(1_201.0, 1_400.0, ["api/High5xxRate"], id="between"),
        pytest.param(
            0.0, 1e12, ["web/ServiceDown", "api/High5xxRate", "api/ServiceDown"], id="all"
        ),
        pytest.param(9_000.0, 9_100.0, ["api/ServiceDown"], id="still-firing"),
    ],
)
def test_read_by_window_oldest_first(
    store: StateStore, since: float, until: float, expected: list[str]
) -> None:
    history = AlertHistory(store, ENV)
    web = _event(starts_at=1_000.0)
    api = _event(service="api", alertname="High5xxRate", starts_at=1_100.0)
    api_down = _event(service="api", starts_at=1_500.0)
    history.record([web, api])
    history.record([_resolved(web, 1_200.0), _resolved(api, 1_450.0)])
    history.record([api_down])
    found = read_alert_history(store, ENV, since=since, until=until)
    assert [f"{r.service}/{r.alertname}" for r in found] == expected


def test_read_one_service_and_one_env(store: StateStore) -> None:
    AlertHistory(store, ENV).record(
        [_event(service="api"), _event(service="api-v2"), _event(service="web")]
    )
    AlertHistory(store, "prod").record([_event(service="api")])
    found = read_alert_history(store, ENV, since=0.0, until=1e12, service="api")
    assert [r.service for r in found] == ["api"]
    assert len(read_alert_history(store, "prod", since=0.0, until=1e12)) == 1


def test_records_this_version_cannot_read_are_skipped(store: StateStore) -> None:
    store.kv_put(history_namespace(ENV), "web/Odd/1.000", {"service": "web"})
    store.kv_put(history_namespace(ENV), "web/Odd/2.000", ["not", "a", "record"])
    AlertHistory(store, ENV).record([_event()])
    assert [r.alertname for r in _all(store)] == [DOWN]
    with pytest.raises(ValueError, match="not an alert record"):
        AlertRecord.from_json({"service": "web"})


def test_json_round_trip_ignores_unknown_fields() -> None:
    record = AlertRecord.of_event(_event(action="rolled back"), fired_at=1_004.0)
    raw = record.to_json()
    assert raw["evidence"] == [f"monitor:{DOWN}/web/1000"]
    assert AlertRecord.from_json({**raw, "added_later": 1}) == record


def test_prune_drops_what_ended_before_the_cutoff(store: StateStore) -> None:
    now = 1_796_500_000.0
    history = AlertHistory(store, ENV)
    old = _event(starts_at=now - 100 * DAY)
    ended_recently = _event(alertname="High5xxRate", starts_at=now - 95 * DAY)
    recent = _event(alertname="RevisionNotReady", starts_at=now - DAY)
    firing_long_ago = _event(service="api", starts_at=now - 91 * DAY)
    history.record([old, ended_recently, recent, firing_long_ago])
    history.record([_resolved(old, now - 99 * DAY), _resolved(ended_recently, now - 80 * DAY)])
    assert history.prune(now - 90 * DAY) == 2
    kept = [f"{r.service}/{r.alertname}" for r in _all(store)]
    assert kept == ["web/High5xxRate", "web/RevisionNotReady"]


def test_an_outage_is_logged_once_and_the_records_written_after(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    history = AlertHistory(store, ENV)
    fired = _event()
    store.down = True
    with caplog.at_level(logging.WARNING, logger="rollsafe.monitor"):
        history.record([fired])  # no exception: the monitor goes on
        history.record([])
        history.record([_resolved(fired, 1_100.0, "rolled back")])
        assert history.prune(0.0) == 0
    assert history.state_error is not None
    assert sum("alert history not saved" in r.message for r in caplog.records) == 1
    store.down = False
    history.record([])
    assert history.state_error is None
    (record,) = _all(store)
    assert (record.ends_at, record.action) == (1_100.0, "rolled back")


def test_a_resolve_during_an_outage_keeps_what_was_recorded(store: Any) -> None:
    fired = _event(action="rolled back")
    AlertHistory(store, ENV).record([fired], fired_at={f"web/{DOWN}": 1_002.0})
    restarted = AlertHistory(store, ENV)
    store.down = True
    restarted.record([_resolved(fired, 1_200.0)])
    store.down = False
    restarted.record([])
    (record,) = _all(store)
    assert (record.fired_at, record.ends_at, record.action) == (1_002.0, 1_200.0, "rolled back")
    assert restarted.state_error is None


# -- through the engine ---------------------------------------------------------------


@pytest.fixture
def health() -> Iterator[HealthService]:
    made = HealthService()
    try:
        yield made
    finally:
        made.close()


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


def test_the_engine_records_alerts_and_probes(
    store: StateStore, health: HealthService, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    clock = [1_800_000_000.0]
    settings = ResolvedMonitor(interval=1.0, failure_threshold=2, success_threshold=2)
    # what a monitor recorded 100 days ago goes on the first pass
    long_ago = clock[0] - 100 * DAY
    old = _event(starts_at=long_ago)
    AlertHistory(store, ENV).record([old, _resolved(old, long_ago + 60)])
    old_probes = ProbeRecorder(store, ENV)
    old_probes.add("web", long_ago, True, 200, 0.01)
    old_probes.flush(long_ago, force=True)
    engine = MonitorEngine(
        env,
        store=store,
        targets={"web": health.url},
        default_monitor=settings,
        clock=lambda: clock[0],
    )
    events: list[AlertEvent] = []
    try:
        for status, passes in ((200, 1), (503, 3), (200, 2)):
            health.status = status
            for _ in range(passes):
                events += engine.run_once().events
                clock[0] += settings.interval
    finally:
        engine.close()
    assert [e.kind for e in events] == [EventKind.FIRING, EventKind.RESOLVED]
    # probes are stamped with the wall clock (``ProbeSample.at``), alerts with the probes'
    assert read_probe_buckets(store, ENV, "web", since=long_ago - 60, until=long_ago + 60) == []
    (record,) = read_alert_history(store, ENV, since=0.0, until=1e12, service="web")
    assert record.alertname == DOWN
    assert record.starts_at == events[0].starts_at
    assert record.starts_at <= record.fired_at <= (record.ends_at or 0.0)
    assert record.ends_at == events[1].ends_at
    assert record.ends_at is not None
    assert record.evidence
    assert record.evidence[0].startswith(f"monitor:{DOWN}/web/")
    buckets = read_probe_buckets(
        store, ENV, "web", since=record.starts_at - 3600, until=record.ends_at + 3600
    )
    assert sum(b.total for b in buckets) == 6
    assert sum(b.failed for b in buckets) == 3
    statuses: dict[str, int] = {}
    for bucket in buckets:
        for code, count in bucket.statuses.items():
            statuses[code] = statuses.get(code, 0) + count
    assert statuses == {"200": 3, "503": 3}
    first = min(b.first_failed for b in buckets if b.first_failed is not None)
    assert first == record.starts_at


def test_the_engine_prunes_old_probe_buckets_a_batch_of_services_a_pass(
    health: HealthService, tmp_path: Path
) -> None:
    store = MemoryStateStore()
    now = 1_800_000_000.0
    names = [f"svc-{i:02d}" for i in range(25)]
    old = ProbeRecorder(store, ENV)
    for name in names:
        old.add(name, now - 100 * DAY, True, 200, 0.01)
    old.flush(now, force=True)
    engine = MonitorEngine(
        _env(tmp_path),
        store=store,
        targets=dict.fromkeys(names, health.url),
        default_monitor=ResolvedMonitor(interval=1.0),
        clock=lambda: now,
    )
    left = []
    try:
        for _ in range(2):
            engine.run_once()
            stored = store.kv_list(probes_namespace(ENV), "svc-").values()
            left.append(sum(raw["start"] < now - 90 * DAY for raw, _version in stored))
    finally:
        engine.close()
    assert left == [len(names) - PRUNE_BATCH, 0]
