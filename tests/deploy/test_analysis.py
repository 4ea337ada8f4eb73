"""Canary analysis: the judging function, and the step window read through the twin."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rollsafe.deploy.analysis import CanaryJudge, judge
from rollsafe.manifest import ResolvedAnalysis
from rollsafe.platforms.logs import InMemoryRevisionLogs, RequestStats

NEW, OLD = "web-00002", "web-00001"
DEFAULT = ResolvedAnalysis()


def _stats(*rows: tuple[str, int, int]) -> dict[str, RequestStats]:
    return {rev: RequestStats(rev, total, errors) for rev, total, errors in rows}


def _latencies(rev: str, *ms: float) -> RequestStats:
    return RequestStats(rev, len(ms), 0, tuple(m / 1000 for m in ms))


@pytest.mark.parametrize(
    ("stats", "spec", "ok", "by_traffic", "message"),
    [
        pytest.param(
            _stats((NEW, 140, 31), (OLD, 1260, 0)),
            DEFAULT,
            False,
            True,
            "web-00002: 31 of 140 requests 5xx (22%) > 1%; web-00001: 0 of 1,260",
            id="error-rate-over-limit-names-both",
        ),
        pytest.param(
            _stats((NEW, 140, 1), (OLD, 1260, 3)),
            DEFAULT,
            True,
            True,
            "web-00002: 1 of 140 requests 5xx (0.7%); web-00001: 3 of 1,260",
            id="error-rate-under-limit",
        ),
        pytest.param(
            _stats((NEW, 100, 1)),
            DEFAULT,
            True,
            True,
            "web-00002: 1 of 100 requests 5xx (1%); web-00001: 0 of 0",
            id="exactly-at-limit-passes-old-had-none",
        ),
        pytest.param(
            _stats((NEW, 40, 1)),
            replace(DEFAULT, max_error_rate=0.0),
            False,
            True,
            "web-00002: 1 of 40 requests 5xx (2.5%) > 0%; web-00001: 0 of 0",
            id="zero-tolerance",
        ),
        pytest.param(
            _stats((NEW, 3, 3), (OLD, 27, 0)),
            DEFAULT,
            True,
            False,
            "judged by probes alone: web-00002 had 3 requests in 10 s, fewer than "
            "min_requests (20)",
            id="too-few-requests-probes-alone",
        ),
        pytest.param(
            {},
            replace(DEFAULT, require_traffic=True),
            False,
            False,
            "web-00002: 0 requests in 10 s, fewer than min_requests (20), and "
            "analysis.require_traffic is true",
            id="no-traffic-require-traffic-fails-closed",
        ),
        pytest.param(
            _stats((NEW, 1, 0)),
            replace(DEFAULT, min_requests=1),
            True,
            True,
            "web-00002: 0 of 1 requests 5xx (0%); web-00001: 0 of 0",
            id="min-requests-one",
        ),
    ],
)
def test_judge(
    stats: dict[str, RequestStats],
    spec: ResolvedAnalysis,
    ok: bool,
    by_traffic: bool,
    message: str,
) -> None:
    verdict = judge(NEW, stats, spec, previous=[OLD], window=10.0)
    assert (verdict.ok, verdict.by_traffic, verdict.message) == (ok, by_traffic, message)


@pytest.mark.parametrize(
    ("limit", "ok", "message"),
    [
        pytest.param(
            0.5,
            False,
            "web-00002: p95 1,240 ms > 500 ms over 20 requests; "
            "web-00001: p95 80 ms over 20 requests",
            id="slow-p95-fails",
        ),
        pytest.param(
            2.0,
            True,
            "web-00002: 0 of 20 requests 5xx (0%), p95 1,240 ms; web-00001: 0 of 20",
            id="p95-under-limit",
        ),
    ],
)
def test_judge_p95_latency(limit: float, ok: bool, message: str) -> None:
    # 18 fast answers and two slow ones: the 19th of 20 (nearest rank) is slow
    stats = {
        NEW: _latencies(NEW, *([30.0] * 18), 1240.0, 1300.0),
        OLD: _latencies(OLD, *([80.0] * 20)),
    }
    verdict = judge(NEW, stats, replace(DEFAULT, max_p95_latency=limit), previous=[OLD])
    assert (verdict.ok, verdict.message) == (ok, message)


@pytest.mark.parametrize(
    ("latencies", "p95"),
    [
        pytest.param((), None, id="none"),
        pytest.param((0.1,), 0.1, id="one"),
        pytest.param(tuple(i / 100 for i in range(1, 101)), 0.95, id="hundred"),
    ],
)
def test_p95_nearest_rank(latencies: tuple[float, ...], p95: float | None) -> None:
    assert RequestStats(NEW, len(latencies), 0, latencies).p95() == p95


def test_step_reads_the_window_leaves_out_the_probes_and_other_services() -> None:
    logs = InMemoryRevisionLogs()
    start = 1_000.0
    for i in range(30):
        at = start + i * 0.1
        logs.add_request("web", NEW, at=at, status=500 if i % 3 == 0 else 200, host="web.run")
        logs.add_request("web", OLD, at=at, status=200, host="web.run")
        logs.add_request("web", NEW, at=at, status=503, host="candidate---web.run")  # probes
        logs.add_request("api", NEW, at=at, status=500, host="api.run")
    logs.add_request("web", NEW, at=start - 1, status=500, host="web.run")  # before
    logs.add_request("web", NEW, at=start + 10, status=500, host="web.run")  # after
    logs.add_request("web", "", at=start + 1, status=403, host="web.run")  # refused
    slept: list[float] = []
    judge_ = CanaryJudge(
        logs, DEFAULT, "web", NEW, (OLD,), settle=0.5, sleep=slept.append, clock=lambda: start + 2
    )
    verdict = judge_.step(start, "https://candidate---web.run/")
    assert slept == [8.5]  # the rest of the 10 s window, then the settle delay
    assert not verdict.ok
    assert verdict.message == "web-00002: 10 of 30 requests 5xx (33%) > 1%; web-00001: 0 of 30"


@pytest.mark.parametrize(
    ("require", "ok", "message"),
    [
        pytest.param(False, True, "judged by probes alone: no request logs to read", id="lax"),
        pytest.param(
            True,
            False,
            "no request logs to read, and analysis.require_traffic is true",
            id="fail-closed",
        ),
    ],
)
def test_step_without_logs(require: bool, ok: bool, message: str) -> None:
    spec = replace(DEFAULT, require_traffic=require)
    verdict = CanaryJudge(None, spec, "web", NEW, sleep=lambda _: None).step(0.0)
    assert (verdict.ok, verdict.message) == (ok, message)
