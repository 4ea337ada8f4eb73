"""`monitor`: watch an environment's services after their deploys, alert, roll back."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from rollsafe.cli._common import (
    EnvOpt,
    ManifestOpt,
    StateOpt,
    StoreOpt,
    TextJsonOpt,
    app,
    check_text_or_json,
    err,
    journal_for,
    print_error,
    warn,
)
from rollsafe.errors import RollsafeError

ServeOpt = Annotated[
    str | None,
    typer.Option(
        "--serve",
        help="Serve Prometheus metrics (/metrics) and the status page (/, see "
        "docs/status-page.md) on ADDR, e.g. 127.0.0.1:9464 or :9464 "
        "(loopback unless an address is given).",
        show_default=False,
    ),
]
ImpersonateOpt = Annotated[
    str | None,
    typer.Option(
        "--impersonate-service-account",
        envvar="ROLLSAFE_IMPERSONATE_SERVICE_ACCOUNT",
        help="Probe private services with ID tokens of this service account "
        "(impersonated from ADC; see docs/access.md).",
        show_default=False,
    ),
]

#: ``--once``: all healthy, something fails, an error kept the pass from running
EXIT_HEALTHY, EXIT_FAILING, EXIT_ERROR = 0, 1, 2


class _Printer:
    """One line per state change on stdout (text or JSON lines), flushed at once; called
    from the loop and from the receivers' threads."""

    def __init__(self, fmt: str) -> None:
        self._fmt = fmt
        self._lock = threading.Lock()

    def __call__(self, line: Any) -> None:
        text = json.dumps(line.to_dict()) if self._fmt == "json" else line.text()
        with self._lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()


