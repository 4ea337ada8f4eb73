"""ServiceLogReader against the emulator's Logging API, and RequestWindow."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollsafe.monitor.logs import (
    LogEntryLine,
    RequestSample,
    RequestWindow,
    ServiceLogReader,
    cursor_namespace,
    pass_filter,
)
from rollsafe.monitor.probe import AsyncProber, ProbeSample
from rollsafe.state.memory import MemoryStateStore
from tests.deploy.conftest import SERVICE, Site

ENV = "qa"
_ids = itertools.count(1)


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Logs:
    """Writes Cloud Run-shaped entries to the emulator through entries:write."""

    def __init__(self, endpoint: str, project: str) -> None:
        self.endpoint = endpoint
        self.project = project

    def entry(
        self,
        service: str,
        at: float,
        *,
        log: str = "run.googleapis.com/stderr",
        text: str | None = "a line",
        severity: str = "ERROR",
        revision: str | None = None,
        insert_id: str | None = None,
        status: int | None = None,
        latency: str = "0.100s",
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "logName": f"projects/{self.project}/logs/{log.replace('/', '%2F')}",
            "resource": {
                "type": "cloud_run_revision",
                "labels": {
                    "project_id": self.project,
                    "service_name": service,
                    "revision_name": revision or f"{service}-00001-abc",
                    "location": "us-central1",
                    "configuration_name": service,
                },
            },
            "timestamp": _stamp(at),
            "severity": severity,
            "insertId": insert_id or f"id{next(_ids):06d}",
        }
        if status is not None:
            entry["httpRequest"] = {
                "requestMethod": "GET",
                "requestUrl": f"https://{service}.example/",
                "status": status,
                "latency": latency,
            }
        elif text is not None:
            entry["textPayload"] = text
        return entry

    def write(self, *entries: dict[str, Any]) -> None:
        answer = httpx.post(
            f"{self.endpoint}/v2/entries:write", json={"entries": list(entries)}, timeout=10
        )
        assert answer.status_code == 200, answer.text


@pytest.fixture
def logs(emulator: str, project: str) -> Logs:
    return Logs(emulator, project)


@pytest.fixture
def store() -> Iterator[MemoryStateStore]:
    with MemoryStateStore() as state:
        yield state


def _reader(logs: Logs, store: MemoryStateStore, **kwargs: Any) -> ServiceLogReader:
    return ServiceLogReader(logs.project, endpoint=logs.endpoint, store=store, env=ENV, **kwargs)


def _ids_of(lines: list[LogEntryLine]) -> list[str]:
    return [line.insert_id for line in lines]


def test_reads_each_entry_once_in_time_order(logs: Logs, store: MemoryStateStore) -> None:
    now = time.time()
    logs.write(
        logs.entry("web", now - 3, insert_id="b"),
        logs.entry("web", now - 4, insert_id="a", text="first"),
        logs.entry("other", now - 3, insert_id="x"),  # not a service of the environment
    )
    with _reader(logs, store) as reader:
        requests, lines = reader.read(["web"])
        assert requests == []
        assert _ids_of(lines) == ["a", "b"]
        first = lines[0]
        assert (first.service, first.revision, first.severity, first.text) == (
            "web",
            "web-00001-abc",
            "ERROR",
            "first",
        )
        assert first.log_name == "run.googleapis.com/stderr"
        assert first.evidence == "log://run.googleapis.com/stderr/a"
        assert reader.read(["web"]) == ([], [])
        logs.write(logs.entry("web", time.time() - 1, insert_id="c"))
        assert _ids_of(reader.read(["web"])[1]) == ["c"]


def test_a_restarted_reader_reads_only_new_entries(logs: Logs, store: MemoryStateStore) -> None:
    at = time.time() - 2
    logs.write(logs.entry("web", at, insert_id="p"), logs.entry("web", at, insert_id="q"))
    with _reader(logs, store) as reader:
        assert sorted(_ids_of(reader.read(["web"])[1])) == ["p", "q"]
    value, _ = store.kv_get(cursor_namespace(ENV), "logs") or (None, 0)
    assert value["timestamp"] == _stamp(at)
    assert sorted(value["ids"]) == ["run.googleapis.com/stderr/p", "run.googleapis.com/stderr/q"]
    # a new entry sharing the cursor's timestamp, and a later one
    logs.write(logs.entry("web", at, insert_id="r"), logs.entry("web", at + 1, insert_id="s"))
    with _reader(logs, store) as restarted:
        assert _ids_of(restarted.read(["web"])[1]) == ["r", "s"]
        assert restarted.read(["web"]) == ([], [])
    with _reader(logs, store) as again:
        assert again.read(["web"]) == ([], [])


def test_late_entries_within_the_overlap_are_read_once(logs: Logs, store: MemoryStateStore) -> None:
    now = time.time()
    logs.write(logs.entry("web", now - 1, insert_id="new"))
    with _reader(logs, store, overlap=10.0) as reader:
        assert _ids_of(reader.read(["web"])[1]) == ["new"]
        # arrives late: stamped 5 s before the newest entry already read
        logs.write(logs.entry("web", now - 6, insert_id="late"))
        logs.write(logs.entry("web", now - 30, insert_id="too-late"))
        assert _ids_of(reader.read(["web"])[1]) == ["late"]
        assert reader.read(["web"]) == ([], [])


def test_first_start_reads_the_backfill_only(logs: Logs, store: MemoryStateStore) -> None:
    now = time.time()
    logs.write(
        logs.entry("web", now - 120, insert_id="old"),
        logs.entry("web", now - 2, insert_id="recent"),
    )
    with _reader(logs, store, backfill=60.0) as reader:
        assert _ids_of(reader.read(["web"])[1]) == ["recent"]


def test_request_log_entries_become_samples(logs: Logs, store: MemoryStateStore) -> None:
    now = time.time()
    logs.write(
        logs.entry("web", now - 3, log="run.googleapis.com/requests", status=200, latency="0.25s"),
        logs.entry(
            "web",
            now - 2,
            log="run.googleapis.com/requests",
            status=503,
            revision="web-00002-new",
            latency="1.5s",
        ),
        logs.entry("web", now - 2, log="run.googleapis.com/varlog/system", text="Ready"),
        logs.entry("web", now - 2, log="run.googleapis.com/stdout", severity="INFO"),
        logs.entry("web", now - 2, log="cloudaudit.googleapis.com/activity"),  # not read
    )
    with _reader(logs, store) as reader:
        requests, lines = reader.read(["web"])
    assert [(r.revision, r.status, r.latency) for r in requests] == [
        ("web-00001-abc", 200, 0.25),
        ("web-00002-new", 503, 1.5),
    ]
    assert all(isinstance(r, RequestSample) and r.service == "web" for r in requests)
    assert [line.log_name for line in lines] == [
        "run.googleapis.com/varlog/system",
        "run.googleapis.com/stdout",
    ]


def test_a_filter_is_evaluated_by_the_logging_api(logs: Logs, store: MemoryStateStore) -> None:
    now = time.time()
    logs.write(
        logs.entry("web", now - 5, insert_id="e1", text="boom", severity="ERROR"),
        logs.entry("web", now - 4, insert_id="w1", text="meh", severity="WARNING"),
        logs.entry("web", now - 3, insert_id="e2", text="boom again", severity="CRITICAL"),
        logs.entry("api", now - 3, insert_id="e3", text="not web", severity="ERROR"),
    )
    with _reader(logs, store) as reader:
        found = reader.matching("web", "severity>=ERROR", since=now - 60)
        assert _ids_of(found) == ["e2", "e1"]  # newest first
        assert _ids_of(reader.matching("web", 'textPayload:"again"', since=now - 60)) == ["e2"]
        assert reader.matching("web", "severity>=ERROR", since=now - 3.5, limit=1)[0].insert_id == (
            "e2"
        )


def test_many_services_are_read_in_filters_within_the_api_limit(
    logs: Logs, store: MemoryStateStore
) -> None:
    services = [f"service-with-a-long-name-{i:04d}" for i in range(1500)]
    now = time.time()
    logs.write(
        logs.entry(services[0], now - 2, insert_id="first"),
        logs.entry(services[-1], now - 1, insert_id="last"),
    )
    with _reader(logs, store) as reader:
        assert _ids_of(reader.read(services)[1]) == ["first", "last"]
    text = pass_filter(logs.project, services[:400], "2026-01-01T00:00:00.000000Z", "x")
    assert len(text) < 20_000


def _sample(revision: str, status: int, latency: float, at: float) -> RequestSample:
    return RequestSample("web", revision, status, latency, at, f"i{next(_ids)}")


def test_request_window_stats_per_revision() -> None:
    window = RequestWindow()
    now = 1_000.0
    old = [_sample("r1", 500, 9.0, now - 120)]  # outside a 60 s window
    r1 = [_sample("r1", 200, (i + 1) / 100, now - 10) for i in range(100)]
    r2 = [_sample("r2", 503 if i < 3 else 200, 0.5, now - 5) for i in range(10)]
    window.add(old + r1 + r2)
    stats = window.stats("web", 60.0, now)
    assert set(stats) == {"r1", "r2"}
    assert (stats["r1"].requests, stats["r1"].errors) == (100, 0)
    assert (stats["r1"].percentile(50), stats["r1"].p95(), stats["r1"].percentile(99)) == (
        0.5,
        0.95,
        0.99,
    )
    assert (stats["r2"].requests, stats["r2"].errors, stats["r2"].error_rate) == (10, 3, 0.3)
    assert window.stats("other", 60.0, now) == {}
    window.prune(now + 3600 - 100)  # keeps an hour: only the newest samples stay
    assert set(window.stats("web", 10_000.0, now)) == {"r1", "r2"}
    window.prune(now + 3600)
    assert window.stats("web", 10_000.0, now) == {}


def test_a_revision_failing_through_its_flag_file_shows_in_probes_and_request_logs(
    site: Site, tmp_path: Path
) -> None:
    """The example backend answers 503 while BACKEND_FAIL_FILE exists: the prober sees it,
    and the request log gives the revision's 5xx share."""
    flag = tmp_path / "broken"
    site.seed()
    result = site.deploy(extra_env={"BACKEND_FAIL_FILE": str(flag)})
    assert result.exit_code == 0, result.message
    assert result.plan is not None
    revision = result.plan.spec.revision
    url = site.service().url
    assert url is not None
    health = site.env.services[SERVICE].health
    assert site.env.gcp_project is not None

    async def probe() -> ProbeSample:
        async with AsyncProber(site.tokens) as prober:
            return await prober.probe(SERVICE, url, health, private=True)

    with (
        MemoryStateStore() as store,
        ServiceLogReader(
            site.env.gcp_project, endpoint=site.endpoint, store=store, env=ENV
        ) as reader,
    ):
        reader.read([SERVICE])  # what the deploy left in the logs
        assert asyncio.run(probe()).ok
        flag.write_text("")
        failed = asyncio.run(probe())
        assert (failed.ok, failed.status, failed.detail) == (False, 503, "expected HTTP 200")
        for _ in range(4):
            assert site.get("/").status_code == 503
        window = RequestWindow()
        deadline = time.monotonic() + 30
        while True:
            requests, _ = reader.read([SERVICE])
            window.add(requests)
            stats = window.stats(SERVICE, 120.0, time.time() + 1)
            if revision in stats and stats[revision].errors >= 5:
                break
            assert time.monotonic() < deadline, f"the request log never showed the 503s: {stats}"
            time.sleep(0.3)
        assert stats[revision].error_rate > 0.5
        flag.unlink()
        assert asyncio.run(probe()).ok
