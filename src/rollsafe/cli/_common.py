"""What every command shares: the app, the consoles, the options, error handling."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

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

out = Console(soft_wrap=False)
err = Console(stderr=True, soft_wrap=True)

ManifestOpt = Annotated[
    Path,
    typer.Option("-f", "--file", help="The manifest.", show_default=True),
]
EnvOpt = Annotated[str, typer.Option("--env", "-e", help="The environment to act on.")]
FormatOpt = Annotated[
    str,
    typer.Option("--format", help="Output format: text, json, sarif or github."),
]
TextJsonOpt = Annotated[str, typer.Option("--format", help="Output format: text or json.")]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Secret store, overriding the environment's: dotenv:PATH or memory.",
        show_default=False,
    ),
]

StateOpt = Annotated[
    str | None,
    typer.Option(
        "--state",
        envvar="ROLLSAFE_STATE",
        show_envvar=True,
        help="Where the deploy journal and locks are: sqlite:PATH or "
        "postgresql://USER@HOST:PORT/DB, its password from PGPASSWORD, ~/.pgpass or "
        "ROLLSAFE_STATE_PASSWORD (default: the manifest's state:, else the state "
        "directory's journal.sqlite3). See docs/state.md.",
        show_default=False,
    ),
]


def warn(text: str) -> None:
    """A warning on stderr (stdout may hold a JSON document)."""
    err.print(f"warning: {text}", style="yellow", markup=False, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def journal_for(resolved: Any, state: str | None, *, changes: bool = False) -> Iterator[Any]:
    """The journal of ``resolved``'s environment (see ``state.resolve.open_journal``):
    ``changes`` for the commands that change the platform."""
    from rollsafe.state.resolve import open_journal

    with open_journal(resolved, option=state, changes=changes, on_warning=warn) as journal:
        yield journal


def print_error(exc: RollsafeError) -> None:
    problems = exc.all if isinstance(exc, ManifestError) else (exc,)
    for problem in problems:
        err.print(f"[bold red]Error:[/] {problem}", markup=True, highlight=False)
        if problem.hint:
            err.print(f"  hint: {problem.hint}", style="dim", markup=False, highlight=False)


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn RollsafeError into ``Error: ...`` plus hint on stderr and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except RollsafeError as exc:
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("Error: interrupted")
            raise typer.Exit(130) from None

    return wrapper


def check_format(fmt: str) -> str:
    from rollsafe.check import FORMATS

    if fmt not in FORMATS:
        raise typer.BadParameter(
            f"'{fmt}' is not one of {', '.join(FORMATS)}", param_hint="--format"
        )
    return fmt


def check_text_or_json(fmt: str) -> str:
    """For commands whose output has no findings to annotate: text or json only."""
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"'{fmt}' is not one of text, json", param_hint="--format")
    return fmt


def _version(value: bool) -> None:
    if value:
        out.print(f"rollsafe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """rollsafe: default-safe deploys to Google Cloud Run."""
