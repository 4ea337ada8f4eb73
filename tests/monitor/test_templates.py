"""ErrorTemplates: Drain3 templates of error lines, new ones after a deploy flagged with its
id, and the state kept in the StateStore across restarts."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from rollsafe.monitor.logs import LogEntryLine
from rollsafe.monitor.model import AlertName
from rollsafe.monitor.templates import ErrorTemplates, templates_namespace
from rollsafe.state.memory import MemoryStateStore

ENV = "qa"
_ids = itertools.count(1)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> Iterator[MemoryStateStore]:
    with MemoryStateStore() as state:
        yield state


def _line(text: str, at: float, *, service: str = "web", severity: str = "ERROR") -> LogEntryLine:
    return LogEntryLine(
        service,
        f"{service}-00002-new",
        "run.googleapis.com/stderr",
        severity,
        text,
        f"i{next(_ids)}",
        at,
    )


KNOWN = [
    "database timeout after 3012 ms on 10.0.0.7:5432",
    "database timeout after 95 ms on 10.0.0.9:5432",
    "user 1234 not found",
    "user 98 not found",
]


def test_a_template_first_seen_after_a_deploy_is_flagged_with_its_id(
    store: MemoryStateStore,
) -> None:
    clock = Clock(1_000.0)
    templates = ErrorTemplates(store, ENV, clock=clock)
    for n, text in enumerate(KNOWN):
        assert templates.add(_line(text, 1_000.0 + n), None, None) is None
    clock.now = 2_000.0
    deployed_at = 1_900.0
    # known templates (other values) after the deploy: not new
    for text in ("database timeout after 7 ms on 10.0.0.1:5432", "user 5 not found"):
        assert templates.add(_line(text, 1_950.0), "d-42", deployed_at) is None
    line = _line("JWT secret not configured for tenant 77", 1_960.0)
    obs = templates.add(line, "d-42", deployed_at)
    assert obs is not None
    assert (obs.alertname, obs.severity, obs.ok, obs.thresholds) == (
        AlertName.NEW_ERROR_TEMPLATE.value,
        "info",
        False,
        (1, 1),
    )
    assert obs.service == "web"
    assert obs.revision == "web-00002-new"
    assert "d-42" in obs.description
    assert "d-42" in obs.summary
    assert "JWT secret not configured for tenant <NUM>" in obs.description
    assert obs.evidence == (line.evidence,)
    assert (
        templates.add(_line("JWT secret not configured for tenant 8", 1_970.0), "d-42", deployed_at)
        is None
    )
    assert len(templates.templates("web")) == 3


def test_before_a_deploy_or_without_one_nothing_is_flagged(store: MemoryStateStore) -> None:
    clock = Clock(1_000.0)
    templates = ErrorTemplates(store, ENV, clock=clock)
    assert templates.add(_line("first kind", 1_010.0), None, None) is None
    # a deploy at 1_500, but the line is older
    assert templates.add(_line("second kind of thing", 1_400.0), "d-1", 1_500.0) is None
    # a deploy before the monitor started learning: nobody saw what came before it
    assert templates.add(_line("third sort of failure here", 1_600.0), "d-0", 900.0) is None


def test_a_restarted_monitor_does_not_flag_known_templates(store: MemoryStateStore) -> None:
    clock = Clock(1_000.0)
    first = ErrorTemplates(store, ENV, clock=clock)
    first.add(_line("cache miss for key 12", 1_001.0), None, None)
    assert first.add(_line("upstream 502 from billing", 1_600.0), "d-7", 1_500.0) is not None
    first.flush()
    saved = store.kv_get(templates_namespace(ENV), "web")
    assert saved is not None
    assert saved[0]["state"]
    clock.now = 5_000.0
    restarted = ErrorTemplates(store, ENV, clock=clock)
    assert restarted.since == 1_000.0
    assert sorted(restarted.templates("web")) == sorted(first.templates("web"))
    for text in ("cache miss for key 99", "upstream 502 from billing"):
        assert restarted.add(_line(text, 4_900.0), "d-8", 4_800.0) is None
    assert restarted.add(_line("a brand new failure mode", 4_950.0), "d-8", 4_800.0) is not None


def test_services_have_their_own_templates(store: MemoryStateStore) -> None:
    templates = ErrorTemplates(store, ENV, clock=Clock(1_000.0))
    templates.add(_line("payment declined", 1_001.0, service="api"), None, None)
    obs = templates.add(_line("payment declined", 1_200.0, service="web"), "d-3", 1_100.0)
    assert obs is not None
    assert obs.service == "web"


def test_observe_resolves_after_the_hold(store: MemoryStateStore) -> None:
    clock = Clock(1_000.0)
    templates = ErrorTemplates(store, ENV, clock=clock, hold=60.0)
    assert templates.observe("web") is None
    clock.now = 1_200.0
    assert templates.add(_line("new thing broke", 1_200.0), "d-1", 1_100.0) is not None
    assert templates.observe("web", 1_230.0) is None
    resolved = templates.observe("web", 1_261.0)
    assert resolved is not None
    assert resolved.ok
    assert resolved.alertname == AlertName.NEW_ERROR_TEMPLATE.value
    assert templates.observe("web", 1_300.0) is None


@pytest.mark.parametrize(
    ("severity", "wanted"),
    [("ERROR", True), ("CRITICAL", True), ("WARNING", False), ("DEFAULT", False)],
    ids=["error", "critical", "warning", "default"],
)
def test_wants_error_lines(severity: str, wanted: bool) -> None:
    assert ErrorTemplates.wants(_line("x", 1.0, severity=severity)) is wanted
