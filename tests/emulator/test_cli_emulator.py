"""`rollsafe emulator start|status|stop`: the last line, the JSON, and nothing left behind."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from rollsafe.cli import app
from rollsafe.platforms import RevisionSpec
from rollsafe.platforms.cloudrun import CloudRunPlatform

SERVE = (
    "import os, http.server as h; "
    "h.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), h.SimpleHTTPRequestHandler)"
    ".serve_forever()"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_status_stop_leave_nothing_behind(tmp_path: Path) -> None:
    runner = CliRunner()
    state = tmp_path / "state"
    started = runner.invoke(app, ["emulator", "start", "--state-dir", str(state)])
    assert started.exit_code == 0, started.output
    last = started.stdout.strip().splitlines()[-1]
    assert last.startswith("endpoint: http://127.0.0.1:")
    endpoint = last.removeprefix("endpoint: ")
    try:
        status = runner.invoke(
            app, ["emulator", "status", "--state-dir", str(state), "--format", "json"]
        )
        data = json.loads(status.stdout)
        assert data["running"] is True
        assert data["endpoint"] == endpoint
        emulator_pid = data["pid"]
        with CloudRunPlatform("cli-test", "us-central1", endpoint=endpoint) as platform:
            spec = RevisionSpec("web", "web-00001-abc", command=("python", "-c", SERVE))
            assert platform.create_revision(spec).url
        with sqlite3.connect(state / "emulator.sqlite3") as conn:
            pgids = [row[0] for row in conn.execute("SELECT pgid FROM processes")]
        assert pgids, "the revision's process group was not recorded"
    finally:
        stopped = runner.invoke(app, ["emulator", "stop", "--state-dir", str(state)])
    assert stopped.exit_code == 0
    assert stopped.stdout.strip() == "stopped"
    assert not _alive(emulator_pid)
    for pgid in pgids:
        assert not _alive(pgid)
    status = runner.invoke(
        app, ["emulator", "status", "--state-dir", str(state), "--format", "json"]
    )
    assert json.loads(status.stdout) == {
        "running": False,
        "endpoint": None,
        "pid": None,
        "state_dir": str(state.resolve()),
    }
