"""`emulator start|stop|status|run`: the local Cloud Run + Secret Manager + Logging."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from rollsafe.manifest import ResolvedEnvironment

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
ConfigDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--config-dir",
        help="gcloud configuration directory to write (default: gcloud/ in the state directory).",
        show_default=False,
    ),
]
OptionalEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--env",
        "-e",
        help="Environment whose project and region gcloud uses (default: the first local one).",
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
    """Say whether the emulator runs, and its endpoint (`--format json`); and whether
    ROLLSAFE_GCP_ENDPOINT is set (then rollsafe uses that endpoint) and answers.

    Example: rollsafe emulator status --format json
    """
    check_text_or_json(fmt)
    from rollsafe._environments import GCP_ENDPOINT_ENV, shared_endpoint
    from rollsafe.emulator.server import emulator_status, endpoint_answers

    status = emulator_status(_state_dir(state_dir, file))
    shared = shared_endpoint()
    answers = endpoint_answers(shared) if shared else None
    if fmt == "json":
        data = status.to_dict()
        if shared:
            data.update(gcp_endpoint=shared, gcp_endpoint_answers=answers)
        sys.stdout.write(json.dumps(data) + "\n")
        return
    if status.running:
        out.print(f"running (pid {status.pid})\nendpoint: {status.endpoint}", highlight=False)
    else:
        out.print("not running")
    if shared:
        state = "answers" if answers else "does not answer"
        out.print(
            f"{GCP_ENDPOINT_ENV}: {shared} ({state}); rollsafe's Google clients use it and "
            "start no emulator",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


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


@emulator_app.command("gcloud-config")
@guarded
def emulator_gcloud_config(
    config_dir: ConfigDirOpt = None,
    env: OptionalEnvOpt = None,
    state_dir: StateDirOpt = None,
    file: ManifestOpt = Path("rollsafe.yaml"),
    fmt: TextJsonOpt = "text",
) -> None:
    """Write a gcloud configuration that points `gcloud` at the emulator (started if needed).

    It sets endpoint overrides for run, secretmanager, logging and iamcredentials, disables
    credentials, and makes the emulator gcloud's HTTP proxy so the regional host
    REGION-127.0.0.1 needs no DNS; the emulator answers only for itself, so gcloud reaches
    nothing else. Project and region come from --env. Prints `export CLOUDSDK_CONFIG=DIR`.

    Example: eval "$(rollsafe emulator gcloud-config --env dev)"; gcloud run services list
    """
    check_text_or_json(fmt)
    from rollsafe._environments import shared_endpoint
    from rollsafe.emulator.gcloud import gcloud_properties, write_gcloud_config
    from rollsafe.emulator.server import ensure_emulator

    resolved = _gcloud_environment(file, env)
    directory = _state_dir(state_dir, file)
    endpoint = shared_endpoint() or ensure_emulator(directory)
    project = resolved.gcp_project if resolved else None
    region = resolved.region if resolved else None
    if config_dir is None:
        from rollsafe.state import ensure_state_dir

        ensure_state_dir(directory)  # its gcloud/ lives there: created with its .gitignore
    target = (config_dir or directory / "gcloud").resolve()
    properties = gcloud_properties(endpoint, project, region)
    written = write_gcloud_config(target, properties)
    export = f"export CLOUDSDK_CONFIG={shlex.quote(str(target))}"
    if fmt == "json":
        data = {
            "config_dir": str(target),
            "config_file": str(written),
            "endpoint": endpoint,
            "project": project,
            "region": region,
            "properties": properties,
            "export": export,
        }
        sys.stdout.write(json.dumps(data) + "\n")
        return
    where = f" (project {project}, region {region})" if resolved else ""
    err.print(f"gcloud -> emulator {endpoint}{where}: wrote {written}", markup=False)
    out.print(export, markup=False, highlight=False, soft_wrap=True)


def _gcloud_environment(file: Path, env: str | None) -> ResolvedEnvironment | None:
    """``--env``'s environment, else the manifest's first local one, else None."""
    from rollsafe.manifest import load_manifest

    if env is None and not file.exists():
        return None
    manifest = load_manifest(file)
    if env is not None:
        return manifest.resolve(env)
    for name in manifest.environments:
        resolved = manifest.resolve(name)
        if resolved.platform == "local":
            return resolved
    return None
