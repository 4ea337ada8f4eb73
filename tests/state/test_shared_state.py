"""The journal over a shared store: locks naming their holder, the spool, choosing the store.

PostgreSQL is the test cluster (``postgres_url``); its password comes from ``PGPASSWORD``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollsafe.errors import ManifestError
from rollsafe.manifest import load_manifest
from rollsafe.state.base import StateUnavailableError
from rollsafe.state.journal import DeployJournal, DeployLockedError
from rollsafe.state.memory import MemoryStateStore
from rollsafe.state.postgresql import PostgresStateStore
from rollsafe.state.resolve import choose_state, open_journal
from tests._postgres import PostgresCluster

GITHUB = {
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "netra/app",
    "GITHUB_RUN_ID": "4242",
}


@pytest.fixture
def pg(postgres_url: str, postgres_password: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PGPASSWORD", postgres_password)
    return postgres_url


@pytest.fixture
def journal(pg: str, tmp_path: Path) -> Iterator[DeployJournal]:
    warnings: list[str] = []
    with PostgresStateStore(pg) as store:
        journal = DeployJournal(store, spool_dir=tmp_path / "spool", on_warning=warnings.append)
        journal.warnings = warnings  # type: ignore[attr-defined]
        yield journal


def _begin(journal: DeployJournal, service: str = "api") -> object:
    return journal.begin(env="staging", service=service, checks="passed", reason=None, image=None)


def test_a_refused_deploy_names_the_holder_and_its_ci_job(
    pg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in GITHUB.items():
        monkeypatch.setenv(name, value)
    with PostgresStateStore(pg) as first, PostgresStateStore(pg) as second:
        holder_journal = DeployJournal(first, spool_dir=tmp_path)
        other = DeployJournal(second, spool_dir=tmp_path)
        holder = holder_journal.begin(
            env="staging", service="api", checks="passed", reason=None, image=None
        )
        assert holder.ci_url == "https://github.com/netra/app/actions/runs/4242"
        assert holder.session == first.session
        refused = other.begin(
            env="staging", service="api", checks="passed", reason=None, image=None
        )
        with holder_journal.lock("staging", "api", holder):
            with pytest.raises(DeployLockedError) as info, other.lock("staging", "api", refused):
                pytest.fail("the lock was given twice")
            message = info.value.message
            assert message.startswith("another deploy of api to staging is running: deploy ")
            assert (
                f"{holder.id} by {holder.user} on {holder.host} (pid {holder.pid}, since "
                in message
            )
            assert holder.ci_url in message
            (lock,) = other.locks("staging")
            assert (lock.deploy_id, lock.held, lock.ci_url) == (holder.id, True, holder.ci_url)
        seen = other.get(refused.id)
        assert seen is not None
        assert (seen.outcome, seen.exit_code) == ("refused", 1)
        # released: the other takes it
        with other.lock("staging", "api", refused):
            pass


def test_interrupted_means_the_writer_session_is_gone(pg: str, tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from rollsafe.state.journal import DeployJournal
        from rollsafe.state.postgresql import PostgresStateStore
        j = DeployJournal(PostgresStateStore(sys.argv[1]), spool_dir=Path(sys.argv[2]))
        r = j.begin(env='staging', service='api', checks='passed', reason=None, image=None)
        j.acquire('staging', 'api', r); j.stage(r, 'create')
        print(r.id, flush=True)
        os._exit(0)  # no close: the lock and the session end with the process
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, pg, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    dead = out.stdout.strip()
    with PostgresStateStore(pg) as store:
        journal = DeployJournal(store, spool_dir=tmp_path)
        alive = _begin(journal)
        (interrupted,) = journal.interrupted("staging", "api")
        assert interrupted.id == dead
        assert alive.id != dead  # type: ignore[attr-defined]
        (lock,) = journal.locks("staging")
        assert (lock.deploy_id, lock.held) == (dead, False)
        # a stale lock is taken over by the next deploy
        with journal.lock("staging", "api", alive):  # type: ignore[arg-type]
            (lock,) = journal.locks("staging")
            assert lock.held


def test_writes_are_spooled_while_the_database_is_down_and_replayed_after(
    journal: DeployJournal, postgres_cluster: PostgresCluster, pg: str, tmp_path: Path
) -> None:
    record = _begin(journal)
    journal.stage(record, "create", compensation={"kind": "delete"})  # type: ignore[arg-type]
    postgres_cluster.stop()
    try:
        # the deploy goes on: every write returns, none raises
        journal.stage_done(record, True)  # type: ignore[arg-type]
        journal.stage(record, "shift")  # type: ignore[arg-type]
        journal.finish(record, "succeeded", 0, "done")  # type: ignore[arg-type]
        journal.release("staging", "api", record.id)  # type: ignore[attr-defined]
        assert journal.spooling
        assert len(journal.warnings) == 1  # type: ignore[attr-defined]
        assert "unreachable" in journal.warnings[0]  # type: ignore[attr-defined]
        assert journal.spool.pending() == 3
        lines = [json.loads(line) for line in journal.spool.path.read_text().splitlines()]
        assert [r["record"]["stage"] for r in lines] == ["create", "shift", "shift"]
        with pytest.raises(StateUnavailableError):
            journal.history("staging")
    finally:
        postgres_cluster.start()
    warnings: list[str] = []
    with PostgresStateStore(pg) as store:
        DeployJournal(store, spool_dir=tmp_path / "spool", on_warning=warnings.append)
        assert warnings == ["replayed 3 journal writes spooled while DB was unreachable"]
        seen = store.get_record(record.id)  # type: ignore[attr-defined]
        assert seen is not None
        assert (seen.outcome, seen.stage, seen.compensation) == (
            "succeeded",
            "shift",
            {"kind": "delete"},
        )
        assert not journal.spool.path.exists()
        # replaying twice changes nothing, and an empty spool says nothing
        DeployJournal(store, spool_dir=tmp_path / "spool", on_warning=warnings.append)
        assert len(warnings) == 1


def test_a_replay_never_reopens_a_record_closed_meanwhile(pg: str, tmp_path: Path) -> None:
    from rollsafe.state._spool import Spool

    with PostgresStateStore(pg) as store:
        journal = DeployJournal(store, spool_dir=tmp_path)
        record = _begin(journal)
        spool = Spool(tmp_path, store.location)
        spool.append(record)  # type: ignore[arg-type]
        # another machine reconciled it while this spool waited
        journal.finish(record, "interrupted", 3, "reconciled: ...")  # type: ignore[arg-type]
        assert spool.replay(store) == 1
        seen = store.get_record(record.id)  # type: ignore[attr-defined]
        assert seen is not None
        assert seen.outcome == "interrupted"


def test_a_path_keeps_todays_sqlite_journal(tmp_path: Path) -> None:
    with DeployJournal(tmp_path) as journal:
        assert journal.path == tmp_path / "journal.sqlite3"
        assert journal.store.kind == "sqlite"
        record = _begin(journal)
        assert record.session == journal.store.session  # type: ignore[attr-defined]
    assert (tmp_path / ".gitignore").exists()


def test_status_lock_is_short_lived_and_names_a_live_holder() -> None:
    with MemoryStateStore() as store:
        journal = DeployJournal(store, spool_dir=Path("/nonexistent"))
        with journal.try_lock("staging", "api", "status") as holder:
            assert holder is None
            (lock,) = journal.locks("staging")
            assert lock.deploy_id.startswith("status-")
        assert journal.locks("staging") == []
        record = _begin(journal)
        with journal.lock("staging", "api", record):  # type: ignore[arg-type]
            # the same store's session: another process would see this holder as alive
            with MemoryStateStore() as other_store:
                other = DeployJournal(other_store, spool_dir=Path("/nonexistent"))
                assert other.locks("staging") == []  # separate worlds
            with journal.try_lock("staging", "api", "status") as holder:
                assert holder is not None
                assert holder.deploy_id == record.id  # type: ignore[attr-defined]


# -- choosing the store --

_MANIFEST = """
version: 1
project: netra
{state}environments:
  dev: {{platform: local, strict: false}}
