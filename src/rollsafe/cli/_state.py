"""`locks`, `unlock` and `state migrate`: the deploy locks and the state store."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rollsafe.cli._common import (
    EnvOpt,
    ManifestOpt,
    StateOpt,
    TextJsonOpt,
    app,
    check_text_or_json,
    guarded,
    journal_for,
    out,
)


def _open_env(file: Path, env: str) -> Any:
    from rollsafe.manifest import load_manifest

    return load_manifest(file).resolve(env)


@app.command()
@guarded
def locks(
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    fmt: TextJsonOpt = "text",
    state: StateOpt = None,
) -> None:
    """List the deploy locks of an environment, held or stale, with their holders.

    One lock per service: the holder (user, host, pid, deploy id, since, CI job) and
    whether it still runs (held) or is gone (stale).

    A stale lock is taken over by the next deploy; `rollsafe unlock` breaks it at once.
    Exit 0; 1 when the state store cannot be reached.

    Example: rollsafe locks --env production --format json
    """
    check_text_or_json(fmt)
    resolved = _open_env(file, env)
    with journal_for(resolved, state) as journal:
        where = journal.location
        found = journal.locks(env)
    if fmt == "json":
        data = {"env": env, "state": where, "locks": [lock.to_dict() for lock in found]}
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if not found:
        out.print(
            f"no deploy locks in {env} ({where})", highlight=False, markup=False, soft_wrap=True
        )
    for lock in found:
        mark = "held" if lock.held else "stale (its holder is gone)"
        out.print(
            f"{lock.service}: {mark}: {lock.describe()}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


@app.command()
@guarded
def unlock(
    env: EnvOpt,
    service: Annotated[str, typer.Option("--service", "-s", help="The service.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why the lock is broken (recorded in the journal).")
    ],
    file: ManifestOpt = Path("rollsafe.yaml"),
    state: StateOpt = None,
) -> None:
    """Break a stale deploy lock (its holder is gone), recorded in the journal.

    A stale lock is one whose holder is gone (on SQLite its process ended; on PostgreSQL
    its database session did). The break is recorded in the journal with the reason, and
    `rollsafe history` shows it.

    Exit 0 broken, or nothing to break; 1 the holder still runs (it is named), or the
    state store cannot be reached.

    Example: rollsafe unlock --env staging --service backend --reason 'runner lost, INC-42'
    """
    from rollsafe.errors import UsageError

    if not reason.strip():
        raise UsageError("--reason needs a text", hint="say why, e.g. --reason 'runner lost'")
    resolved = _open_env(file, env)
    with journal_for(resolved, state) as journal:
        broken = journal.break_lock(env, service)
        if broken is None:
            out.print(
                f"no lock of {service} in {env}: nothing to break", highlight=False, soft_wrap=True
            )
            return
        record = journal.record_unlock(broken, reason, cwd=resolved.manifest_path.parent)
    out.print(
        f"broke the stale lock of {service} in {env}, held by {broken.describe()}; "
        f"recorded in the journal as {record.id}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


state_app = typer.Typer(
    name="state",
    help="The state store: the deploy journal, deploy locks and key/value state.",
    no_args_is_help=True,
)
app.add_typer(state_app)


@state_app.command("migrate")
@guarded
def migrate(
    source: Annotated[
        str,
        typer.Option("--from", help="The store to copy from: sqlite:PATH or a PostgreSQL URL."),
    ],
    target: Annotated[
        str,
        typer.Option("--to", help="The store to copy to: a PostgreSQL URL or sqlite:PATH."),
    ],
    file: ManifestOpt = Path("rollsafe.yaml"),
    fmt: TextJsonOpt = "text",
) -> None:
    """Copy every journal record (and key/value entry) from one store to another.

    Idempotent: a record the target lacks is copied; one the target holds still in
    progress while the source's is finished is updated; the rest are left unchanged, so
    running it twice copies nothing twice. Messages show each URL without its password.

    Example: rollsafe state migrate --from sqlite:.rollsafe/journal.sqlite3
    --to postgresql://rollsafe@db.internal:5432/rollsafe
    """
    check_text_or_json(fmt)
    from rollsafe.errors import UsageError
    from rollsafe.state.migrate import migrate_state
    from rollsafe.state.paths import state_dir_for
    from rollsafe.state.resolve import StateChoice, open_store
    from rollsafe.state.spec import parse_state_spec

    state_dir = state_dir_for(file)
    choices = [
        StateChoice(
            parse_state_spec(raw, base_dir=Path.cwd(), state_dir=state_dir, source=flag),
            flag,
            state_dir,
        )
        for raw, flag in ((source, "--from"), (target, "--to"))
    ]
    if choices[0].redacted == choices[1].redacted:
        raise UsageError(
            f"--from and --to are the same store ({choices[0].redacted})",
            hint="name the store to copy from and another to copy to",
        )
    with contextlib.ExitStack() as stack:
        stores = [stack.enter_context(open_store(choice)) for choice in choices]
        counts = migrate_state(stores[0], stores[1])
    if fmt == "json":
        data = {"from": choices[0].redacted, "to": choices[1].redacted, **counts.to_dict()}
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    out.print(
        f"journal records from {choices[0].redacted} to {choices[1].redacted}: "
        f"{counts.copied} copied, {counts.updated} updated, {counts.unchanged} unchanged; "
        f"key/value entries: {counts.kv_copied} copied, {counts.kv_unchanged} unchanged",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
