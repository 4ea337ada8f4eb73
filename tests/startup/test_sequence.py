"""StartupSequence: phases in order, failures collected per phase, timeouts, outcomes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from rollsafe.errors import UsageError
from rollsafe.findings import Severity
from rollsafe.startup import (
    DEFAULT_PHASES,
    StartupCheckError,
    StartupProblem,
    StartupReport,
    StartupSequence,
)


def run_sync(seq: StartupSequence) -> StartupReport:
    return seq.run()


def run_async(seq: StartupSequence) -> StartupReport:
    return asyncio.run(seq.run_async())


RUNNERS = pytest.mark.parametrize("run", [run_sync, run_async], ids=["run", "run_async"])


@RUNNERS
def test_phases_run_in_order_and_stop_after_a_failed_one(
    run: Callable[[StartupSequence], StartupReport],
) -> None:
    seq = StartupSequence()
    seq.add_phase("warmup")
    ran: list[str] = []
    seq.add_check("config", lambda: ran.append("config") and None, name="a")
    seq.add_check("auth", lambda: ran.append("auth") and None, name="b")

    def bad_one() -> None:
        ran.append("dep1")
        raise StartupCheckError("database refused", key="DATABASE_URL", rule="connect")

    def bad_two() -> bool:
        ran.append("dep2")
        return False

    seq.add_check("dependencies", bad_one)
    seq.add_check("dependencies", bad_two)
    seq.add_check("warmup", lambda: ran.append("warmup"), name="c")
    report = run(seq)
    assert ran == ["config", "auth", "dep1", "dep2"]
    assert report.phases == (*DEFAULT_PHASES, "warmup")
    assert report.failed_phase == "dependencies"
    assert report.skipped == ("warmup",)
    assert not report.ok
    failures = [(p.phase, p.check, p.key, p.rule) for p in report.failures]
    assert failures == [
        ("dependencies", "bad_one", "DATABASE_URL", "connect"),
        ("dependencies", "bad_two", None, "check"),
    ]
    assert [(r.phase, r.check, r.ok) for r in report.results] == [
        ("config", "a", True),
        ("auth", "b", True),
        ("dependencies", "bad_one", False),
        ("dependencies", "bad_two", False),
    ]
    assert all(r.duration >= 0 for r in report.results)
    assert "dependencies" in report.summary()


@RUNNERS
@pytest.mark.parametrize("kind", ["sync", "async"], ids=["sync-check", "async-check"])
def test_a_check_past_its_timeout_fails_its_phase(
    run: Callable[[StartupSequence], StartupReport], kind: str
) -> None:
    seq = StartupSequence()

    def slow_sync() -> None:
        time.sleep(5)

    async def slow_async() -> None:
        await asyncio.sleep(5)

    seq.add_check("auth", slow_sync if kind == "sync" else slow_async, name="slow", timeout=0.05)
    seq.add_check("auth", lambda: None, name="fast")
    seq.add_check("dependencies", lambda: None, name="never")
    report = run(seq)
    assert report.failed_phase == "auth"
    (problem,) = report.failures
    assert (problem.check, problem.rule) == ("slow", "timeout")
    assert "0.05s" in problem.message
    assert report.result("auth", "fast") is not None  # the phase's other checks still ran
    assert report.result("dependencies", "never") is None


@RUNNERS
def test_a_timeout_error_of_the_check_itself_is_not_our_timeout(
    run: Callable[[StartupSequence], StartupReport],
) -> None:
    seq = StartupSequence()

    async def gives_up() -> None:
        raise TimeoutError("upstream took too long")

    seq.add_check("config", gives_up, timeout=5)
    (problem,) = run(seq).failures
    assert problem.rule == "exception"
    assert problem.message == "TimeoutError: upstream took too long"


@pytest.mark.parametrize(
    ("outcome", "ok", "message", "details"),
    [
        (None, True, "ok", {}),
        (True, True, "ok", {}),
        ("connected to db 16.2", True, "connected to db 16.2", {}),
        ({"version": "16.2"}, True, "ok", {"version": "16.2"}),
        (False, False, "check: returned False", {}),
        ([StartupProblem("old", key="K", severity=Severity.WARNING)], True, "ok", {}),
    ],
    ids=["none", "true", "message", "details", "false", "warning-only"],
)
def test_what_a_check_returns(
    outcome: Any, ok: bool, message: str, details: dict[str, Any]
) -> None:
    seq = StartupSequence(phases=["config"])
    seq.add_check("config", lambda: outcome, name="check")
    report = seq.run()
    (result,) = report.results
    assert (result.ok, result.message, dict(result.details)) == (ok, message, details)
    assert report.ok is ok


def test_an_exception_becomes_a_failure_with_its_type() -> None:
    seq = StartupSequence(phases=["config"])
    seq.add_check("config", lambda: {}["missing"], name="lookup")
    (problem,) = seq.run().failures
    assert (problem.rule, problem.message) == ("exception", "KeyError: 'missing'")


def test_async_checks_run_from_sync_code_inside_a_running_loop() -> None:
    seq = StartupSequence(phases=["config"])

    async def ping() -> str:
        await asyncio.sleep(0)
        return "pong"

    seq.add_check("config", ping)

    async def main() -> StartupReport:
        return seq.run()  # a loop runs here: the async check gets one of its own

    assert asyncio.run(main()).results[0].message == "pong"


def test_phase_and_check_names_are_checked() -> None:
    seq = StartupSequence()
    with pytest.raises(UsageError) as info:
        seq.add_check("dependecies", lambda: None)
    assert "did you mean 'dependencies'" in (info.value.hint or "")
    seq.add_check("config", lambda: None, name="x")
    with pytest.raises(UsageError):
        seq.add_check("config", lambda: None, name="x")
    with pytest.raises(UsageError):
        seq.add_check("config", lambda: None, name="y", timeout=0)
    with pytest.raises(UsageError):
        seq.add_phase("auth")
    seq.add_phase("migrations", after="config")
    assert seq.phases == ("config", "migrations", "auth", "dependencies")


def test_decorator_adds_and_returns_the_function() -> None:
    seq = StartupSequence()

    @seq.check("dependencies", timeout=1)
    def cache() -> None:
        return None

    assert cache() is None
    assert [c.name for c in seq.checks("dependencies")] == ["cache"]
    assert seq.checks("dependencies")[0].timeout == 1


def test_report_json_shape() -> None:
    seq = StartupSequence()
    seq.add_check("auth", lambda: False, name="broken")
    data = seq.run().to_dict()
    assert data["ok"] is False
    assert data["failed_phase"] == "auth"
    assert data["skipped"] == ["dependencies"]
    assert set(data["failures"][0]) == {
        "phase",
        "check",
        "key",
        "rule",
        "severity",
        "message",
        "hint",
        "source",
    }
    assert "duration_ms" in data
    assert "duration_ms" not in seq.run().to_dict(timing=False)
