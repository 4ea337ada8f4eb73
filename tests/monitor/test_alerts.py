"""AlertBook: thresholds, pending, firing, resolve, reminders, inhibition, and state that
survives a restart, on the in-memory store and SQLite (and one PostgreSQL case)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rollsafe.manifest._monitor_resolved import ResolvedMonitor
from rollsafe.monitor.alerts import AlertBook, is_inhibited_by_down, namespace
from rollsafe.monitor.model import AlertEvent, EventKind, Observation
from rollsafe.state.base import StateStore
from rollsafe.state.memory import MemoryStateStore
from rollsafe.state.sqlite import SQLiteStateStore
from tests._postgres import PostgresCluster

ENV = "qa"
DOWN, HIGH5XX, NOT_READY = "ServiceDown", "High5xxRate", "RevisionNotReady"


class Clock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 1.0) -> float:
        self.now += seconds
        return self.now


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    made: StateStore = (
        MemoryStateStore() if request.param == "memory" else SQLiteStateStore(tmp_path / "s.db")
    )
    with made:
        yield made


def _book(store: StateStore, clock: Clock, settings: ResolvedMonitor | None = None) -> AlertBook:
    chosen = settings or ResolvedMonitor()
    return AlertBook(store, ENV, settings=lambda _service: chosen, clock=clock)


def _obs(clock: Clock, alert: str, ok: bool, service: str = "web", **extra: object) -> Observation:
    return Observation(service=service, alertname=alert, ok=ok, at=clock.tick(), **extra)  # type: ignore[arg-type]


def _pass(book: AlertBook, clock: Clock, *checks: tuple[str, bool]) -> list[AlertEvent]:
    at = clock.tick()
    return book.observe([Observation(service="web", alertname=a, ok=ok, at=at) for a, ok in checks])


def _kinds(events: list[AlertEvent]) -> list[tuple[str, str]]:
    return [(e.alertname, e.kind.value) for e in events]


@pytest.mark.parametrize(
    ("settings", "thresholds", "fires_after", "resolves_after"),
    [
        pytest.param(ResolvedMonitor(), None, 3, 2, id="defaults-3-2"),
        pytest.param(
            ResolvedMonitor(failure_threshold=1, success_threshold=1), None, 1, 1, id="service-1-1"
        ),
        pytest.param(ResolvedMonitor(), (5, 3), 5, 3, id="observation-thresholds-win"),
    ],
)
def test_threshold_pending_firing_resolve(
    store: StateStore,
    settings: ResolvedMonitor,
    thresholds: tuple[int, int] | None,
    fires_after: int,
    resolves_after: int,
) -> None:
    clock = Clock()
    book = _book(store, clock, settings)
    for n in range(1, fires_after + 1):
        events = book.observe([_obs(clock, DOWN, False, thresholds=thresholds)])
        if n < fires_after:
            assert events == []
            assert book.active()[0]["status"] == "pending"
    assert _kinds(events) == [(DOWN, "firing")]
    assert book.active()[0]["status"] == "firing"
    for n in range(1, resolves_after + 1):
        events = book.observe([_obs(clock, DOWN, True, thresholds=thresholds)])
        if n < resolves_after:
            assert events == []
    assert _kinds(events) == [(DOWN, "resolved")]
    assert events[0].ends_at is not None
    assert book.active() == []
    assert store.kv_list(namespace(ENV)) == {}


def test_pending_that_recovers_sends_nothing(store: StateStore) -> None:
    clock = Clock()
    book = _book(store, clock)
    assert _pass(book, clock, (DOWN, False)) == []
    assert _pass(book, clock, (DOWN, False)) == []
    assert _pass(book, clock, (DOWN, True)) == []
    assert book.active() == []
    # the count starts again: two more failures are not enough
    assert _pass(book, clock, (DOWN, False)) == []
    assert _pass(book, clock, (DOWN, False)) == []
    assert _kinds(_pass(book, clock, (DOWN, False))) == [(DOWN, "firing")]


def test_a_single_pass_inside_a_firing_alert_does_not_resolve_it(store: StateStore) -> None:
    clock = Clock()
    book = _book(store, clock)
    for _ in range(3):
        _pass(book, clock, (DOWN, False))
    assert _pass(book, clock, (DOWN, True)) == []  # 1 of 2 successes
    assert _pass(book, clock, (DOWN, False)) == []  # still firing, not announced again
    assert _pass(book, clock, (DOWN, True)) == []
    assert _kinds(_pass(book, clock, (DOWN, True))) == [(DOWN, "resolved")]


def test_healthy_passes_write_nothing(store: StateStore) -> None:
    clock = Clock()
    book = _book(store, clock)
    for _ in range(5):
        assert _pass(book, clock, (DOWN, True), (HIGH5XX, True)) == []
    assert store.kv_list(namespace(ENV)) == {}


def test_events_carry_labels_annotations_and_the_announced_revision(store: StateStore) -> None:
    clock = Clock()
    book = _book(store, clock, ResolvedMonitor(failure_threshold=1, success_threshold=1))
    fired = book.observe(
        [
            _obs(
                clock,
                "jwt",
                False,
                severity="critical",
                summary="JWT secret not configured",
                description="3 lines in 5m",
                revision="web-00002-abc",
                evidence=("log://run.googleapis.com%2Fstderr/abc123",),
            )
        ]
    )
    event = fired[0]
    assert event.labels == {
        "alertname": "jwt",
        "env": ENV,
        "service": "web",
        "revision": "web-00002-abc",
        "severity": "critical",
    }
    assert event.annotations == {
        "summary": "JWT secret not configured",
        "description": "3 lines in 5m",
        "evidence": "log://run.googleapis.com%2Fstderr/abc123",
    }
    # the resolve names the revision the alert was announced with, so receivers pair them
    resolved = book.observe([_obs(clock, "jwt", True, revision="web-00003-def")])
    assert resolved[0].kind is EventKind.RESOLVED
    assert resolved[0].labels == event.labels
    assert resolved[0].fingerprint == event.fingerprint
    assert resolved[0].starts_at == event.starts_at


@pytest.mark.parametrize(
    "repeat", [pytest.param(4 * 3600.0, id="default-4h"), pytest.param(600.0, id="10m")]
)
def test_reminders_every_repeat_while_firing(store: StateStore, repeat: float) -> None:
    clock = Clock()
    book = _book(store, clock, ResolvedMonitor(failure_threshold=1, repeat=repeat))
    assert _kinds(_pass(book, clock, (DOWN, False))) == [(DOWN, "firing")]
    clock.tick(repeat - 10)
    assert _pass(book, clock, (DOWN, False)) == []
    clock.tick(10)
    reminders = _pass(book, clock, (DOWN, False))
    assert _kinds(reminders) == [(DOWN, "reminder")]
    assert _pass(book, clock, (DOWN, False)) == []  # not again at once
    clock.tick(repeat)
    second = _pass(book, clock, (DOWN, False))
    assert _kinds(second) == [(DOWN, "reminder")]
    assert second[0].event_id != reminders[0].event_id
    assert second[0].starts_at == reminders[0].starts_at


def test_reminders_come_without_observations_of_the_alert(store: StateStore) -> None:
    clock = Clock()
    book = _book(store, clock, ResolvedMonitor(failure_threshold=1, repeat=600.0))
    _pass(book, clock, (DOWN, False))
    clock.tick(601)
    assert _kinds(book.observe([])) == [(DOWN, "reminder")]


@pytest.mark.parametrize(
    ("alertname", "inhibited"),
    [
        pytest.param(HIGH5XX, True, id="5xx"),
        pytest.param("jwt", True, id="log-alert"),
        pytest.param("startup-guard", True, id="default-log-alert"),
        pytest.param(NOT_READY, False, id="revision-not-ready"),
        pytest.param("NewErrorTemplate", False, id="new-template"),
    ],
)
def test_inhibition_by_a_firing_service_down(
    store: StateStore, alertname: str, inhibited: bool
) -> None:
    assert is_inhibited_by_down(alertname) is inhibited
    clock = Clock()
    book = _book(store, clock)
    # down fires first; the other alert fires two passes later
    for _ in range(3):
        events = _pass(book, clock, (DOWN, False))
    assert _kinds(events) == [(DOWN, "firing")]
    events = []
    for _ in range(3):
        events += _pass(book, clock, (DOWN, False), (alertname, False))
    if not inhibited:
        assert _kinds(events) == [(alertname, "firing")]
        return
    assert events == []
    other = next(a for a in book.active() if a["alertname"] == alertname)
    assert other["inhibited"] is True
    assert other["notified"] is False
    # down resolves while the other still fails: it fires now, with its own start
    events = _pass(book, clock, (DOWN, True), (alertname, False))
    assert events == []
    events = _pass(book, clock, (DOWN, True), (alertname, False))
    assert _kinds(events) == [(DOWN, "resolved"), (alertname, "firing")]
    assert events[1].starts_at < events[0].ends_at  # type: ignore[operator]
    events = _pass(book, clock, (alertname, True)) + _pass(book, clock, (alertname, True))
    assert _kinds(events) == [(alertname, "resolved")]


def test_inhibition_in_the_same_pass(store: StateStore) -> None:
    clock = Clock()
    book = _book(store, clock)
    events = []
    for _ in range(3):
        events += _pass(book, clock, (HIGH5XX, False), (DOWN, False))
    assert _kinds(events) == [(DOWN, "firing")]


def test_an_inhibited_alert_that_recovers_is_never_announced(store: StateStore) -> None:
    clock = Clock()
    book = _book(store, clock)
    events = []
    for _ in range(3):
        events += _pass(book, clock, (DOWN, False), (HIGH5XX, False))
    for _ in range(2):
        events += _pass(book, clock, (DOWN, False), (HIGH5XX, True))
    for _ in range(2):
        events += _pass(book, clock, (DOWN, True), (HIGH5XX, True))
    assert _kinds(events) == [(DOWN, "firing"), (DOWN, "resolved")]


def test_inhibition_is_per_service(store: StateStore) -> None:
    clock = Clock()
    book = _book(store, clock, ResolvedMonitor(failure_threshold=1))
    at = clock.tick()
    events = book.observe(
        [
            Observation(service="web", alertname=DOWN, ok=False, at=at),
            Observation(service="api", alertname=HIGH5XX, ok=False, at=at),
        ]
    )
    assert sorted((e.service, e.alertname) for e in events) == [("api", HIGH5XX), ("web", DOWN)]


def test_an_announced_alert_keeps_its_resolve_when_inhibited_later(store: StateStore) -> None:
    clock = Clock()
    book = _book(
        store, clock, ResolvedMonitor(failure_threshold=1, success_threshold=1, repeat=600)
    )
    assert _kinds(_pass(book, clock, (HIGH5XX, False))) == [(HIGH5XX, "firing")]
    assert _kinds(_pass(book, clock, (HIGH5XX, False), (DOWN, False))) == [(DOWN, "firing")]
    clock.tick(700)
    # no reminder while withheld
    assert _kinds(_pass(book, clock, (HIGH5XX, False), (DOWN, False))) == [(DOWN, "reminder")]
    assert _kinds(_pass(book, clock, (HIGH5XX, True), (DOWN, False))) == [(HIGH5XX, "resolved")]


def test_restart_neither_sends_again_nor_forgets(store: StateStore) -> None:
    clock = Clock()
    book = _book(store, clock)
    fired = []
    for _ in range(3):
        fired += _pass(book, clock, (DOWN, False))
    assert _kinds(fired) == [(DOWN, "firing")]
    # a new monitor on the same store
    again = _book(store, clock)
    assert again.active()[0]["status"] == "firing"
    assert [e.event_id for e in again.firing_events()] == [fired[0].event_id]
    assert _pass(again, clock, (DOWN, False)) == []
    assert _pass(again, clock, (DOWN, True)) == []
    # and once more, between the two successes
    third = _book(store, clock)
    resolved = _pass(third, clock, (DOWN, True))
    assert _kinds(resolved) == [(DOWN, "resolved")]
    assert resolved[0].starts_at == fired[0].starts_at
    assert _book(store, clock).active() == []
    assert _pass(_book(store, clock), clock, (DOWN, True)) == []


def test_restart_keeps_the_reminder_schedule(store: StateStore) -> None:
    clock = Clock()
    book = _book(store, clock, ResolvedMonitor(failure_threshold=1, repeat=600))
    _pass(book, clock, (DOWN, False))
    clock.tick(300)
    assert (
        _pass(
            _book(store, clock, ResolvedMonitor(failure_threshold=1, repeat=600)),
            clock,
            (DOWN, False),
        )
        == []
    )
    clock.tick(300)
    again = _book(store, clock, ResolvedMonitor(failure_threshold=1, repeat=600))
    assert _kinds(_pass(again, clock, (DOWN, False))) == [(DOWN, "reminder")]


def test_reload_after_another_writer(store: StateStore) -> None:
    clock = Clock()
    standby = _book(store, clock, ResolvedMonitor(failure_threshold=1))
    leader = _book(store, clock, ResolvedMonitor(failure_threshold=1))
    assert _kinds(_pass(leader, clock, (DOWN, False))) == [(DOWN, "firing")]
    standby.reload()
    assert _pass(standby, clock, (DOWN, False)) == []
    assert _kinds(_pass(standby, clock, (DOWN, True), (DOWN, True))) == [(DOWN, "resolved")]


def test_active_lists_pending_and_firing(store: StateStore) -> None:
    clock = Clock()
    book = _book(store, clock)
    for _ in range(3):
        _pass(book, clock, (DOWN, False))
    _pass(book, clock, (NOT_READY, False))
    active = {a["alertname"]: a for a in book.active()}
    assert active[DOWN]["status"] == "firing"
    assert active[NOT_READY]["status"] == "pending"
    assert active[DOWN]["labels"]["service"] == "web"
    assert set(active[DOWN]) >= {"labels", "status", "since", "inhibited", "annotations"}


def test_state_on_postgresql_through_an_outage_and_a_restart(
    postgres_cluster: PostgresCluster,
    postgres_url: str,
    postgres_password: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from rollsafe.state.postgresql import PostgresStateStore

    clock = Clock()
    with PostgresStateStore(postgres_url, password=postgres_password) as pg:
        book = _book(pg, clock)
        fired = _pass(book, clock, (DOWN, False)) + _pass(book, clock, (DOWN, False))
        postgres_cluster.stop()
        try:
            # the database is gone: the event is returned all the same, the write waits
            fired += _pass(book, clock, (DOWN, False))
            assert book.state_error is not None
        finally:
            postgres_cluster.start()
        assert _kinds(fired) == [(DOWN, "firing")]
        assert _pass(book, clock, (DOWN, False)) == []
        assert book.state_error is None
        assert pg.kv_get(namespace(ENV), f"web/{DOWN}") is not None
    assert postgres_password not in caplog.text
    with PostgresStateStore(postgres_url, password=postgres_password) as pg:
        again = _book(pg, clock)
        events = _pass(again, clock, (DOWN, True)) + _pass(again, clock, (DOWN, True))
        assert _kinds(events) == [(DOWN, "resolved")]
        assert pg.kv_list(namespace(ENV)) == {}


def test_a_firing_alert_that_keeps_failing_writes_nothing_per_pass(store: StateStore) -> None:
    clock = Clock()
    book = _book(store, clock)
    for _ in range(3):
        _pass(book, clock, (DOWN, False))
    version = store.kv_get(namespace(ENV), f"web/{DOWN}")
    for _ in range(10):
        assert _pass(book, clock, (DOWN, False)) == []
    assert store.kv_get(namespace(ENV), f"web/{DOWN}") == version


def test_a_service_gone_from_the_manifest_still_resolves(store: StateStore) -> None:
    clock = Clock()
    known = {"web": ResolvedMonitor(failure_threshold=1)}
    book = AlertBook(store, ENV, settings=lambda service: known[service], clock=clock)
    assert _kinds(_pass(book, clock, (DOWN, False))) == [(DOWN, "firing")]
    known.clear()
    assert _kinds(_pass(book, clock, (DOWN, True), (DOWN, True))) == [(DOWN, "resolved")]
