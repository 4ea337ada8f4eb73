"""`emulator start|stop|status|run`: the local Cloud Run + Secret Manager + Logging."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from rollsafe.cli._common import (
    ManifestOpt,
    TextJsonOpt,
    app,
    check_text_or_json,
    err,
    guarded,
    out,
)

emulator_app = typer.Typer(
    help="The local Cloud Run + Secret Manager + Logging emulator (platform: local).",
    no_args_is_help=True,
)
app.add_typer(emulator_app, name="emulator")

StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="State directory (default: $ROLLSAFE_HOME, or .rollsafe/ beside the manifest).",
        show_default=False,
    ),
]
PortOpt = Annotated[
    int,
    typer.Option("--port", help="API port on 127.0.0.1 (default: the last one used, or free)."),
]


def _state_dir(state_dir: Path | None, file: Path) -> Path:
    from rollsafe.state import state_dir_for

    return state_dir.resolve() if state_dir else state_dir_for(file)


@emulator_app.command("start")
@guarded
def emulator_start(
    port: PortOpt = 0,
    state_dir: StateDirOpt = None,
    file: ManifestOpt = Path("rollsafe.yaml"),
) -> None:
    """Start the emulator in the background; returns once it answers.

    The last line printed is `endpoint: http://127.0.0.1:PORT`.

    Example: rollsafe emulator start --state-dir /tmp/rs
    """
    from rollsafe.emulator.server import start_emulator

    directory = _state_dir(state_dir, file)
    with err.status("starting the emulator ..."):
        status = start_emulator(directory, port)
    out.print(f"state: {directory}", markup=False, highlight=False)
    out.print(f"endpoint: {status.endpoint}", markup=False, highlight=False, soft_wrap=True)


@emulator_app.command("stop")
@guarded
def emulator_stop(state_dir: StateDirOpt = None, file: ManifestOpt = Path("rollsafe.yaml")) -> None:
    """Stop the emulator and every revision process it started.

    Example: rollsafe emulator stop --state-dir /tmp/rs
    """
    from rollsafe.emulator.server import stop_emulator

    stopped = stop_emulator(_state_dir(state_dir, file))
    out.print("stopped" if stopped else "not running")


@emulator_app.command("status")
@guarded
def emulator_status_command(
    state_dir: StateDirOpt = None,
    file: ManifestOpt = Path("rollsafe.yaml"),
    fmt: TextJsonOpt = "text",
) -> None:
    """Say whether the emulator runs, and its endpoint (`--format json`).

    Example: rollsafe emulator status --format json
    """
    check_text_or_json(fmt)
    from rollsafe.emulator.server import emulator_status

    status = emulator_status(_state_dir(state_dir, file))
    if fmt == "json":
        sys.stdout.write(json.dumps(status.to_dict()) + "\n")
    elif status.running:
        out.print(f"running (pid {status.pid})\nendpoint: {status.endpoint}", highlight=False)
    else:
        out.print("not running")


@emulator_app.command("run")
@guarded
def emulator_run(
    port: PortOpt = 0,
    state_dir: StateDirOpt = None,
    file: ManifestOpt = Path("rollsafe.yaml"),
) -> None:
    """Run the emulator in the foreground until Ctrl-C.

    Example: rollsafe emulator run --port 8790
    """
    from rollsafe.emulator.server import run_emulator

    directory = _state_dir(state_dir, file)
    err.print(f"rollsafe emulator: state in {directory}; Ctrl-C stops it")
    run_emulator(directory, port)
