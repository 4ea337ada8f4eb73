"""Notifier: grouping, sending off the caller's thread, retries, a failing receiver
reported (and through the others), deduplication across restarts, Alertmanager re-sends.

Receivers are real local HTTP servers (tests/monitor/_receivers.py) and the in-memory
twin; no timing thresholds, only "before".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rollsafe.manifest._monitor_resolved import ResolvedMonitor
from rollsafe.monitor.alerts import AlertBook
from rollsafe.monitor.model import AlertEvent, EventKind, Observation
from rollsafe.monitor.notify import Notifier, outbox_namespace, sent_namespace
from rollsafe.monitor.receivers import (
    AlertmanagerReceiver,
    InMemoryReceiver,
    ReceiverError,
    WebhookReceiver,
)
from rollsafe.state.base import StateStore
from rollsafe.state.memory import MemoryStateStore
from rollsafe.state.sqlite import SQLiteStateStore
from tests.monitor._receivers import RecordingServer, ServerPool

ENV = "qa"
Servers = Callable[..., RecordingServer]


@pytest.fixture
def servers() -> Iterator[Servers]:
    """``servers(**options)``: a recording HTTP server on 127.0.0.1, closed after the test."""
    with ServerPool() as pool:
        yield pool.start


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    made: StateStore = (
        MemoryStateStore() if request.param == "memory" else SQLiteStateStore(tmp_path / "s.db")
    )
    with made:
        yield made


def _event(
    service: str = "web", kind: EventKind = EventKind.FIRING, start: float = 1000.0
) -> AlertEvent:
    return AlertEvent(
        kind=kind,
        env=ENV,
        service=service,
        alertname="ServiceDown",
        severity="critical",
        summary=f"{service} answers 503",
        description="3 probes failed",
        starts_at=start,
        ends_at=start + 60 if kind is EventKind.RESOLVED else None,
        revision=f"{service}-00001-abc",
        evidence=(f"monitor:ServiceDown/{service}",),
    )


def _notifier(
    receivers: list, store: StateStore, reports: list[str] | None = None, **options: object
) -> Notifier:
    return Notifier(
        receivers,
        store,
        ENV,
        on_report=(reports if reports is not None else []).append,
        sleep=options.pop("sleep", lambda _s: None),  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


def test_ten_services_failing_at_once_make_one_notification(
    store: StateStore, servers: Servers
) -> None:
    hook = servers()
    memory = InMemoryReceiver()
    events = [_event(f"svc{i}") for i in range(10)]
    with _notifier([WebhookReceiver("webhook", hook.url + "/hook"), memory], store) as notifier:
        notifier.submit(events)
        assert notifier.flush(20)
    assert len(hook.requests) == 1
    assert len(hook.requests[0].json["alerts"]) == 10
    assert len(memory.notifications) == 1
    assert [e.service for e in memory.notifications[0].events] == [f"svc{i}" for i in range(10)]


def test_empty_submit_sends_nothing(store: StateStore) -> None:
    memory = InMemoryReceiver()
    with _notifier([memory], store) as notifier:
        notifier.submit([])
        assert notifier.flush(5)
    assert memory.calls == 0


def test_a_slow_receiver_delays_neither_submit_nor_the_others(
    store: StateStore, servers: Servers
) -> None:
    slow = servers(delay=5.0)
    fast = servers()
    receivers = [WebhookReceiver("slow", slow.url), WebhookReceiver("fast", fast.url)]
    with _notifier(receivers, store) as notifier:
        notifier.submit([_event()])
        submitted = time.monotonic()
        (fast_request,) = fast.wait_for(1)
        (slow_request,) = slow.wait_for(1)
        assert notifier.flush(20)
    assert slow_request.finished is not None
    assert fast_request.finished is not None
    assert submitted < slow_request.finished
    assert fast_request.finished < slow_request.finished


def test_flush_says_when_it_timed_out(store: StateStore) -> None:
    slow = InMemoryReceiver(delay=2.0)
    with _notifier([slow], store) as notifier:
        notifier.submit([_event()])
        assert notifier.flush(0.05) is False
        assert notifier.flush(20) is True


@pytest.mark.parametrize(
    ("answers", "retry_after", "sleeps"),
    [
        pytest.param([429, 500], 2, [2.0, 2.0], id="429-500-retry-after"),
        pytest.param([503, 502, 500], None, [0.5, 1.0, 2.0], id="5xx-backoff"),
        pytest.param([429], "Wed, 21 Oct 2015 07:28:00 GMT", [0.0], id="retry-after-date-past"),
    ],
)
def test_retry_on_429_and_5xx_then_success(
    store: StateStore,
    servers: Servers,
    answers: list[int],
    retry_after: object,
    sleeps: list[float],
) -> None:
    hook = servers()
    hook.respond(*answers, retry_after=retry_after)  # type: ignore[arg-type]
    slept: list[float] = []
    reports: list[str] = []
    with _notifier(
        [WebhookReceiver("webhook", hook.url)], store, reports, sleep=slept.append, backoff=0.5
    ) as notifier:
        notifier.submit([_event()])
        assert notifier.flush(20)
    assert [r.status for r in hook.requests] == [*answers, 200]
    assert slept == sleeps
    assert reports == []
    assert len({r.body for r in hook.requests}) == 1


def test_retry_after_is_bounded(store: StateStore, servers: Servers) -> None:
    hook = servers()
    hook.respond(429, retry_after=86400)
    slept: list[float] = []
    with _notifier([WebhookReceiver("webhook", hook.url)], store, sleep=slept.append) as notifier:
        notifier.submit([_event()])
        assert notifier.flush(20)
    assert slept == [300.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_no_retry_on_other_4xx_and_reported(
    store: StateStore, servers: Servers, status: int
) -> None:
    hook = servers(status=status)
    other = InMemoryReceiver("other")
    reports: list[str] = []
    with _notifier([WebhookReceiver("hook", hook.url), other], store, reports) as notifier:
        notifier.submit([_event()])
        assert notifier.flush(20)
    assert len(hook.requests) == 1
    assert len(reports) == 1
    assert reports[0].startswith(f"receiver hook (webhook) answered HTTP {status}")
    assert "monitoring goes on" in reports[0]
    assert hook.url not in reports[0]
    kinds = [(e.alertname, e.service, e.kind) for e in other.events]
    assert ("ReceiverFailing", "receiver:hook", EventKind.FIRING) in kinds


def test_failing_receiver_reported_once_per_episode_through_the_others(
    store: StateStore, servers: Servers
) -> None:
    hook = servers(status=404)
    other = InMemoryReceiver("other")
    reports: list[str] = []
    with _notifier([WebhookReceiver("hook", hook.url), other], store, reports) as notifier:
        for i in range(3):
            notifier.submit([_event(f"svc{i}")])
            assert notifier.flush(20)
        assert len(reports) == 1
        hook.status = 200
        notifier.submit([_event("svc9")])
        assert notifier.flush(20)
        assert reports[1] == "receiver hook (webhook) delivers again"
        # a second episode is reported again
        hook.status = 500
        notifier.submit([_event("svc10")])
        assert notifier.flush(20)
    assert len(reports) == 3
    failing = [(e.kind, e.starts_at) for e in other.events if e.alertname == "ReceiverFailing"]
    assert [k for k, _ in failing] == [EventKind.FIRING, EventKind.RESOLVED, EventKind.FIRING]
    assert failing[0][1] == failing[1][1]
    # the monitoring went on: every service's event reached the other receiver
    assert {e.service for e in other.events} >= {"svc0", "svc1", "svc2", "svc9", "svc10"}


def test_events_not_taken_after_the_retries_go_with_the_next_notification(
    store: StateStore, servers: Servers
) -> None:
    hook = servers(status=503)
    reports: list[str] = []
    with _notifier([WebhookReceiver("hook", hook.url)], store, reports, retries=2) as notifier:
        notifier.submit([_event("a")])
        assert notifier.flush(20)
        assert len(hook.requests) == 3
        hook.status = 200
        notifier.submit([_event("b")])
        assert notifier.flush(20)
    last = hook.requests[-1].json
    assert [a["labels"]["service"] for a in last["alerts"]] == ["a", "b"]
    assert reports[-1] == "receiver hook (webhook) delivers again"


def test_connection_refused_is_retried_and_reported(store: StateStore) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook/secret-token-xyz"
    reports: list[str] = []
    slept: list[float] = []
    with _notifier(
        [WebhookReceiver("hook", url)], store, reports, sleep=slept.append, retries=3
    ) as notifier:
        notifier.submit([_event()])
        assert notifier.flush(20)
    assert len(slept) == 3
    assert len(reports) == 1
    assert "cannot be reached" in reports[0]
    assert "secret-token-xyz" not in reports[0]
    assert str(port) not in reports[0]


def test_a_receiver_raising_anything_does_not_stop_the_worker(store: StateStore) -> None:
    class Broken(InMemoryReceiver):
        def send(self, notification: object) -> None:  # type: ignore[override]
            raise RuntimeError("http://127.0.0.1:1/leaky-url")

    reports: list[str] = []
    broken, other = Broken("broken"), InMemoryReceiver("other")
    with _notifier([broken, other], store, reports) as notifier:
        notifier.submit([_event("a")])
        assert notifier.flush(20)
        notifier.submit([_event("b")])
        assert notifier.flush(20)
    assert reports == ["receiver broken (memory) failed (RuntimeError); the monitoring goes on"]
    assert {e.service for e in other.events} >= {"a", "b"}


def test_a_broken_on_report_does_not_stop_sending(store: StateStore) -> None:
    def explode(_text: str) -> None:
        raise ValueError("boom")

    failing = InMemoryReceiver("failing", fail=[ReceiverError("x", retryable=False)])
    other = InMemoryReceiver("other")
    with Notifier([failing, other], store, ENV, on_report=explode) as notifier:
        notifier.submit([_event()])
        assert notifier.flush(20)
        notifier.submit([_event("b")])
        assert notifier.flush(20)
    assert {e.service for e in failing.events} == {"b"}


def test_dedup_markers_stop_a_second_send(store: StateStore) -> None:
    first = InMemoryReceiver("mem")
    with _notifier([first], store) as notifier:
        notifier.submit([_event()])
        assert notifier.flush(20)
    keys = set(store.kv_list(sent_namespace(ENV)))
    assert keys == {f"mem|{_event().event_id}"}
    # a restarted monitor, or a second replica, submitting the same event sends nothing
    second = InMemoryReceiver("mem")
    with _notifier([second], store) as notifier:
        notifier.submit([_event()])
        notifier.submit([_event(kind=EventKind.RESOLVED)])
        assert notifier.flush(20)
    assert [e.kind for e in second.events] == [EventKind.RESOLVED]


def test_restart_between_trigger_and_resolve_sends_each_once(
    store: StateStore, servers: Servers
) -> None:
    hook = servers()
    settings = ResolvedMonitor()
    now = [5000.0]

    def run(ok: bool, passes: int) -> None:
        book = AlertBook(store, ENV, settings=lambda _s: settings, clock=lambda: now[0])
        with _notifier([WebhookReceiver("hook", hook.url)], store) as notifier:
            for _ in range(passes):
                now[0] += 1
                notifier.submit(book.observe([Observation("web", "ServiceDown", ok, at=now[0])]))
            assert notifier.flush(20)

    run(False, 4)
    run(False, 1)  # restarted while firing
    run(True, 1)
    run(True, 3)  # restarted between the two successes
    statuses = [b["status"] for b in hook.bodies()]
    assert statuses == ["firing", "resolved"]


def test_alertmanager_hears_again_while_firing_and_the_end(
    store: StateStore, servers: Servers
) -> None:
    am = servers()
    receiver = AlertmanagerReceiver("am", am.url, resend_interval=0.05)
    with _notifier([receiver], store) as notifier:
        notifier.submit([_event()])
        posts = am.wait_for(3)
        notifier.submit([_event(kind=EventKind.RESOLVED)])
        assert notifier.flush(20)
        deadline = time.monotonic() + 20
        while not any("endsAt" in b[0] for b in am.bodies()) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert all(p.path == "/api/v2/alerts" for p in posts)
    assert len({p.json[0]["startsAt"] for p in posts}) == 1
    assert all("endsAt" not in p.json[0] for p in posts)
    ends = [b for b in am.bodies() if "endsAt" in b[0]]
    assert len(ends) == 1


def test_alertmanager_resends_what_fired_before_a_restart(
    store: StateStore, servers: Servers
) -> None:
    am = servers()
    settings = ResolvedMonitor(failure_threshold=1)
    book = AlertBook(store, ENV, settings=lambda _s: settings)
    fired = book.observe([Observation("web", "ServiceDown", False)])
    with _notifier([AlertmanagerReceiver("am", am.url)], store) as notifier:
        notifier.submit(fired)
        assert notifier.flush(20)
    restarted = AlertBook(store, ENV, settings=lambda _s: settings)
    with _notifier(
        [AlertmanagerReceiver("am", am.url)],
        store,
        resend_interval=0.05,
        firing=restarted.firing_events(),
    ) as notifier:
        notifier.submit(restarted.observe([Observation("web", "ServiceDown", False)]))
        posts = am.wait_for(3)
    assert {p.json[0]["labels"]["alertname"] for p in posts} == {"ServiceDown"}


def test_close_is_idempotent_and_closes_receivers(store: StateStore) -> None:
    class Closing(InMemoryReceiver):
        closed = 0

        def close(self) -> None:
            Closing.closed += 1

    notifier = _notifier([Closing()], store)
    notifier.close()
    notifier.close()
    notifier.submit([_event()])  # after close: ignored
    assert Closing.closed == 1


def test_the_outbox_is_empty_once_every_receiver_is_done(store: StateStore) -> None:
    ok, refusing = (
        InMemoryReceiver("ok"),
        InMemoryReceiver(
            "refusing", fail=[ReceiverError("receiver refusing answered HTTP 404", retryable=False)]
        ),
    )
    with _notifier([ok, refusing], store) as notifier:
        notifier.submit([_event("a"), _event("b")])
        assert notifier.flush(20)
    assert store.kv_list(outbox_namespace(ENV)) == {}


def test_a_crash_before_sending_loses_nothing_and_duplicates_nothing(store: StateStore) -> None:
    """A monitor killed while a slow receiver was still sending: the next one (a restart,
    or the standby that took over) sends the event to that receiver only."""
    fast, slow = InMemoryReceiver("fast"), InMemoryReceiver("slow", delay=30.0)
    notifier = _notifier([fast, slow], store)
    notifier.submit([_event()])
    assert fast.received.wait(20)
    deadline = time.monotonic() + 20
    while not store.kv_list(outbox_namespace(ENV)) and time.monotonic() < deadline:
        time.sleep(0.01)
    notifier.close(timeout=0.1)  # the slow send is abandoned, as by a kill
    assert list(store.kv_list(outbox_namespace(ENV))) == [_event().event_id]
    fast2, slow2 = InMemoryReceiver("fast"), InMemoryReceiver("slow")
    with _notifier([fast2, slow2], store) as restarted:
        assert restarted.flush(20)
    assert fast2.events == []
    assert [e.event_id for e in slow2.events] == [_event().event_id]
    assert slow2.events[0] == _event()
    assert store.kv_list(outbox_namespace(ENV)) == {}


def test_a_stale_outbox_entry_is_dropped(store: StateStore) -> None:
    store.kv_put(
        outbox_namespace(ENV), "old", {"at": time.time() - 3 * 86400, "event": {"kind": "firing"}}
    )
    store.kv_put(outbox_namespace(ENV), "garbage", ["not", "an", "entry"])
    memory = InMemoryReceiver()
    with _notifier([memory], store) as notifier:
        assert notifier.flush(20)
    assert memory.calls == 0
    assert store.kv_list(outbox_namespace(ENV)) == {}


def test_receivers_need_names_of_their_own(store: StateStore) -> None:
    from rollsafe.monitor.receivers import ReceiverConfigError

    with pytest.raises(ReceiverConfigError, match="two receivers of qa are named 'hook'"):
        Notifier([InMemoryReceiver("hook"), InMemoryReceiver("hook")], store, ENV)


def test_a_standby_on_postgresql_sends_nothing_twice_and_loses_nothing(
    postgres_url: str, postgres_password: str, servers: Servers
) -> None:
    """The leader sent to one receiver and died before the other took the event; the
    standby (its own connection) finishes the job and repeats nothing."""
    from rollsafe.state.postgresql import PostgresStateStore

    hook = servers()
    with PostgresStateStore(postgres_url, password=postgres_password) as leader_store:
        stuck = InMemoryReceiver("pd", delay=30.0)
        leader = _notifier([WebhookReceiver("hook", hook.url), stuck], leader_store)
        leader.submit([_event("a"), _event("b")])
        hook.wait_for(1)
        deadline = time.monotonic() + 20
        while len(leader_store.kv_list(outbox_namespace(ENV))) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        leader.close(timeout=0.1)
    with PostgresStateStore(postgres_url, password=postgres_password) as standby_store:
        pd = InMemoryReceiver("pd")
        with _notifier([WebhookReceiver("hook", hook.url), pd], standby_store) as standby:
            standby.submit([_event("a")])  # the standby's own pass finds it firing too
            assert standby.flush(20)
        assert standby_store.kv_list(outbox_namespace(ENV)) == {}
    assert len(hook.requests) == 1
    assert sorted(e.service for e in pd.events) == ["a", "b"]
