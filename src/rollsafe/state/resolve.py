"""Which state store a command uses, and what happens when it cannot be reached.

Precedence: ``--state`` > ``ROLLSAFE_STATE`` > the manifest's top-level ``state:`` >
``journal.sqlite3`` in the state directory (``ROLLSAFE_HOME`` or ``.rollsafe/`` beside the
manifest). A relative ``sqlite:PATH`` starts at the working directory when it comes from
the command line or the environment, at the manifest's directory when the manifest says it.

A PostgreSQL store that cannot be reached when a command starts:

- a command that changes the platform (``deploy``, ``rollback``) in a strict environment
  is refused before any change (exit 1);
- elsewhere it warns and keeps its journal in the local SQLite file, which
  ``rollsafe state migrate`` copies to the shared store later;
- a command that only reads (``history``, ``status``, ``locks``, ``unlock``) fails (exit 1).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rollsafe.manifest import ResolvedEnvironment
from rollsafe.state._spool import SPOOL_DIR_NAME
from rollsafe.state.base import StateStore, StateUnavailableError
from rollsafe.state.journal import JOURNAL_FILE, DeployJournal
from rollsafe.state.paths import ensure_state_dir, state_dir_for
from rollsafe.state.spec import StateSpec, open_state_store, parse_state_spec

__all__ = ["STATE_ENV", "StateChoice", "choose_state", "open_journal", "open_store"]

#: the environment variable naming the state store (as ``--state`` does)
STATE_ENV = "ROLLSAFE_STATE"

Warn = Callable[[str], None]


@dataclass(frozen=True)
class StateChoice:
    """The chosen store, where the choice came from, and the local state directory."""

    spec: StateSpec
    #: ``--state``, ``ROLLSAFE_STATE``, ``rollsafe.yaml: state`` or ``default``
    source: str
    state_dir: Path

    @property
    def redacted(self) -> str:
        """The store for messages: a path, or a URL without its password."""
        return self.spec.redacted


def choose_state(
    manifest_path: Path,
    *,
    option: str | None = None,
    manifest_state: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> StateChoice:
    """The store a command on ``manifest_path`` uses (see the module's precedence).

    ``option`` is ``--state``. The CLI reads ``ROLLSAFE_STATE`` into it too (typer's
    envvar): a value equal to the variable's is named after the variable.
    """
    env = os.environ if environ is None else environ
    state_dir = state_dir_for(manifest_path)
    from_env = env.get(STATE_ENV) or None
    cwd = Path.cwd()
    if option is not None:
        source = STATE_ENV if option == from_env else "--state"
        raw, base = option, cwd
    elif from_env is not None:
        raw, source, base = from_env, STATE_ENV, cwd
    elif manifest_state is not None:
        raw, source, base = manifest_state, f"{manifest_path.name}: state", manifest_path.parent
    else:
        raw, source, base = None, "default", manifest_path.parent
    spec = parse_state_spec(raw, base_dir=base, state_dir=state_dir, source=source)
    return StateChoice(spec, source, state_dir)


def open_store(choice: StateChoice) -> StateStore:
    """Open the chosen store; one that cannot be reached raises ``StateUnavailableError``
    naming it (redacted) and where it was chosen."""
    try:
        return open_state_store(choice.spec)
    except StateUnavailableError as exc:
        raise StateUnavailableError(
            f"{exc.message} (the state store chosen by {choice.source})",
            hint=exc.hint or "check that the database runs and that this machine may reach it",
        ) from exc


@contextlib.contextmanager
def open_journal(
    env: ResolvedEnvironment,
    *,
    option: str | None = None,
    changes: bool = False,
    on_warning: Warn | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[DeployJournal]:
    """The journal a command on ``env`` uses, closed (with its store) after.

    ``changes``: the command changes the platform (``deploy``, ``rollback``); an
    unreachable PostgreSQL store then refuses it in a strict environment and falls back to
    the local SQLite journal elsewhere (with a warning). Without ``changes`` it raises.
    Writes the store loses later go to the spool in the state directory.
    """
    warn = on_warning or _ignore
    choice = choose_state(
        env.manifest_path, option=option, manifest_state=env.state, environ=environ
    )
    try:
        store = open_store(choice)
    except StateUnavailableError as exc:
        if not changes or choice.spec.kind != "postgresql":
            raise
        store = _fallback(env, choice, exc, warn)
    try:
        spool_dir = choice.state_dir / SPOOL_DIR_NAME
        journal = DeployJournal(store, spool_dir=spool_dir, on_warning=warn)
    except BaseException:
        store.close()
        raise
    try:
        yield journal
    finally:
        journal.close()
        store.close()


def _fallback(
    env: ResolvedEnvironment, choice: StateChoice, exc: StateUnavailableError, warn: Warn
) -> StateStore:
    """The local SQLite journal instead of an unreachable PostgreSQL one (non-strict)."""
    cause = exc.__cause__ if isinstance(exc.__cause__, StateUnavailableError) else exc
    if env.strict:
        raise StateUnavailableError(
            f"{exc.message}; {env.name} is strict: without the shared journal and its lock "
            "another deploy could run at once, so this one is refused; nothing was changed",
            hint=cause.hint or "start the database or fix the URL, then run again",
        ) from exc
    local = ensure_state_dir(choice.state_dir) / JOURNAL_FILE
    from rollsafe.state.sqlite import SQLiteStateStore

    store = SQLiteStateStore(local)
    warn(
        f"{exc.message}; {env.name} is not strict: this run's journal and lock are in the "
        f"local {local} instead (other machines neither see it nor are kept out); copy its "
        f"records later with: rollsafe state migrate --from sqlite:{local} "
        f"--to {choice.redacted}"
    )
    return store


def _ignore(_message: str) -> None:
    """No one listens for warnings."""
