"""`rollsafe secret ...`: set, rotate, list, versions, enable, disable, destroy.

Values go in from stdin or a file, never from an argument (arguments land in shell history
and in `ps`), and never come out: every output holds names, numbers and states only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rollsafe.cli._common import (
    EnvOpt,
    ManifestOpt,
    TextJsonOpt,
    app,
    check_text_or_json,
    err,
    guarded,
    out,
)
from rollsafe.errors import UsageError

if TYPE_CHECKING:
    from rollsafe.manifest import ResolvedEnvironment
    from rollsafe.secrets import WriteResult
    from rollsafe.stores import SecretStore, VersionState

secret_app = typer.Typer(
    name="secret",
    help=(
        "Manage the secret values of an environment in Secret Manager (the emulator on "
        "platform: local). Values are read from stdin or a file and never printed."
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(secret_app)

NameArg = Annotated[
    str,
    typer.Argument(help="The secret's name in the store ({env} is expanded).", show_default=False),
]
VersionArg = Annotated[int, typer.Argument(min=1, help="The version number.", show_default=False)]


def _open(file: Path, env: str, fmt: str) -> tuple[ResolvedEnvironment, SecretStore]:
    """The environment and its store, once ``--format`` is known good: a usage error is
    reported before the manifest is read or a store is reached."""
    from rollsafe._environments import store_for
    from rollsafe.manifest import load_manifest

    check_text_or_json(fmt)
    resolved = load_manifest(file).resolve(env)
    return resolved, store_for(resolved)


def _json(data: Any) -> None:
    out.print(json.dumps(data, indent=2), markup=False, highlight=False, soft_wrap=True)


def _warn(lines: tuple[str, ...] | list[str]) -> None:
    for line in lines:
        err.print(f"warning: {line}", markup=False, highlight=False)


def _written(result: WriteResult, fmt: str, where: str) -> None:
    if fmt == "json":
        _json(
            {
                "secret": result.secret,
                "version": result.version,
                "created": result.created,
                "store": where,
                "warnings": list(result.warnings),
            }
        )
    else:
        _warn(result.warnings)
        if result.created:
            err.print(f"created secret '{result.secret}' in {where}", markup=False, highlight=False)
        # stdout carries the number alone, so `V=$(rollsafe secret set ...)` works
        out.print(str(result.version), markup=False, highlight=False)


def _read_input(from_file: Path | None, keep_newline: bool) -> bytes:
    from rollsafe.secrets import read_value

    if from_file is not None and str(from_file) != "-":
        try:
            data = from_file.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {from_file}: {exc.strerror}") from None
    elif sys.stdin is None:
        raise UsageError("no value: stdin is closed", hint="pass --from-file PATH")
    elif sys.stdin.isatty():
        import getpass

        # typed at a terminal: hidden, and the Enter key is no part of the value
        data = getpass.getpass("Value (input hidden): ").encode()
    else:
        data = sys.stdin.buffer.read()
    return read_value(data, keep_newline=keep_newline)


@secret_app.command("set")
@guarded
def set_(
    name: NameArg,
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            help="Read the value from this file ('-': stdin). Default: stdin.",
            show_default=False,
        ),
    ] = None,
    keep_newline: Annotated[
        bool,
        typer.Option(
            "--keep-newline", help="Keep the value's trailing newline (one is dropped by default)."
        ),
    ] = False,
    fmt: TextJsonOpt = "text",
) -> None:
    """Add a version to a secret (created if missing) and print its number.

    The value comes from stdin (hidden prompt at a terminal) or --from-file, never from an
    argument. One trailing newline is dropped (`echo` adds one); --keep-newline keeps it.
    The value is judged by the rules of every key that uses the secret: in a strict
    environment a failing value is refused (exit 1), elsewhere it is a warning.

    Example: printf %s "$VALUE" | rollsafe secret set service-secret-dev --env dev
    """
    from rollsafe.secrets import set_secret, writable

    resolved, store = _open(file, env, fmt)
    with store:
        target = writable(store)  # before asking for a value that could not be stored
        value = _read_input(from_file, keep_newline)
        result = set_secret(target, resolved, name, value)
        _written(result, fmt, store.description)


@secret_app.command()
@guarded
def rotate(
    name: NameArg,
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    fmt: TextJsonOpt = "text",
) -> None:
    """Add a new random version that passes the rules of every key using the secret.

    The value is drawn from the OS's random source, checked by the same rules as
    `rollsafe check`, written, and never shown. Secrets whose rules fix the value's shape
    (one_of, url, same_origin, a regex no random value matches) are refused (exit 1).

    Example: rollsafe secret rotate jwt-secret-key-staging --env staging
    """
    from rollsafe.secrets import rotate_secret, writable

    resolved, store = _open(file, env, fmt)
    with store:
        result = rotate_secret(writable(store), resolved, name)
        _written(result, fmt, store.description)


@secret_app.command("list")
@guarded
def list_(
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    fmt: TextJsonOpt = "text",
) -> None:
    """List the manifest's secrets of an environment: who uses each, whether it exists,
    its latest version and state; then the store's other secrets.

    Exit 1 when a mapped secret is missing, has no versions or its latest version is not
    enabled; 0 otherwise.

    Example: rollsafe secret list --env dev --format json
    """
    from rollsafe.secrets import secret_statuses

    resolved, store = _open(file, env, fmt)
    with store:
        statuses, others = secret_statuses(store, resolved)
        where = store.description
    broken = any(status.problems for status in statuses)
    if fmt == "json":
        _json(
            {
                "env": resolved.name,
                "store": where,
                "secrets": [
                    {
                        "secret": s.secret,
                        "used_by": list(s.used_by),
                        "exists": s.exists,
                        "latest": s.latest,
                        "latest_state": s.latest_state,
                        "versions": s.versions,
                        "enabled_versions": s.enabled,
                        "problems": list(s.problems),
                    }
                    for s in statuses
                ],
                "unreferenced": others,
            }
        )
    else:
        out.print(f"secrets of {resolved.name} in {where}", markup=False, highlight=False)
        rows = [("SECRET", "LATEST", "STATE", "VERSIONS", "USED BY", "PROBLEMS")]
        for s in statuses:
            rows.append(
                (
                    s.secret,
                    "-" if s.latest is None else str(s.latest),
                    s.latest_state or "-",
                    f"{s.enabled}/{s.versions} enabled" if s.exists else "-",
                    ",".join(s.used_by),
                    ",".join(s.problems) or "-",
                )
            )
        # plain aligned columns: a table cut to the terminal's width would truncate names
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            out.print(line.rstrip(), markup=False, highlight=False, soft_wrap=True)
        if others:
            out.print(
                f"not referenced by the manifest: {', '.join(others)}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    raise typer.Exit(1 if broken else 0)


@secret_app.command()
@guarded
def versions(
    name: NameArg,
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    fmt: TextJsonOpt = "text",
) -> None:
    """List a secret's versions, newest first: number, state, creation time (no values).

    Example: rollsafe secret versions service-secret-dev --env dev
    """
    from rollsafe.secrets import versions_of

    resolved, store = _open(file, env, fmt)
    with store:
        found = list(reversed(versions_of(store, resolved, name)))
    if fmt == "json":
        _json(
            [
                {
                    "secret": v.secret,
                    "version": v.version,
                    "state": v.state.value,
                    "create_time": v.create_time.isoformat(),
                }
                for v in found
            ]
        )
        return
    if not found:
        out.print("no versions", markup=False, highlight=False)
    for v in found:
        when = v.create_time.strftime("%Y-%m-%d %H:%M:%S UTC")
        out.print(f"{v.version:>4}  {v.state.value:<9}  {when}", markup=False, highlight=False)


def _change(name: str, version: int, env: str, file: Path, fmt: str, state: VersionState) -> None:
    from rollsafe.secrets import change_state, expand, writable

    resolved, store = _open(file, env, fmt)
    with store:
        warnings = change_state(writable(store), resolved, name, version, state)
    secret = expand(resolved, name)
    if fmt == "json":
        _json(
            {
                "secret": secret,
                "version": version,
                "state": state.value,
                "warnings": list(warnings),
            }
        )
        return
    _warn(warnings)
    out.print(
        f"version {version} of '{secret}' is {state.value.lower()}", markup=False, highlight=False
    )


@secret_app.command()
@guarded
def enable(
    name: NameArg,
    version: VersionArg,
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    fmt: TextJsonOpt = "text",
) -> None:
    """Enable a disabled version (a destroyed one cannot come back).

    Example: rollsafe secret enable service-secret-dev 2 --env dev
    """
    from rollsafe.stores import VersionState

    _change(name, version, env, file, fmt, VersionState.ENABLED)


@secret_app.command()
@guarded
def disable(
    name: NameArg,
    version: VersionArg,
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    fmt: TextJsonOpt = "text",
) -> None:
    """Disable a version: reads of it fail until it is enabled again.

    Warns when a key of the manifest reads that version (pinned, or as latest).

    Example: rollsafe secret disable service-secret-dev 2 --env dev
    """
    from rollsafe.stores import VersionState

    _change(name, version, env, file, fmt, VersionState.DISABLED)


@secret_app.command()
@guarded
def destroy(
    name: NameArg,
    version: VersionArg,
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    fmt: TextJsonOpt = "text",
) -> None:
    """Destroy a version for good: its value is wiped and it can never be enabled again.

    Asks for confirmation at a terminal; elsewhere --yes is required.

    Example: rollsafe secret destroy service-secret-dev 1 --env dev --yes
    """
    from rollsafe.stores import VersionState

    if not yes:
        if sys.stdin is None or not sys.stdin.isatty():
            raise UsageError(
                "destroy is final and asks for confirmation; stdin is not a terminal",
                hint="pass --yes to destroy without asking",
            )
        if not typer.confirm(f"Destroy version {version} of '{name}' for good?", err=True):
            raise UsageError("not destroyed")
    _change(name, version, env, file, fmt, VersionState.DESTROYED)
