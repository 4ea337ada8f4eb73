"""`drift`: the manifest, the secret store and the serving revisions, compared three ways."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from rollsafe.cli._common import (
    EnvOpt,
    FormatOpt,
    ManifestOpt,
    StoreOpt,
    app,
    check_format,
    err,
    guarded,
    out,
    warn,
)


@contextmanager
def _credentials(project: str) -> Iterator[None]:
    """No usable Google credentials (at client creation or at a token refresh) is an error
    of drift, exit 2, with the usual remedy; rollsafe's adapters map the other errors."""
    from rollsafe._gcp import import_google
    from rollsafe.drift import DriftUnavailableError

    auth = import_google("google.auth.exceptions")
    try:
        yield
    except auth.GoogleAuthError as exc:
        raise DriftUnavailableError(
            f"cannot read Cloud Run of {project}: no usable credentials",
            hint="run `gcloud auth application-default login` or set "
            "GOOGLE_APPLICATION_CREDENTIALS",
        ) from exc


def _keep_for_status_page(resolved: Any, report: Any) -> None:
    """Keep the findings in the state store (kv ``drift/last/{env}``) for the status page;
    a state store that does not exist yet is not created for it, and one that cannot be
    written is a warning, never drift's failure."""
    import time

    from rollsafe.errors import RollsafeError
    from rollsafe.monitor.snapshots import write_drift_snapshot
    from rollsafe.state.resolve import choose_state, open_store

    try:
        choice = choose_state(resolved.manifest_path, manifest_state=resolved.state)
        if choice.spec.kind == "sqlite" and not (choice.spec.path and choice.spec.path.exists()):
            return
        with open_store(choice) as state:
            write_drift_snapshot(state, report, at=time.time())
    except RollsafeError as exc:
        warn(f"drift findings not kept for the status page: {exc.message}")


@app.command()
@guarded
def drift(
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    service: Annotated[
        list[str] | None,
        typer.Option("--service", "-s", help="Only this service (repeatable)."),
    ] = None,
    store: StoreOpt = None,
    fmt: FormatOpt = "text",
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Print the API calls made, per API, on stderr."),
    ] = False,
    reads_per_minute: Annotated[
        int | None,
        typer.Option(
            "--reads-per-minute",
            min=0,
            help="Pace Secret Manager read requests (listings) to this many a minute; 0: no "
            "limit. Default: 500 on Google (its quota is 600), no limit on the emulator.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compare the manifest, the secret store and the serving revisions; name each drift.

    Each finding has a kind (unmapped_secret, wrong_version, stale_latest, ...), what the
    manifest, the store and the serving revision say (names and versions, never values)
    and the fix. Exit 0 when there is no drift (info findings such as orphan_secret do not
    count), 1 when there is, 2 on a usage or manifest error or when the store or the
    platform cannot be read.

    Example: rollsafe drift --env staging --format json
    """
    from rollsafe._environments import platform_for, store_for
    from rollsafe.check import select_services
    from rollsafe.drift import (
        default_read_budget,
        render_github,
        render_json,
        render_sarif,
        render_text,
        run_drift,
    )
    from rollsafe.manifest import load_manifest

    check_format(fmt)
    resolved = load_manifest(file).resolve(env)
    select_services(resolved, service)  # unknown services fail before anything is opened
    with (
        _credentials(resolved.gcp_project),
        store_for(resolved, store) as secret_store,
        platform_for(resolved) as platform,
    ):
        budget = default_read_budget(secret_store) if reads_per_minute is None else reads_per_minute
        report = run_drift(
            resolved, secret_store, platform, services=service, reads_per_minute=budget or None
        )
    _keep_for_status_page(resolved, report)
    if fmt == "json":
        out.print(render_json(report), markup=False, highlight=False, soft_wrap=True)
    elif fmt == "sarif":
        out.print(render_sarif(report, file), markup=False, highlight=False, soft_wrap=True)
    elif fmt == "github":
        out.print(render_github(report, file), markup=False, highlight=False, soft_wrap=True)
    else:
        # soft wrap: a fix command broken across lines cannot be pasted
        out.print(render_text(report), soft_wrap=True)
    if verbose:
        err.print(report.calls.describe(), markup=False, highlight=False)
        if report.read_budget:
            err.print(
                f"store reads paced to {report.read_budget}/min; waited "
                f"{report.paced_seconds:.1f} s",
                markup=False,
                highlight=False,
            )
    raise typer.Exit(report.exit_code)
