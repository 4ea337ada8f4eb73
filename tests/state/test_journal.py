from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rollsafe.state.journal import DeployJournal, DeployLockedError


def _begin(journal: DeployJournal, service: str = "api") -> object:
    return journal.begin(env="staging", service=service, checks="passed", reason=None, image=None)


def test_record_is_written_before_each_stage(tmp_path: Path) -> None:
    with DeployJournal(tmp_path) as journal:
        record = journal.begin(
            env="staging", service="api", checks="forced", reason="INC-1", image="img:1"
        )
        journal.stage(record, "preflight")
        # a second connection sees it at once: a crash now loses nothing
        with DeployJournal(tmp_path) as other:
            (seen,) = other.history("staging")
            assert seen.stage == "preflight"
            assert seen.in_progress
            assert seen.to_dict()["forced"] is True
            assert seen.reason == "INC-1"
        journal.stage_done(record, True)
        journal.finish(record, "succeeded", 0, "ok")
        (done,) = journal.history("staging", "api")
        assert done.outcome == "succeeded"
        assert done.stages[0]["stage"] == "preflight"
        assert done.stages[0]["ok"] is True


def test_concurrent_deploy_is_refused_and_names_the_holder(tmp_path: Path) -> None:
    with DeployJournal(tmp_path) as journal:
        first = journal.begin(
            env="staging", service="api", checks="passed", reason=None, image=None
        )
        second = journal.begin(
            env="staging", service="api", checks="passed", reason=None, image=None
        )
        with journal.lock("staging", "api", first):
            with pytest.raises(DeployLockedError) as info:
                journal.acquire("staging", "api", second)
            assert first.id in info.value.message
            assert first.user in info.value.message
            # another service is not blocked
            other = journal.begin(
                env="staging", service="web", checks="passed", reason=None, image=None
            )
            with journal.lock("staging", "web", other):
                pass
        with journal.lock("staging", "api", second):
            pass


def test_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from rollsafe.state.journal import DeployJournal\n"
        "j = DeployJournal(Path(sys.argv[1]))\n"
        "r = j.begin(env='staging', service='api', checks='passed', reason=None, image=None)\n"
        "j.acquire('staging', 'api', r); j.stage(r, 'create'); print(r.id)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    dead_id = out.stdout.strip()
    with DeployJournal(tmp_path) as journal:
        (interrupted,) = journal.interrupted("staging", "api")
        assert interrupted.id == dead_id
        assert interrupted.pid != os.getpid()
        record = journal.begin(
            env="staging", service="api", checks="passed", reason=None, image=None
        )
        with journal.lock("staging", "api", record):
            pass


def test_attempt_refused_by_the_lock_is_closed_as_refused(tmp_path: Path) -> None:
    with DeployJournal(tmp_path) as journal:
        holder = journal.begin(
            env="staging", service="api", checks="passed", reason=None, image=None
        )
        refused = journal.begin(
            env="staging", service="api", checks="passed", reason=None, image=None
        )
        with (
            journal.lock("staging", "api", holder),
            pytest.raises(DeployLockedError),
            journal.lock("staging", "api", refused),
        ):
            pytest.fail("the lock was given twice")
        seen = journal.get(refused.id)
        assert seen is not None
        assert (seen.outcome, seen.exit_code) == ("refused", 1)
        assert holder.id in (seen.message or "")
        # only the holder ever ran: nothing is left to reconcile or listed as running
        assert [r.id for r in journal.history("staging") if r.in_progress] == [holder.id]


def test_record_round_trips_its_json_fields(tmp_path: Path) -> None:
    with DeployJournal(tmp_path) as journal:
        record = journal.begin(
            env="staging", service="api", checks="forced", reason="INC-2", image=None
        )
        journal.update(record, previous_split={"api-1": 90, "api-2": 10}, findings={"error": 2})
        journal.finish(record, "rolled-back", 3, "m", {"ok": True, "to": {"api-1": 100}})
    with DeployJournal(tmp_path) as journal:
        seen = journal.get(record.id)
    assert seen is not None
    assert seen.previous_split == {"api-1": 90, "api-2": 10}
    assert seen.findings == {"error": 2}
    assert seen.rollback == {"ok": True, "to": {"api-1": 100}}
    data = seen.to_dict()
    assert (data["forced"], data["reason"], data["exit_code"]) == (True, "INC-2", 3)


def test_a_journal_of_an_older_rollsafe_gains_the_compensation_column(tmp_path: Path) -> None:
    import sqlite3

    from rollsafe.state._sqlite_schema import _V1
    from rollsafe.state.journal import JOURNAL_FILE

    # the schema before compensations, as the first release wrote it (no version table)
    conn = sqlite3.connect(tmp_path / JOURNAL_FILE)
    for statement in _V1:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO deploys (id, env, service, user, host, pid, checks, stage, started,"
        " revision, previous_split, outcome, exit_code, rollback)"
        " VALUES ('old-1', 'staging', 'api', 'ann', 'h', 1, 'passed', 'rollback', 1.0,"
        " 'api-2', '{\"api-1\": 100}', 'rolled-back', 3, '{\"ok\": true}')"
    )
    conn.commit()
    conn.close()
    with DeployJournal(tmp_path) as journal:
        old = journal.get("old-1")
        record = journal.begin(
            env="staging", service="api", checks="passed", reason=None, image=None
        )
        comp = {"kind": "restore", "split": {"api-1": 100}, "tags": {"stable": "api-1"}}
        journal.stage(record, "create", compensation=comp)
    assert old is not None
    assert (old.revision, old.previous_split, old.outcome, old.exit_code) == (
        "api-2",
        {"api-1": 100},
        "rolled-back",
        3,
    )
    assert old.rollback == {"ok": True}
    assert old.compensation is None
    with DeployJournal(tmp_path) as journal:
        seen = journal.get(record.id)
    assert seen is not None
    assert (seen.stage, seen.compensation) == ("create", comp)