def _say(text: str) -> None:
    """What the monitor is doing, on stderr (stdout holds the state changes)."""
    err.print(text, style="dim", markup=False, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _stopping() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, the previous handlers restored after."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _log_reader(resolved: Any, store: Any) -> Iterator[Any]:
    """The environment's Cloud Logging, read incrementally (cursor in ``store``)."""
    from rollsafe._environments import gcp_endpoint
    from rollsafe.monitor.logs import ServiceLogReader

    reader = ServiceLogReader(
        resolved.gcp_project, endpoint=gcp_endpoint(resolved), store=store, env=resolved.name
    )
    try:
        yield reader
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()


@app.command()
def monitor(
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    once: Annotated[
        bool,
        typer.Option("--once", help="One pass: exit 0 all healthy, 1 something fails, 2 error."),
    ] = False,
    serve: ServeOpt = None,
    fmt: TextJsonOpt = "text",
    state: StateOpt = None,
    store: StoreOpt = None,
    impersonate: ImpersonateOpt = None,
) -> None:
    """Watch the environment's services: probes, logs, service state; alert and roll back.

    Runs in the foreground and prints one line per state change (pending, firing,
    resolved): time, service, alert, state, summary (`--format json`: one JSON object a
    line). Alerts go to the environment's `alerts:` receivers; a down or 5xx alert within
    `monitor.rollback_within` of a rollsafe deploy rolls it back. SIGINT or SIGTERM stops
    it cleanly. On PostgreSQL state several monitors elect a leader (the others wait as
    standbys); on SQLite a second monitor is refused.

    Exit (--once): 0 all healthy, 1 something fails, 2 error (manifest, state, receivers).
    Exit 1 also when another monitor runs on SQLite state, or when this one lost the
    leadership on PostgreSQL (a supervisor restarts it as a standby).

    Examples:

      rollsafe monitor --env staging

      rollsafe monitor --env staging --serve 127.0.0.1:9464 --format json

      rollsafe monitor --env staging --once && echo healthy
    """
    from rollsafe.monitor.leader import LeadershipLostError, MonitorRunningError

    try:
        check_text_or_json(fmt)
    except typer.BadParameter as exc:
        err.print(f"Error: {exc.format_message()}", highlight=False, markup=False)
        raise typer.Exit(EXIT_ERROR) from None
    try:
        code = _monitor(env, file, once, serve, fmt, state, store, impersonate)
    except (MonitorRunningError, LeadershipLostError) as exc:
        print_error(exc)
        raise typer.Exit(exc.exit_code) from None
    except RollsafeError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        # before the handlers were installed, or after: still a clean stop
        err.print("interrupted", highlight=False)
        raise typer.Exit(130) from None
    raise typer.Exit(code)


def _monitor(
    env: str,
    file: Path,
    once: bool,
    serve: str | None,
    fmt: str,
    state: str | None,
    store: str | None,
    impersonate: str | None,
) -> int:
    from rollsafe._environments import platform_for, store_for
    from rollsafe.cli._deploy import _open_env, _tokens
    from rollsafe.monitor.engine import MonitorEngine
    from rollsafe.monitor.leader import Leader
    from rollsafe.monitor.receivers import open_receivers

    _, resolved = _open_env(file, env)
    printer = _Printer(fmt)
    with contextlib.ExitStack() as stack:
        journal = stack.enter_context(journal_for(resolved, state))
        leader = Leader(journal.store, resolved.name)
        leads = leader.acquire()  # SQLite: a live monitor refuses this one, naming it
        stack.callback(leader.release)
        if not leads and leader.holder is not None:
            _say(f"standby: the leader is {leader.holder.describe()}")
        platform = stack.enter_context(platform_for(resolved))
        secrets = stack.enter_context(store_for(resolved, store))
        tokens = stack.enter_context(_tokens(platform, impersonate))
        logs = stack.enter_context(_log_reader(resolved, journal.store))
        receivers = open_receivers(resolved, secrets)
        for receiver in receivers:
            stack.callback(receiver.close)
        metrics, server = _serving(resolved, serve, stack, state, store)
        drift = None if once else _drift_runner(resolved, store, stack)
        engine = MonitorEngine(
            resolved,
            store=journal.store,
            journal=journal,
            platform=platform,
            tokens=tokens,
            logs=logs,
            receivers=receivers,
            listener=printer,
            metrics=metrics,
            leader=leader,
            drift=drift,
        )
        stack.callback(engine.close)
        if server is not None:
            _say(f"serving /metrics on {server.url} and the status page on {server.url}/")
        names = ", ".join(resolved.services) or "no services"
        if once:
            result = engine.run_once()
            return EXIT_HEALTHY if result.healthy else EXIT_FAILING
        _say(
            f"monitoring {names} in {resolved.name} every {engine.tick:g} s, "
            f"{len(receivers)} receiver{'' if len(receivers) == 1 else 's'}; Ctrl-C stops"
        )
        with _stopping() as stop:
            engine.run(stop)
        _say("stopping: sending what is queued")
    return EXIT_HEALTHY


def _drift_runner(resolved: Any, store: str | None, stack: contextlib.ExitStack) -> Any:
    """What runs drift for the status page (at start and every 15 min, off the loop): on
    clients of its own, so the drift thread never shares the loop's."""
    from rollsafe._environments import platform_for, store_for
    from rollsafe.drift import default_read_budget, run_drift

    drift_platform = stack.enter_context(platform_for(resolved))
    drift_store = stack.enter_context(store_for(resolved, store))
    budget = default_read_budget(drift_store)

    def run() -> Any:
        return run_drift(resolved, drift_store, drift_platform, reads_per_minute=budget)

    return run


def _serving(
    resolved: Any,
    serve: str | None,
    stack: contextlib.ExitStack,
    state: str | None = None,
    store: str | None = None,
) -> tuple[Any, Any]:
    """The metrics and their server, with the status page, when ``--serve`` asks; (None,
    None) otherwise. The page reads a store of its own (it reads from the server's threads)."""
    if serve is None:
        return None, None
    from rollsafe.monitor.metrics import MonitorMetrics
    from rollsafe.monitor.server import MonitorServer

    interval = min((s.monitor.interval for s in resolved.services.values()), default=30.0)
    metrics = MonitorMetrics(resolved.name, interval=max(1.0, interval))
    from rollsafe.cli._web import mount_status_page

    server = MonitorServer(serve, metrics)  # a bad address fails before anything opens
    # closed after the server (an exit stack unwinds in reverse): no page reads a closed store
    page_journal = stack.enter_context(journal_for(resolved, state))
    server.start()
    stack.callback(server.close)
    mount_status_page(server, resolved, page_journal.store, store=store)
    if not server.loopback:
        warn(f"serving /metrics on {server.host}:{server.port}: reachable from other hosts")
    return metrics, server
