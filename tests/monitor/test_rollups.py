"""Rollups: each closed minute folded once into its service's hourly and daily counts (the
recent document), closed days and old hours moved out, counted once through conflicts,
store outages and a restart; retention pruning; the engine's heartbeat, service snapshot
and drift snapshot hooks. On the in-memory store and SQLite."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollsafe.drift.model import DriftReport
from rollsafe.manifest._monitor_resolved import ResolvedRetention
from rollsafe.monitor.rollups import (
    DAY,
    HOUR,
    RollupWriter,
    daily_namespace,
    hourly_namespace,
    prune_rollups,
    read_days,
    read_hours,
    read_rollups,
    rollups_namespace,
)
from rollsafe.monitor.samples import ProbeBucket, ProbeRecorder
from rollsafe.monitor.snapshots import (
    DriftWatch,
    ServiceSnapshots,
    drift_namespace,
    services_namespace,
    write_drift_snapshot,
)
from rollsafe.platforms.base import ServiceInfo, TrafficTarget
from rollsafe.state.base import StateStore
from tests.monitor._state_outage import MemoryOutage, SQLiteOutage

ENV = "qa"
#: midnight UTC, in the epoch range the monitor sees
D0 = 1_796_515_200
assert D0 % DAY == 0


@pytest.fixture(params=["memory", "sqlite"], ids=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    made: Any = MemoryOutage() if request.param == "memory" else SQLiteOutage(tmp_path / "s.db")
    with made:
        yield made


def _probe(recorder: ProbeRecorder, service: str, start: float, seconds: int, **kw: Any) -> None:
    """One probe every 10 s for ``seconds``, flushed after each."""
    for at in range(int(start), int(start) + seconds, 10):
        ok = kw.get("ok", True)
        recorder.add(service, at, ok, 200 if ok else 503, 0.1, kw.get("revision", "web-1"))
        recorder.flush(at + 1)


def test_closed_minutes_fold_into_hours_and_days(store: StateStore) -> None:
    writer = RollupWriter(store, ENV)
    recorder = ProbeRecorder(store, ENV, rollups=writer)
    start = D0 + 10 * HOUR
    _probe(recorder, "web", start, 120)
    _probe(recorder, "web", start + 120, 60, ok=False)
    recorder.flush(start + 400)  # every minute closed and written
    rollup = read_rollups(store, ENV)["web"]
    hour = str(start)
    assert rollup.hours[hour][:2] == [18, 6]
    assert rollup.days[str(D0)][:2] == [18, 6]
    assert rollup.hours[hour][2] == pytest.approx(1.8)
    assert rollup.hours[hour][3] == pytest.approx(0.1)
    assert rollup.updated is not None
    assert rollup.updated <= start + 400
    # the minutes carry the serving revision for the page's error rate per revision
    bucket = ProbeBucket.from_json(store.kv_get("monitor/probes/qa", f"web/{start + 120}")[0])
    assert bucket.revisions == {"web-1": [6, 6]}


def test_a_failing_open_minute_is_folded_once_when_it_closes(store: StateStore) -> None:
    writer = RollupWriter(store, ENV)
    recorder = ProbeRecorder(store, ENV, rollups=writer)
    start = D0 + HOUR
    # failures: the open minute is written on every flush, folded only once it closes
    _probe(recorder, "web", start, 60, ok=False)
    recorder.flush(start + 200)
    recorder.flush(start + 300)
    assert read_rollups(store, ENV)["web"].hours[str(start)][:2] == [6, 6]


def test_a_forced_flush_folds_and_later_probes_add_only_theirs(store: StateStore) -> None:
    writer = RollupWriter(store, ENV)
    recorder = ProbeRecorder(store, ENV, rollups=writer)
    start = D0 + 2 * HOUR
    _probe(recorder, "web", start, 30)
    recorder.flush(start + 31, force=True)  # the engine's close
    assert read_rollups(store, ENV)["web"].hours[str(start)][0] == 3
    _probe(recorder, "web", start + 30, 30)
    recorder.flush(start + 200)
    assert read_rollups(store, ENV)["web"].hours[str(start)][0] == 6


def test_two_monitors_both_count(store: StateStore) -> None:
    """A restart or a leader change: two writers fold their own minutes into one document
    (compare-and-swap; the loser reads again and adds)."""
    first = RollupWriter(store, ENV)
    second = RollupWriter(store, ENV)
    start = D0 + 3 * HOUR
    first.add("web", start, 6, 0, 0.6, 0.1)
    first.flush(start + 60)
    second.add("web", start + 60, 6, 1, 0.6, 0.2)
    second.flush(start + 120)
    first.add("web", start + 120, 6, 2, 0.6, 0.3)  # first's cached version is stale now
    first.flush(start + 180)
    counts = read_rollups(store, ENV)["web"].hours[str(start)]
    assert counts[:2] == [18, 3]
    assert counts[3] == pytest.approx(0.3)


def test_an_outage_keeps_the_counts_and_writes_them_later(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RollupWriter(store, ENV)
    start = D0 + 4 * HOUR
    store.down = True
    writer.add("web", start, 6, 0, 0.6, 0.1)
    writer.flush(start + 60)
    writer.add("web", start + 60, 6, 0, 0.6, 0.1)
    writer.flush(start + 120)
    assert writer.state_error is not None
    assert writer.pending == 1
    assert len([r for r in caplog.records if "rollups not saved" in r.message]) == 1
    store.down = False
    writer.flush(start + 180)
    assert writer.state_error is None
    assert read_rollups(store, ENV)["web"].hours[str(start)][0] == 12


def test_closed_days_and_old_hours_move_out_of_the_recent_document(store: StateStore) -> None:
    writer = RollupWriter(store, ENV)
    # one minute an hour for 40 hours: the recent document keeps a day and a bit
    for hour in range(40):
        at = D0 + hour * HOUR
        writer.add("web", at, 6, 1 if hour == 0 else 0, 0.6, 0.1)
        writer.flush(at + 60)
    rollup = read_rollups(store, ENV)["web"]
    newest = D0 + 39 * HOUR
    assert all(newest - int(h) <= 30 * HOUR for h in rollup.hours)
    assert list(rollup.days) == [str(D0 + DAY)]  # today only
    assert rollup.archived_day == D0
    moved = read_days(store, ENV)["web"]
    assert moved == {D0: (144, 1, pytest.approx(14.4), 0.1)}
    hours = read_hours(store, ENV, "web")
    assert sorted(hours) == [D0 + h * HOUR for h in range(40)]  # nothing lost in the moves
    assert hours[D0][1] == 1


def test_a_late_minute_adds_to_its_moved_day(store: StateStore) -> None:
    writer = RollupWriter(store, ENV)
    writer.add("web", D0 + 100, 6, 0, 0.6, 0.1)
    writer.flush(D0 + 200)
    writer.add("web", D0 + DAY + 100, 6, 0, 0.6, 0.1)
    writer.flush(D0 + DAY + 200)  # the first day moves
    writer.add("web", D0 + 300, 6, 6, 0.6, 0.1)  # a minute of it, late (a restart's flush)
    writer.flush(D0 + DAY + 400)
    assert read_days(store, ENV)["web"][D0][:2] == (12, 6)


@pytest.mark.parametrize(
    ("retention", "days_left", "hours_left"),
    [
        pytest.param(ResolvedRetention(), 2, 48, id="defaults-keep-all"),
        pytest.param(
            ResolvedRetention(raw=DAY, hourly=DAY, daily=DAY), 1, 24, id="one-day-everything"
        ),
    ],
)
def test_prune_follows_the_retention(
    store: StateStore, retention: ResolvedRetention, days_left: int, hours_left: int
) -> None:
    writer = RollupWriter(store, ENV)
    for hour in range(48):
        writer.add("web", D0 + hour * HOUR, 6, 0, 0.6, 0.1)
        writer.flush(D0 + hour * HOUR + 60)
    now = D0 + 48 * HOUR
    prune_rollups(store, ENV, now, retention_of=lambda _s: retention)
    days = set(read_days(store, ENV).get("web", {})) | {
        int(d) for d in read_rollups(store, ENV)["web"].days
    }
    assert len(days) == days_left
    assert len(read_hours(store, ENV, "web")) == hours_left


def test_prune_deletes_a_gone_service_s_documents(store: StateStore) -> None:
    writer = RollupWriter(store, ENV)
    writer.add("gone", D0, 6, 0, 0.6, 0.1)
    writer.flush(D0 + 60)
    writer.add("gone", D0 + 2 * DAY, 6, 0, 0.6, 0.1)
    writer.flush(D0 + 2 * DAY + 60)
    assert prune_rollups(store, ENV, D0 + 200 * DAY) >= 2
    for ns in (rollups_namespace(ENV), daily_namespace(ENV), hourly_namespace(ENV)):
        assert store.kv_list(ns) == {}


def test_a_service_snapshot_is_written_when_it_changes(store: StateStore) -> None:
    clock = iter(range(100, 200)).__next__
    snapshots = ServiceSnapshots(store, ENV, clock=lambda: float(clock()))
    info = ServiceInfo(
        "web",
        "http://127.0.0.1:9/web",
        (TrafficTarget("web-1", 90), TrafficTarget("web-2", 10, tag="canary")),
        latest_ready_revision="web-2",
    )
    assert snapshots.observe("web", info)
    assert not snapshots.observe("web", info)
    raw, version = store.kv_get(services_namespace(ENV), "web")  # type: ignore[misc]
    assert version == 1
    assert raw["traffic"] == [
        {"revision": "web-1", "percent": 90, "tag": None},
        {"revision": "web-2", "percent": 10, "tag": "canary"},
    ]
    assert raw["latest_ready"] == "web-2"
    moved = ServiceInfo("web", info.url, (TrafficTarget("web-2", 100),), "web-2")
    assert snapshots.observe("web", moved)
    assert store.kv_get(services_namespace(ENV), "web")[1] == 2  # type: ignore[index]


def _report(services: tuple[str, ...] = ("web", "api")) -> DriftReport:
    return DriftReport(
        env=ENV, project="p", region="r", platform="local", strict=False, services=list(services)
    )


def test_a_drift_snapshot_names_every_compared_service(store: StateStore) -> None:
    assert write_drift_snapshot(store, _report(), at=123.0) == 2
    assert store.kv_get(drift_namespace(ENV), "api") == ({"at": 123.0, "findings": []}, 1)


def test_the_drift_watch_runs_off_the_loop_and_survives_failures(
    store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    from rollsafe.drift.model import DriftUnavailableError

    calls: list[int] = []
    ran = threading.Event()

    def run() -> DriftReport:
        calls.append(1)
        if len(calls) == 1:
            raise DriftUnavailableError("the platform cannot be read")
        ran.set()
        return _report(("web",))

    watch = DriftWatch(store, run, every=0.01, clock=lambda: 42.0)
    watch.start()
    try:
        assert ran.wait(10)
    finally:
        watch.close()
    assert watch.runs >= 1
    assert store.kv_get(drift_namespace(ENV), "web")[0] == {"at": 42.0, "findings": []}  # type: ignore[index]
    assert any("drift snapshot not taken" in r.message for r in caplog.records)


@pytest.mark.parametrize("exists", [True, False], ids=["store-exists", "no-store-yet"])
def test_rollsafe_drift_keeps_its_findings_for_the_status_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exists: bool
) -> None:
    """``rollsafe drift``'s hook: the findings go to an existing state store; none is
    created for them."""
    from rollsafe.cli._drift import _keep_for_status_page
    from rollsafe.manifest import load_manifest
    from rollsafe.state.sqlite import SQLiteStateStore

    manifest = tmp_path / "rollsafe.yaml"
    manifest.write_text(
        "version: 1\nproject: p\nenvironments: {qa: {platform: local}}\n"
        "services: {web: {command: [python]}}\n"
    )
    path = tmp_path / "state.sqlite3"
    monkeypatch.setenv("ROLLSAFE_STATE", f"sqlite:{path}")
    if exists:
        SQLiteStateStore(path).close()
    _keep_for_status_page(load_manifest(manifest).resolve(ENV), _report(("web",)))
    if not exists:
        assert not path.exists()
        return
    with SQLiteStateStore(path) as state:
        found = state.kv_get(drift_namespace(ENV), "web")
    assert found is not None
    assert found[0]["findings"] == []
