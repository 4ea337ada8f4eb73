"""find_episodes: alerts, bad deploys and request-log outages, merged per service."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollsafe.errors import UsageError
from rollsafe.incidents.episodes import episode_id, find_episodes
from rollsafe.manifest import ResolvedEnvironment, load_manifest
from rollsafe.monitor.history import AlertRecord, history_namespace
from rollsafe.platforms.logs import CloudLoggingRevisionLogs
from rollsafe.state.base import StateStore, StateUnavailableError
from rollsafe.state.memory import MemoryStateStore
from rollsafe.state.records import DeployRecord

ENV = "qa"
NOW = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC).timestamp()
DAY = 86400.0
_ids = itertools.count(1)

MANIFEST = """
version: 1
project: netra
environments:
  qa: {{platform: local, strict: false, gcp_project: {project}}}
services:
  web:
    command: [python, -m, http.server, "${{PORT}}"]
  api:
    command: [python, -m, http.server, "${{PORT}}"]
"""


@pytest.fixture
def env(write: Callable[[str, str], Path]) -> ResolvedEnvironment:
    return load_manifest(write("rollsafe.yaml", MANIFEST.format(project="p"))).resolve(ENV)


@pytest.fixture
def store() -> Iterator[MemoryStateStore]:
    with MemoryStateStore() as state:
        yield state


def alert(
    store: StateStore,
    service: str,
    starts: float,
    ends: float | None,
    *,
    name: str = "ServiceDown",
    severity: str = "critical",
) -> None:
    record = AlertRecord(
        service=service,
        alertname=name,
        severity=severity,
        summary=f"{service} is down",
        description="",
        revision=None,
        evidence=(),
        starts_at=starts,
        fired_at=starts + 5,
        ends_at=ends,
        action=None,
    )
    store.kv_put(history_namespace(ENV), record.key, record.to_json())


def deploy(
    store: StateStore,
    service: str,
    started: float,
    finished: float | None,
    outcome: str | None,
    *,
    checks: str = "passed",
    reason: str | None = None,
) -> str:
    record = DeployRecord(
        id=f"d{next(_ids)}",
        env=ENV,
        service=service,
        user="ana",
        host="laptop",
        pid=1,
        checks=checks,
        stage="done",
        started=started,
        finished=finished,
        outcome=outcome,
        reason=reason,
    )
    store.save_record(record)
    return record.id


def episodes(env: ResolvedEnvironment, store: StateStore, **kw: Any) -> list[Any]:
    kw.setdefault("services", ())
    kw.setdefault("since", NOW - 7 * DAY)
    kw.setdefault("until", NOW)
    return find_episodes(env, state=store, logs=None, **kw)


def test_nothing_recorded_is_no_episode(env: ResolvedEnvironment, store: StateStore) -> None:
    deploy(store, "web", NOW - 900, NOW - 880, "succeeded")
    alert(store, "web", NOW - 500, NOW - 400, name="NewErrorTemplate", severity="info")
    assert episodes(env, store) == []


def test_an_alert_and_the_deploy_it_rolled_back_are_one_episode(
    env: ResolvedEnvironment, store: StateStore
) -> None:
    start = NOW - 3600
    alert(store, "web", start, start + 120)
    rollback = deploy(
        store,
        "web",
        start + 30,
        start + 31,
        "rolled-back",
        checks="rollback",
        reason="monitor: ServiceDown fired 40 s after deploy d0: rollback to web-1",
    )
    (found,) = episodes(env, store)
    assert found.id == episode_id(start, "web") == "INC-20261206-090000-web"
    assert found.kinds == ("alert", "deploy")
    assert (found.start, found.end) == (start, start + 120)
    assert found.services == ("web",)
    assert "ServiceDown alert" in found.title
    assert f"the monitor's automatic rollback {rollback} rolled-back" in found.title
    assert found.sources == (
        "monitor:ServiceDown/firing@2026-12-06T09:00:05.000Z",
        f"journal:{rollback}/outcome",
    )


@pytest.mark.parametrize(
    ("second_start", "merged"),
    [(120 + 59, True), (120 + 61, False)],
    ids=["within-slack", "past-slack"],
)
def test_parts_merge_within_60_seconds(
    env: ResolvedEnvironment, store: StateStore, second_start: float, merged: bool
) -> None:
    start = NOW - 3600
    alert(store, "web", start, start + 120)
    deploy(store, "web", start + second_start, start + second_start + 10, "failed")
    found = episodes(env, store)
    assert len(found) == (1 if merged else 2)
    if not merged:  # newest first
        assert [e.kinds for e in found] == [("deploy",), ("alert",)]
        assert found[0].start > found[1].start


def test_services_are_never_merged_and_filter(env: ResolvedEnvironment, store: StateStore) -> None:
    alert(store, "web", NOW - 600, NOW - 500)
    alert(store, "api", NOW - 590, NOW - 510, name="High5xxRate")
    both = episodes(env, store)
    assert [e.services for e in both] == [("api",), ("web",)]
    assert [e.services for e in episodes(env, store, services=["web"])] == [("web",)]


def test_an_alert_that_still_fires_is_going_on(env: ResolvedEnvironment, store: StateStore) -> None:
    alert(store, "web", NOW - 300, None)
    deploy(store, "web", NOW - 10 * DAY, NOW - 10 * DAY + 5, "failed")  # before the window
    (found,) = episodes(env, store)
    assert found.end is None
    assert found.kinds == ("alert",)


@pytest.mark.parametrize(
    "outcome",
    ["rolled-back", "failed", "rollback-failed"],
    ids=["rolled-back", "failed", "rollback-failed"],
)
def test_bad_deploy_outcomes(env: ResolvedEnvironment, store: StateStore, outcome: str) -> None:
    deploy(store, "api", NOW - 100, NOW - 90, outcome)
    deploy(store, "api", NOW - 50, None, None)  # still running: not an episode
    (found,) = episodes(env, store)
    assert found.kinds == ("deploy",)
    assert outcome in found.title


def test_unknown_service_is_a_usage_error(env: ResolvedEnvironment, store: StateStore) -> None:
    with pytest.raises(UsageError, match="unknown service 'wbe'"):
        episodes(env, store, services=["wbe"])


class _DownStore(MemoryStateStore):
    def list_records(self, env: str, service: str | None = None, limit: int = 100) -> Any:
        raise StateUnavailableError("the database is down")


def test_an_unreadable_source_is_reported_and_the_rest_used(env: ResolvedEnvironment) -> None:
    said: list[tuple[str, str]] = []
    with _DownStore() as store:
        alert(store, "web", NOW - 600, NOW - 500)
        found = episodes(env, store, on_unreadable=lambda what, why: said.append((what, why)))
    assert [e.kinds for e in found] == [("alert",)]
    assert said == [("the deploy journal", "the database is down")]


# -- outages, from the emulator's Logging API --


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _request(project: str, service: str, at: float, status: int) -> dict[str, Any]:
    return {
        "logName": f"projects/{project}/logs/run.googleapis.com%2Frequests",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {"service_name": service, "revision_name": f"{service}-00001-abc"},
        },
        "timestamp": _stamp(at),
        "insertId": f"r{next(_ids)}",
        "httpRequest": {
            "requestMethod": "GET",
            "requestUrl": f"https://{service}.example/",
            "status": status,
        },
    }


def test_outages_in_the_request_log(
    emulator: str, project: str, write: Callable[[str, str], Path], store: StateStore
) -> None:
    env = load_manifest(write("rollsafe.yaml", MANIFEST.format(project=project))).resolve(ENV)
    now = time.time()
    first = now - 900
    statuses = [503, 503, 200, 500, 503]  # a run: 200s do not break it
    entries = [_request(project, "web", first + i * 10, s) for i, s in enumerate(statuses)]
    entries.append(_request(project, "web", first + 200, 503))  # a new run, after a gap
    entries.append(_request(project, "api", first + 5, 200))  # no 5xx: no outage
    answer = httpx.post(f"{emulator}/v2/entries:write", json={"entries": entries}, timeout=10)
    assert answer.status_code == 200, answer.text
    alert(store, "web", first + 190, first + 230)  # overlaps the second run
    with CloudLoggingRevisionLogs(project, endpoint=emulator) as logs:
        found = find_episodes(env, state=store, logs=logs, services=(), since=now - 3600, until=now)
    assert [(e.kinds, e.services) for e in found] == [
        (("alert", "outage"), ("web",)),
        (("outage",), ("web",)),
    ]
    older = found[1]
    assert older.start == pytest.approx(first, abs=0.001)
    assert older.end == pytest.approx(first + 40, abs=0.001)
    assert older.title == "web: 4 requests answered 500/503"
    assert older.sources[0].startswith("log://run.googleapis.com%2Frequests/r")
    assert older.id == episode_id(older.start, "web")
