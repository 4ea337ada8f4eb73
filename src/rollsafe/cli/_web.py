"""`web`: the status page served from the state alone; and the hook that serves it beside
``/metrics`` under ``monitor --serve``."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rollsafe.cli._common import (
    EnvOpt,
    ManifestOpt,
    StateOpt,
    StoreOpt,
    app,
    err,
    guarded,
    journal_for,
    warn,
)
from rollsafe.errors import RollsafeError

if TYPE_CHECKING:
    from rollsafe.incidents.model import Episode, IncidentReport
    from rollsafe.monitor.server import MonitorServer
    from rollsafe.state.base import StateStore
    from rollsafe.web.app import ReportMaker, StatusApp

__all__ = ["DEFAULT_WEB_ADDR", "mount_status_page", "report_maker"]

#: ``rollsafe web``'s default address: beside the monitor's usual 9464
DEFAULT_WEB_ADDR = "127.0.0.1:9465"


def report_maker(resolved: Any, state_store: StateStore, store: str | None = None) -> ReportMaker:
    """What builds an incident's report for the page: ``rollsafe why --incident ID``'s
    evidence (Cloud Run, Cloud Logging, the secret store opened for the report and closed
    after it; the journal and the monitor's records from ``state_store``)."""

    def make(episode: Episode) -> IncidentReport:
        from rollsafe._environments import gcp_endpoint, platform_for, store_for
        from rollsafe._gcp import import_google
        from rollsafe.incidents.collect import EvidenceCollector
        from rollsafe.incidents.report import build_report
        from rollsafe.incidents.window import episode_window
        from rollsafe.platforms.logs import CloudLoggingRevisionLogs

        auth = import_google("google.auth.exceptions")
        now = time.time()
        with contextlib.ExitStack() as stack:
            try:
                platform = stack.enter_context(platform_for(resolved))
                secrets = stack.enter_context(store_for(resolved, store))
                logs = stack.enter_context(
                    CloudLoggingRevisionLogs(resolved.gcp_project, endpoint=gcp_endpoint(resolved))
                )
            except auth.GoogleAuthError as exc:
                raise RollsafeError(
                    f"cannot read Google Cloud of {resolved.gcp_project}: no usable credentials",
                    hint="run `gcloud auth application-default login`",
                ) from exc
            collector = EvidenceCollector(
                resolved, state=state_store, platform=platform, logs=logs, secrets=secrets
            )
            evidence = collector.collect(list(episode.services), *episode_window(episode, now))
        return build_report(evidence, episode, now=now)

    return make


def mount_status_page(
    server: MonitorServer, resolved: Any, state_store: StateStore, *, store: str | None = None
) -> StatusApp:
    """Serve ``resolved``'s status page on ``server`` (``/``, ``/services/``,
    ``/incidents``, ``/api/v1/``), read from ``state_store`` (give it a store of its own:
    the pages read from the server's threads), reports built on demand."""
    from rollsafe.web.app import StatusApp
    from rollsafe.web.data import StatusData

    page = StatusApp(
        StatusData(state_store, resolved),
        reports=report_maker(resolved, state_store, store),
        base_url=server.url,
    )
    page.mount(server)
    return page


@app.command()
@guarded
def web(
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    serve: Annotated[
        str,
        typer.Option(
            "--serve",
            help="Serve the page on ADDR: 127.0.0.1:9465, :9465 or [::1]:9465 "
            "(loopback unless an address is given).",
        ),
    ] = DEFAULT_WEB_ADDR,
    state: StateOpt = None,
    store: StoreOpt = None,
) -> None:
    """Serve the environment's status page from the state alone, without monitoring.

    The page the monitor serves beside /metrics (`monitor --serve`), for a second machine
    or a laptop: every service's state, uptime, 90-day bar, response time, serving
    revisions, last deploy and open alerts; a page per service (chart with deploy and
    rollback markers, error rate per revision, journal, drift, incidents); the incidents
    with their reports (built on demand, as `rollsafe why` builds them); and the JSON API
    under /api/v1/ (see docs/status-page.md). Read-only. A header line says so when the
    monitor has not written for more than 3 intervals.

    Prints the page's URL on stdout and serves until Ctrl-C (exit 0); exit 2 on a usage,
    manifest or address error.

    Examples:

      rollsafe web --env staging

      rollsafe web --env staging --serve 127.0.0.1:8080 --state sqlite:journal.sqlite3
    """
    from rollsafe.cli._deploy import _open_env
    from rollsafe.cli._monitor import _stopping
    from rollsafe.monitor.server import MonitorServer

    server = MonitorServer(serve)  # a bad address fails before the manifest is read
    _, resolved = _open_env(file, env)
    with contextlib.ExitStack() as stack:
        journal = stack.enter_context(journal_for(resolved, state))
        server.start()
        stack.callback(server.close)
        mount_status_page(server, resolved, journal.store, store=store)
        if not server.loopback:
            warn(f"serving the status page on {server.url}: reachable from other hosts")
        sys.stdout.write(f"{server.url}/\n")
        sys.stdout.flush()
        err.print(
            f"serving the status page of {resolved.name} on {server.url}/; Ctrl-C stops",
            style="dim",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        with _stopping() as stop:
            while not stop.wait(0.5):
                pass
