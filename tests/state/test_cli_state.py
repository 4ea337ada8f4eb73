"""``rollsafe locks``, ``unlock`` and ``state migrate`` on SQLite and PostgreSQL, and the
database password in no output of any command, the database up or down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from rollsafe.cli import app
from rollsafe.state.journal import DeployJournal
from rollsafe.state.resolve import choose_state, open_store
from rollsafe.state.spec import parse_state_spec
from tests._postgres import PostgresCluster

_MANIFEST = """
version: 1
project: netra
environments:
  staging: {platform: local, strict: true}
services: {}
"""

# takes the lock of staging/api in the store named by argv[1], then ends without
# releasing it (os._exit: no close): on SQLite its pid is gone, on PostgreSQL its session
_HOLDER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from rollsafe.state.journal import DeployJournal
    from rollsafe.state.spec import open_state_store, parse_state_spec
    spec = parse_state_spec(sys.argv[1], base_dir=Path.cwd(), state_dir=Path.cwd(), source="x")
    j = DeployJournal(open_state_store(spec), spool_dir=Path(sys.argv[2]))
    r = j.begin(env="staging", service="api", checks="passed", reason=None, image=None)
    j.acquire("staging", "api", r)
    print(r.id, os.getpid(), flush=True)
    os._exit(0)
    """
)


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ROLLSAFE_HOME", raising=False)
    monkeypatch.delenv("ROLLSAFE_STATE", raising=False)
    path = tmp_path / "rollsafe.yaml"
    path.write_text(_MANIFEST, encoding="utf-8")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state spec of each backend (PostgreSQL's password in ``PGPASSWORD``)."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'shared' / 'journal.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("PGPASSWORD", request.getfixturevalue("postgres_password"))
    return url


def _cli(manifest: Path, *args: str, state: str | None = None) -> Result:
    head = 2 if args[0] == "state" else 1  # `state migrate` is a command group's
    argv = [*args[:head], "-f", str(manifest), *args[head:]]
    if state is not None:
        argv += ["--state", state]
    return CliRunner().invoke(app, argv)


def _dead_holder(state: str, tmp_path: Path) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _HOLDER, state, str(tmp_path / "holder-spool")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    deploy_id, pid = out.stdout.split()
    return deploy_id, int(pid)


@pytest.fixture
def journal(state: str, manifest: Path) -> Iterator[DeployJournal]:
    choice = choose_state(manifest, option=state)
    with open_store(choice) as store:
        yield DeployJournal(store, spool_dir=manifest.parent / "spool")


def test_locks_lists_a_held_lock_with_its_holder(
    state: str, manifest: Path, journal: DeployJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = _cli(manifest, "locks", "--env", "staging", state=state)
    assert empty.exit_code == 0, empty.output
    assert "no deploy locks in staging" in empty.output
    monkeypatch.setenv("CI_JOB_URL", "https://gitlab.example.com/netra/app/-/jobs/77")
    record = journal.begin(env="staging", service="api", checks="passed", reason=None, image=None)
    with journal.lock("staging", "api", record):
        shown = _cli(manifest, "locks", "--env", "staging", "--format", "json", state=state)
        assert shown.exit_code == 0, shown.output
        data = json.loads(shown.stdout)
        (lock,) = data["locks"]
        assert lock == {
            "env": "staging",
            "service": "api",
            "deploy_id": record.id,
            "user": record.user,
            "host": record.host,
            "pid": os.getpid(),
            "since": lock["since"],
            "ci_url": "https://gitlab.example.com/netra/app/-/jobs/77",
            "held": True,
        }
        text = _cli(manifest, "locks", "--env", "staging", state=state)
        assert f"api: held: deploy {record.id} by {record.user}" in text.stdout
        assert "jobs/77" in text.stdout
        # a live holder is never broken
        refused = _cli(
            manifest, "unlock", "--env", "staging", "-s", "api", "--reason", "x", state=state
        )
        assert refused.exit_code == 1
        assert "live holder" in refused.output
        assert record.id in refused.output


def test_unlock_breaks_a_stale_lock_and_records_why(
    state: str, manifest: Path, tmp_path: Path, journal: DeployJournal
) -> None:
    dead_id, dead_pid = _dead_holder(state, tmp_path)
    shown = _cli(manifest, "locks", "--env", "staging", "--format", "json", state=state)
    (lock,) = json.loads(shown.stdout)["locks"]
    assert (lock["deploy_id"], lock["pid"], lock["held"]) == (dead_id, dead_pid, False)
    assert "stale" in _cli(manifest, "locks", "--env", "staging", state=state).stdout

    missing = _cli(manifest, "unlock", "--env", "staging", "-s", "api", state=state)
    assert missing.exit_code == 2  # --reason is required
    broken = _cli(
        manifest, "unlock", "--env", "staging", "-s", "api", "--reason", "runner lost", state=state
    )
    assert broken.exit_code == 0, broken.output
    assert dead_id in broken.stdout
    assert journal.locks("staging") == []
    (record,) = [r for r in journal.history("staging") if r.checks == "unlock"]
    assert (record.outcome, record.reason, record.exit_code) == ("unlocked", "runner lost", 0)
    assert dead_id in (record.message or "")
    history = _cli(manifest, "history", "--env", "staging", state=state)
    assert "unlocked" in history.stdout
    assert "runner lost" in history.stdout

    again = _cli(
        manifest, "unlock", "--env", "staging", "-s", "api", "--reason", "again", state=state
    )
    assert again.exit_code == 0
    assert "nothing to break" in again.stdout


def test_state_migrate_twice_copies_once(
    manifest: Path,
    tmp_path: Path,
    postgres_url: str,
    postgres_password: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", postgres_password)
    local = tmp_path / ".rollsafe"
    with DeployJournal(local) as journal:
        ids = []
        for service in ("api", "web", "api"):
            record = journal.begin(
                env="staging", service=service, checks="passed", reason=None, image=None
            )
            journal.finish(record, "succeeded", 0, "ok")
            ids.append(record.id)
        other = journal.begin(env="prod", service="api", checks="passed", reason=None, image=None)
        ids.append(other.id)  # still in progress here
        journal.store.kv_put("monitor", "api", {"state": "up"})
    source = f"sqlite:{local / 'journal.sqlite3'}"
    first = _cli(manifest, "state", "migrate", "--from", source, "--to", postgres_url)
    assert first.exit_code == 0, first.output
    assert "4 copied, 0 updated, 0 unchanged" in first.stdout
    assert "key/value entries: 1 copied" in first.stdout
    again = _cli(
        manifest, "state", "migrate", "--from", source, "--to", postgres_url, "--format", "json"
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) | {"from": "", "to": ""} == {
        "from": "",
        "to": "",
        "copied": 0,
        "updated": 0,
        "unchanged": 4,
        "kv_copied": 0,
        "kv_unchanged": 1,
    }
    # the source saw the end of the prod deploy later: the target's open record is updated
    with DeployJournal(local) as journal:
        record = journal.get(other.id)
        assert record is not None
        journal.finish(record, "interrupted", 3, "reconciled: ...")
    third = _cli(manifest, "state", "migrate", "--from", source, "--to", postgres_url)
    assert "0 copied, 1 updated, 3 unchanged" in third.stdout
    spec = parse_state_spec(postgres_url, base_dir=tmp_path, state_dir=tmp_path, source="x")
    with open_store(choose_state(manifest, option=postgres_url)) as store:
        assert store.location == spec.redacted
        found = [r.id for env in ("staging", "prod") for r in store.list_records(env, None, 100)]
        assert sorted(found) == sorted(ids)  # no duplicates
        assert store.kv_get("monitor", "api") == ({"state": "up"}, 1)


def test_the_password_appears_in_no_output_journal_or_state_file(
    manifest: Path,
    tmp_path: Path,
    postgres_cluster: PostgresCluster,
    postgres_url: str,
    postgres_password: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every state command, with the password in ROLLSAFE_STATE_PASSWORD, then in the URL
    itself; the database up, then down."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("ROLLSAFE_STATE_PASSWORD", postgres_password)
    inline = postgres_url.replace("rollsafe@", f"rollsafe:{postgres_password}@", 1)
    assert postgres_password in inline
    dead_id, _ = _dead_holder(inline, tmp_path)
    local = f"sqlite:{tmp_path / '.rollsafe' / 'journal.sqlite3'}"
    commands = [
        ("locks", "--env", "staging"),
        ("locks", "--env", "staging", "--format", "json"),
        ("history", "--env", "staging", "--format", "json"),
        ("unlock", "--env", "staging", "-s", "api", "--reason", "gone"),
        ("unlock", "--env", "staging", "-s", "nothing", "--reason", "gone"),
    ]
    outputs: list[str] = []
    codes: list[int] = []

    def run_all() -> None:
        for url in (postgres_url, inline):
            for command in commands:
                done = _cli(manifest, *command, state=url)
                codes.append(done.exit_code)
                outputs.append(done.output)
            for flags in (("--from", local, "--to", url), ("--from", url, "--to", local)):
                done = _cli(manifest, "state", "migrate", *flags)
                codes.append(done.exit_code)
                outputs.append(done.output)

    run_all()
    assert set(codes) == {0}, outputs
    assert any(dead_id in text for text in outputs)
    postgres_cluster.stop()
    try:
        codes.clear()
        run_all()
        assert set(codes) == {1}, outputs  # a clear error, not a traceback
        assert all("cannot be reached" in text for text in outputs[-14:])
    finally:
        postgres_cluster.start()
    # a refused password in the URL is named without it
    bad = inline.replace(postgres_password, postgres_password[::-1])
    done = _cli(manifest, "locks", "--env", "staging", state=bad)
    assert done.exit_code == 1
    outputs.append(done.output)
    for text in outputs:
        assert postgres_password not in text
        assert "Traceback" not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert postgres_password.encode() not in path.read_bytes(), path
