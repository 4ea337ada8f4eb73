"""The guard in apps written for the test: the four-line app, a slow check, a plain script."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.startup.conftest import (
    WEAK_SECRET,
    assert_no_canary,
    base_env,
    json_lines,
    manifest_vars,
    run_to_exit,
    staging_values,
)

FOUR_LINES = """\
from fastapi import FastAPI
from rollsafe.startup import StartupGuard
app = FastAPI(); StartupGuard.from_env().install(app)
app.get("/")(lambda: {"hello": "world"})
"""

SLOW_CHECK = """\
import asyncio, time
from fastapi import FastAPI
from rollsafe.startup import StartupGuard

guard = StartupGuard.from_env()
app = guard.install(FastAPI())

@guard.check("dependencies", timeout=0.2)
{kind}def database():
    {sleep}
"""

SCRIPT = """\
from rollsafe.startup import StartupGuard
StartupGuard.from_env().run_checks()
print("serving")
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def _weak() -> dict[str, str]:
    return {**manifest_vars(), **staging_values(), "SERVICE_SECRET": WEAK_SECRET}


def test_four_line_app_fail_fast_exits_3(tmp_path: Path) -> None:
    assert len(FOUR_LINES.splitlines()) == 4
    cwd = _write(tmp_path, "four.py", FOUR_LINES)
    code, out, err = run_to_exit(_weak(), cwd=cwd, module="four:app")
    assert code == 3
    critical = [x for x in json_lines(out + err) if x.get("severity") == "CRITICAL"]
    assert len(critical) == 1
    assert critical[0]["failures"][0]["key"] == "SERVICE_SECRET"
    assert "Traceback" not in err  # the server logs the one-line summary, not a traceback
    assert_no_canary(out, err)


def test_four_line_app_degraded_answers_503(serve: Any, tmp_path: Path) -> None:
    cwd = _write(tmp_path, "four.py", FOUR_LINES)
    server = serve({**_weak(), "ROLLSAFE_STARTUP_MODE": "degraded"}, cwd=cwd, module="four:app")
    health = server.get("/health")
    assert health.status == 503
    assert health.json()["status"] == "unhealthy"
    assert health.json()["failures"][0]["rule"] == "machine_secret"
    assert server.get("/").status == 503
    assert_no_canary(server.output())


def test_four_line_app_good_env_serves(serve: Any, tmp_path: Path) -> None:
    cwd = _write(tmp_path, "four.py", FOUR_LINES)
    server = serve({**manifest_vars(), **staging_values()}, cwd=cwd, module="four:app")
    assert server.get("/health").status == 200
    assert server.get("/").json() == {"hello": "world"}


@pytest.mark.parametrize(
    ("kind", "sleep"),
    [("", "time.sleep(30)"), ("async ", "await asyncio.sleep(30)")],
    ids=["sync-check", "async-check"],
)
def test_check_past_its_timeout_fails_its_phase(tmp_path: Path, kind: str, sleep: str) -> None:
    cwd = _write(tmp_path, "slow.py", SLOW_CHECK.format(kind=kind, sleep=sleep))
    env = {**manifest_vars(), **staging_values()}
    code, out, err = run_to_exit(env, cwd=cwd, module="slow:app")
    assert code == 3
    (line,) = [x for x in json_lines(out + err) if x.get("severity") == "CRITICAL"]
    assert line["phase"] == "dependencies"
    assert [(f["check"], f["rule"]) for f in line["failures"]] == [("database", "timeout")]


@pytest.mark.parametrize(
    ("mode", "code"), [("fail_fast", 3), ("degraded", 0)], ids=["fail-fast", "degraded"]
)
def test_run_checks_without_a_server(tmp_path: Path, mode: str, code: int) -> None:
    script = _write(tmp_path, "job.py", SCRIPT) / "job.py"
    env = {**base_env(), **_weak(), "ROLLSAFE_STARTUP_MODE": mode}
    done = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == code, done.stderr
    lines = json_lines(done.stderr)
    assert len(lines) == 1
    assert lines[0]["severity"] == ("CRITICAL" if code else "ERROR")
    assert ("serving" in done.stdout) is (code == 0)
    assert "Traceback" not in done.stderr
    assert_no_canary(done.stdout, done.stderr)


def test_any_server_exits_3_after_a_failed_lifespan(tmp_path: Path) -> None:
    """A server that ignores a failed start-up still ends with code 3 (the guard's timer)."""
    runner = textwrap.dedent(
        """
        import asyncio, time
        from fastapi import FastAPI
        from rollsafe.startup import StartupGuard

        guard = StartupGuard.from_env()
        guard.exit_grace = 0.2
        app = guard.install(FastAPI())

        async def careless_server():
            messages = iter([{"type": "lifespan.startup"}])
            async def receive():
                return next(messages)
            async def send(message):
                pass
            try:
                await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
            except Exception:
                pass
            time.sleep(30)  # goes on as if nothing happened

        asyncio.run(careless_server())
        """
    )
    script = _write(tmp_path, "careless.py", runner) / "careless.py"
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**base_env(), **_weak()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 3
    assert len([x for x in json_lines(done.stderr) if x["severity"] == "CRITICAL"]) == 1
