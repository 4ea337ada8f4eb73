"""The ``rollsafe`` command line: the only place that prints or exits."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from rollsafe import __version__
from rollsafe.errors import ManifestError, RollsafeError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="rollsafe",
    help=(
        "Default-safe deploys to Google Cloud Run: one manifest, the same secret rules in CI, "
        "in the deploy and in the service."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_out = Console(soft_wrap=False)
_err = Console(stderr=True, soft_wrap=True)

ManifestOpt = Annotated[
    Path,
    typer.Option("-f", "--file", help="The manifest.", show_default=True),
]
EnvOpt = Annotated[str, typer.Option("--env", "-e", help="The environment to act on.")]
FormatOpt = Annotated[
    str,
    typer.Option("--format", help="Output format: text, json, sarif or github."),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Secret store, overriding the environment's: dotenv:PATH or memory.",
        show_default=False,
    ),
]


def _print_error(exc: RollsafeError) -> None:
    problems = exc.all if isinstance(exc, ManifestError) else (exc,)
    for problem in problems:
        _err.print(f"[bold red]Error:[/] {problem}", markup=True, highlight=False)
        if problem.hint:
            _err.print(f"  hint: {problem.hint}", style="dim", markup=False, highlight=False)


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn RollsafeError into ``Error: ...`` plus hint on stderr and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except RollsafeError as exc:
            _print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _err.print("Error: interrupted")
            raise typer.Exit(130) from None

    return wrapper


def _check_format(fmt: str) -> str:
    from rollsafe.check import FORMATS

    if fmt not in FORMATS:
        raise typer.BadParameter(
            f"'{fmt}' is not one of {', '.join(FORMATS)}", param_hint="--format"
        )
    return fmt


def _version(value: bool) -> None:
    if value:
        _out.print(f"rollsafe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """rollsafe: default-safe deploys to Google Cloud Run."""


@app.command()
@guarded
def check(
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    service: Annotated[
        list[str] | None,
        typer.Option("--service", "-s", help="Only this service (repeatable)."),
    ] = None,
    store: StoreOpt = None,
    fmt: FormatOpt = "text",
) -> None:
    """Check every secret and value of an environment against the manifest's rules.

    Exit 0 when nothing blocks, 1 when a finding blocks, 2 on a usage or manifest error.

    Example: rollsafe check --env staging --store dotenv:staging.env
    """
    from rollsafe._environments import store_for
    from rollsafe.check import (
        OtherEnvironmentDigests,
        render_github,
        render_json,
        render_sarif,
        render_text,
        run_check,
    )
    from rollsafe.manifest import load_manifest

    _check_format(fmt)
    manifest = load_manifest(file)
    resolved = manifest.resolve(env)
    others = OtherEnvironmentDigests(manifest)
    try:
        with store_for(resolved, store) as secret_store:
            report = run_check(resolved, secret_store, services=service, other_env_hashes=others)
    finally:
        others.close()
    if fmt == "json":
        _out.print(render_json(report), markup=False, highlight=False, soft_wrap=True)
    elif fmt == "sarif":
        _out.print(render_sarif(report, file), markup=False, highlight=False, soft_wrap=True)
    elif fmt == "github":
        _out.print(render_github(report, file), markup=False, highlight=False, soft_wrap=True)
    else:
        _out.print(render_text(report))
    raise typer.Exit(report.exit_code)


@app.command("secrets-string")
@guarded
def secrets_string(
    env: EnvOpt,
    service: Annotated[str, typer.Option("--service", "-s", help="The service.")],
    file: ManifestOpt = Path("rollsafe.yaml"),
    resolve: Annotated[
        bool,
        typer.Option("--resolve", help="Pin each `latest` to the store's current version number."),
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Print the value for `gcloud run deploy --set-secrets`: ENV_VAR=secret:VERSION,...

    Example: gcloud run deploy backend --set-secrets "$(rollsafe secrets-string --env
    staging --service backend --resolve)"
    """
    from rollsafe._environments import store_for
    from rollsafe.check import select_services
    from rollsafe.manifest import load_manifest
    from rollsafe.secrets_string import build_secrets_string

    manifest = load_manifest(file)
    resolved = manifest.resolve(env)
    (name,) = select_services(resolved, [service])
    svc = resolved.services[name]
    if resolve:
        with store_for(resolved, store) as secret_store:
            line = build_secrets_string(svc, secret_store)
    else:
        line = build_secrets_string(svc)
    # plain write: exactly the value and a newline, no wrapping or markup
    sys.stdout.write(line + "\n")


@app.command()
@guarded
def schema(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout."),
    ] = None,
) -> None:
    """Print the JSON Schema of rollsafe.yaml (for editors, via yaml-language-server).

    Example: rollsafe schema -o rollsafe.schema.json, then put
    `# yaml-language-server: $schema=rollsafe.schema.json` at the top of rollsafe.yaml.
    """
    from rollsafe.manifest import manifest_json_schema

    text = json.dumps(manifest_json_schema(), indent=2)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n", encoding="utf-8")
        _err.print(f"wrote {output}")


def main() -> None:
    """Console-script entry point."""
    if os.environ.get("ROLLSAFE_DEBUG"):
        app()
        return
    try:
        app()
    except RollsafeError as exc:  # pragma: no cover - commands are guarded; belt and braces
        _print_error(exc)
        sys.exit(exc.exit_code)