services: {{}}
"""


def _manifest(tmp_path: Path, state: str = "") -> Path:
    path = tmp_path / "rollsafe.yaml"
    path.write_text(_MANIFEST.format(state=state), encoding="utf-8")
    return path


CHOICES = [
    # (--state, ROLLSAFE_STATE, manifest state:, expected kind and source)
    ("sqlite:cli.db", "sqlite:env.db", "sqlite:manifest.db", ("cli.db", "--state")),
    (None, "sqlite:env.db", "sqlite:manifest.db", ("env.db", "ROLLSAFE_STATE")),
    (None, None, "sqlite:manifest.db", ("manifest.db", "rollsafe.yaml: state")),
    (None, None, None, ("journal.sqlite3", "default")),
]


@pytest.mark.parametrize(
    ("option", "environ", "manifest", "expected"),
    CHOICES,
    ids=["option-first", "env-next", "manifest-next", "default"],
)
def test_the_state_store_is_chosen_by_precedence(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    option: str | None,
    environ: str | None,
    manifest: str | None,
    expected: tuple[str, str],
) -> None:
    monkeypatch.delenv("ROLLSAFE_HOME", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    path = _manifest(tmp_path, f"state: {manifest}\n" if manifest else "")
    env = {"ROLLSAFE_STATE": environ} if environ else {}
    choice = choose_state(
        path, option=option, manifest_state=load_manifest(path).model.state, environ=env
    )
    name, source = expected
    assert choice.spec.kind == "sqlite"
    assert choice.spec.path is not None
    assert (choice.spec.path.name, choice.source) == (name, source)
    # the manifest's relative paths start at its folder, the command line's at the cwd
    base = tmp_path if source in ("rollsafe.yaml: state", "default") else work
    assert choice.spec.path.parent in (base, base / ".rollsafe")


def test_a_password_in_the_manifest_is_refused_without_repeating_it(tmp_path: Path) -> None:
    secret = "PgCanaryManifest5b7d"
    path = _manifest(tmp_path, f"state: postgresql://rollsafe:{secret}@127.0.0.1:5432/db\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    error = info.value
    assert (error.file, error.line, error.key_path) == (str(path), 4, "state")
    text = f"{error} {error.hint}"
    assert secret not in text
    for source in ("PGPASSWORD", ".pgpass", "ROLLSAFE_STATE_PASSWORD"):
        assert source in (error.hint or "")


def test_read_commands_fail_on_an_unreachable_database(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://rollsafe@127.0.0.1:{port}/db"
    env = load_manifest(_manifest(tmp_path)).resolve("dev")
    with pytest.raises(StateUnavailableError) as info, open_journal(env, option=url):
        pytest.fail("opened")
    assert f"127.0.0.1:{port}" in info.value.message
    assert "--state" in info.value.message


def test_a_spool_line_torn_by_a_crash_is_skipped(tmp_path: Path) -> None:
    from rollsafe.state._spool import Spool

    with MemoryStateStore() as store:
        journal = DeployJournal(store, spool_dir=tmp_path)
        first = journal.begin(
            env="staging", service="api", checks="passed", reason=None, image=None
        )
        second = journal.begin(
            env="staging", service="web", checks="passed", reason=None, image=None
        )
        spool = Spool(tmp_path, store.location)
        spool.append(first)
        with spool.path.open("a", encoding="utf-8") as handle:
            handle.write('{"record": {"id": "torn", "env"')  # killed mid-line
        spool.append(second)
        journal.finish(second, "succeeded", 0, "ok")  # the store is ahead of the spool
        assert spool.pending() == 3
        warnings: list[str] = []
        DeployJournal(store, spool_dir=tmp_path, on_warning=warnings.append)
        assert warnings == ["replayed 3 journal writes spooled while DB was unreachable"]
        assert store.get_record("torn") is None
        assert [r.id for r in store.list_records("staging")] == [second.id, first.id]
        assert store.get_record(second.id).outcome == "succeeded"  # type: ignore[union-attr]
        assert not spool.path.exists()
