"""A state directory keeps itself out of git: a ``.gitignore`` of ``*`` when it is created."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rollsafe.emulator.state import EmulatorState
from rollsafe.state import GITIGNORE, ensure_state_dir, state_dir_for
from rollsafe.state.journal import DeployJournal


@pytest.mark.parametrize("opener", ["journal", "emulator"])
def test_created_state_dir_is_ignored_by_git(
    opener: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROLLSAFE_HOME", raising=False)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    state_dir = state_dir_for(tmp_path / "rollsafe.yaml")
    if opener == "journal":
        DeployJournal(state_dir).close()
    else:
        EmulatorState.open(state_dir).close()

    assert (state_dir / GITIGNORE).read_text() == "*\n"
    untracked = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert untracked == ""  # neither the key, the database nor the .gitignore itself


def test_rollsafe_home_gets_one_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLSAFE_HOME", str(tmp_path / "home" / "state"))
    assert ensure_state_dir(state_dir_for()) == tmp_path / "home" / "state"
    assert (tmp_path / "home" / "state" / GITIGNORE).read_text() == "*\n"


def test_a_gitignore_already_there_is_kept(tmp_path: Path) -> None:
    (tmp_path / GITIGNORE).write_text("journal.sqlite3\n")
    ensure_state_dir(tmp_path)
    assert (tmp_path / GITIGNORE).read_text() == "journal.sqlite3\n"
