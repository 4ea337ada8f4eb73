"""`emulator stop` and the sweep signal only processes they can prove are their own.

A state file outlives what it names; here it names a live, unrelated process (a ``sleep``
this test started), which must survive. The emulator's own processes still stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollsafe.emulator._ownership import (
    INSTANCE_ENV,
    ensure_processes_table,
    instance_id,
    owned_group,
    start_time,
)
from rollsafe.emulator.server import RUN_FILE, start_emulator, stop_emulator
from rollsafe.platforms import RevisionSpec
from rollsafe.platforms.cloudrun import CloudRunPlatform


@pytest.fixture
def unrelated() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is none of the emulator's, in a group of its own."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               start_new_session=True)  # fmt: skip
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _processes_rows(state_dir: Path, rows: list[tuple[int, str, int | None, str]]) -> None:
    with contextlib.closing(sqlite3.connect(state_dir / "emulator.sqlite3")) as conn:
        ensure_processes_table(lambda sql: conn.execute(sql).fetchall())
        conn.executemany(
            "INSERT INTO processes (pgid, revision, started, start_time, instance) "
            "VALUES (?, ?, '2026-01-01T00:00:00+00:00', ?, ?)",
            rows,
        )
        conn.commit()


@pytest.mark.parametrize(
    "recorded",
    [
        pytest.param(None, id="no-start-time"),
        pytest.param(1, id="other-start-time"),
    ],
)
def test_stop_with_a_stale_run_file_leaves_an_unrelated_process_alive(
    tmp_path: Path, unrelated: subprocess.Popen[bytes], recorded: int | None
) -> None:
    run = {"pid": unrelated.pid, "port": 1, "endpoint": "http://127.0.0.1:1"}
    if recorded is not None:
        run["start_time"] = recorded
    (tmp_path / RUN_FILE).write_text(json.dumps(run))

    assert stop_emulator(tmp_path, timeout=1) is False

    assert unrelated.poll() is None, "emulator stop signalled a process it does not own"
    assert not (tmp_path / RUN_FILE).exists()  # the stale file is gone


def test_sweep_leaves_an_unrelated_group_alive(
    tmp_path: Path, unrelated: subprocess.Popen[bytes]
) -> None:
    started = start_time(unrelated.pid)
    assert started is not None
    # its start time is right, but it carries no marker of this state directory
    _processes_rows(tmp_path, [(unrelated.pid, "p/l/s/web-00001", started, instance_id(tmp_path))])
    assert not owned_group(unrelated.pid, started, instance_id(tmp_path))

    stop_emulator(tmp_path, timeout=1)

    assert unrelated.poll() is None, "the sweep killed a group it does not own"
    with contextlib.closing(sqlite3.connect(tmp_path / "emulator.sqlite3")) as conn:
        assert conn.execute("SELECT COUNT(*) FROM processes").fetchone() == (0,)


def test_a_marked_group_with_its_start_time_is_ours(tmp_path: Path) -> None:
    env = {**os.environ, INSTANCE_ENV: instance_id(tmp_path)}
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               env=env, start_new_session=True)  # fmt: skip
    try:
        started = start_time(process.pid)
        assert owned_group(process.pid, started, instance_id(tmp_path))
        assert not owned_group(process.pid, started, instance_id(tmp_path / "other"))
        assert started is not None
        assert not owned_group(process.pid, started + 1, instance_id(tmp_path))
        _processes_rows(tmp_path, [(process.pid, "p/l/s/web-00001", started, "x")])

        stop_emulator(tmp_path, timeout=1)  # the sweep

        assert process.wait(timeout=10) == -9
    finally:
        process.kill()
        process.wait()


def test_stop_still_stops_the_emulator_and_its_revisions(tmp_path: Path) -> None:
    status = start_emulator(tmp_path)
    assert status.endpoint is not None
    assert status.pid is not None
    run = json.loads((tmp_path / RUN_FILE).read_text())
    assert run["start_time"] == start_time(status.pid)
    serve = "import http.server as h; h.HTTPServer(('127.0.0.1', int(__import__('os').environ['PORT'])), h.SimpleHTTPRequestHandler).serve_forever()"
    try:
        with CloudRunPlatform("own", "us-central1", endpoint=status.endpoint) as platform:
            platform.create_revision(
                RevisionSpec("web", "web-00001-abc", command=("python", "-c", serve))
            )
        with contextlib.closing(sqlite3.connect(tmp_path / "emulator.sqlite3")) as conn:
            rows = conn.execute("SELECT pgid, start_time, instance FROM processes").fetchall()
        [(pgid, started, instance)] = rows
        assert instance == instance_id(tmp_path)
        assert owned_group(pgid, started, instance)
    finally:
        assert stop_emulator(tmp_path) is True
    assert start_time(status.pid) is None
    assert start_time(pgid) is None
    assert (tmp_path / ".gitignore").read_text() == "*\n"


def test_an_older_processes_table_gains_the_proof_columns(
    tmp_path: Path, unrelated: subprocess.Popen[bytes]
) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "emulator.sqlite3")) as conn:
        conn.execute(
            "CREATE TABLE processes (pgid INTEGER PRIMARY KEY, revision TEXT NOT NULL, "
            "started TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO processes VALUES (?, 'p/l/s/web-00001', 'then')", (unrelated.pid,)
        )
        conn.commit()

    stop_emulator(tmp_path, timeout=1)  # the sweep: a row without proof is only dropped

    assert unrelated.poll() is None
    with contextlib.closing(sqlite3.connect(tmp_path / "emulator.sqlite3")) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(processes)")}
        assert {"start_time", "instance"} <= columns
        assert conn.execute("SELECT COUNT(*) FROM processes").fetchone() == (0,)
