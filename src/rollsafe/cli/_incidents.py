"""`incidents` and `why`: the episodes rollsafe recorded, and the report on one of them."""

from __future__ import annotations

import contextlib
import json
import sys
import time
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
    guarded,
    journal_for,
    out,
    warn,
)
from rollsafe.errors import RollsafeError, UsageError

ServiceOpt = Annotated[
    list[str] | None,
    typer.Option("--service", "-s", help="Only this service (repeatable).", show_default=False),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="From this time: RFC 3339 (2026-12-06T09:15:00Z) or a duration back from now "
        "(90s, 2m, 1h, 3d).",
        show_default=False,
    ),
]

WHY_FORMATS = ("markdown", "json", "html")
#: ``why --incident``: how far before an id's start episodes are looked for again, so the
#: parts that made it up are all found and merged as ``incidents`` merged them
_ID_SLACK = 86400.0


class NoIncidentError(RollsafeError):
    """``why`` without --incident or --since found no episode to report on (exit 1)."""

    exit_code = 1


@contextlib.contextmanager
def _sources(
    resolved: Any, state: str | None, store: str | None, *, secrets: bool
) -> Iterator[Any]:
    """The journal's store, the platform, Cloud Logging and (``secrets``) the secret store,
    as a namespace; no usable Google credentials is an error naming the remedy."""
    from types import SimpleNamespace

    from rollsafe._environments import gcp_endpoint, platform_for, store_for
    from rollsafe._gcp import import_google
    from rollsafe.platforms.logs import CloudLoggingRevisionLogs

    auth = import_google("google.auth.exceptions")
    with contextlib.ExitStack() as stack:
        state_store = _state_store(resolved, state, stack)
        try:
            endpoint = gcp_endpoint(resolved)
            platform = stack.enter_context(platform_for(resolved)) if secrets else None
            secret_store = stack.enter_context(store_for(resolved, store)) if secrets else None
            logs = stack.enter_context(
                CloudLoggingRevisionLogs(resolved.gcp_project, endpoint=endpoint)
            )
        except auth.GoogleAuthError as exc:
            raise RollsafeError(
                f"cannot read Google Cloud of {resolved.gcp_project}: no usable credentials",
                hint="run `gcloud auth application-default login` or set "
                "GOOGLE_APPLICATION_CREDENTIALS",
            ) from exc
        yield SimpleNamespace(state=state_store, platform=platform, secrets=secret_store, logs=logs)


def _state_store(resolved: Any, state: str | None, stack: contextlib.ExitStack) -> Any:
    """The journal's store; an unreachable one is a source the report cannot read, not
    the end of the report: a stand-in whose every read raises the error it met."""
    from rollsafe.state.base import StateUnavailableError
    from rollsafe.state.memory import MemoryStateStore

    try:
        return stack.enter_context(journal_for(resolved, state)).store
    except StateUnavailableError as exc:
        warn(f"{exc.message}: going on without the deploy journal and the monitor's records")
        error = exc

    class Unreachable(MemoryStateStore):
        @property
        def location(self) -> str:
            return "unreachable"

        def list_records(self, env: str, service: str | None = None, limit: int = 100) -> Any:
            raise error

        def kv_list(self, namespace: str, prefix: str = "") -> Any:
            raise error

        def kv_get(self, namespace: str, key: str) -> Any:
            raise error

    return stack.enter_context(Unreachable())


def _episodes(
    resolved: Any, src: Any, services: list[str] | None, since: float, now: float
) -> list[Any]:
    from rollsafe.incidents.episodes import find_episodes

    return find_episodes(
        resolved,
        state=src.state,
        logs=src.logs,
        services=services or (),
        since=since,
        until=now,
        on_unreadable=lambda what, why: warn(f"could not read {what}: {why}"),
    )


def _span(start: float, end: float | None) -> str:
    first = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(start))
    if end is None:
        return f"{first} .. (going on)"
    last = time.strftime("%H:%M:%SZ", time.gmtime(end))
    return f"{first} .. {last} ({end - start:.0f} s)"


@app.command()
@guarded
def incidents(
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    service: ServiceOpt = None,
    since: SinceOpt = None,
    fmt: TextJsonOpt = "text",
    state: StateOpt = None,
) -> None:
    """List the episodes rollsafe recorded: alerts, failed or rolled-back deploys, outages.

    An episode is a monitor alert from its firing to its resolve, a deploy or rollback
    whose outcome is rolled-back, failed or rollback-failed, or a run of 5xx answers in the
    request logs; those of one service that overlap are one episode, with an id
    (INC-YYYYMMDD-HHMMSS-SERVICE) that `rollsafe why --incident` takes. Newest first; the
    last 7 days unless --since says otherwise. Read-only.

    Exit 0 (also when there is none); 2 on a usage or manifest error.

    Examples:

      rollsafe incidents --env staging

      rollsafe incidents --env staging --service backend --since 1d --format json
    """
    from rollsafe.check import select_services
    from rollsafe.cli._deploy import _open_env
    from rollsafe.incidents.window import DEFAULT_LOOKBACK, parse_time

    check_text_or_json(fmt)
    now = time.time()
    start = parse_time(since, now=now, option="--since") if since else now - DEFAULT_LOOKBACK
    _, resolved = _open_env(file, env)
    select_services(resolved, service)
    with _sources(resolved, state, None, secrets=False) as src:
        found = _episodes(resolved, src, service, start, now)
    if fmt == "json":
        from rollsafe.incidents.model import iso

        data = {
            "env": resolved.name,
            "since": iso(start),
            "until": iso(now),
            "episodes": [e.to_dict() for e in found],
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if not found:
        out.print(
            f"no incident found in {resolved.name} since {_span(start, None).split(' ..')[0]}",
            markup=False,
            highlight=False,
        )
        return
    for episode in found:
        out.print(
            f"{episode.id}  {_span(episode.start, episode.end)}  {', '.join(episode.kinds)}",
            markup=False,
            highlight=False,
        )
        out.print(f"  {episode.title}", markup=False, highlight=False, soft_wrap=True)


def _check_why(fmt: str, incident: str | None, since: str | None, until: str | None) -> None:
    if fmt not in WHY_FORMATS:
        raise UsageError(
            f"--format '{fmt}' is not one of {', '.join(WHY_FORMATS)}",
            hint="rollsafe why --format markdown|json|html",
        )
    if incident and (since or until):
        raise UsageError(
            "--incident and --since/--until cannot be combined: an incident has its own window",
            hint="give --incident ID (see `rollsafe incidents`), or --since T [--until T]",
        )
    if until and not since:
        raise UsageError("--until needs --since", hint="rollsafe why --since 1h --until 30m")


def _pick(
    resolved: Any, src: Any, service: list[str] | None, incident: str | None, now: float
) -> Any:
    """The episode ``--incident`` names, else the most recent of the last 7 days."""
    from rollsafe.incidents.window import DEFAULT_LOOKBACK

    since = now - DEFAULT_LOOKBACK
    if incident:
        found = _started(incident)
        if found is not None:
            since = min(since, found - _ID_SLACK)
    episodes = _episodes(resolved, src, service, since, now)
    if not incident:
        if not episodes:
            raise NoIncidentError(
                f"no incident found in {resolved.name} in the last 7 days",
                hint="give a window: rollsafe why --env "
                f"{resolved.name} --since 1h (or see `rollsafe incidents --since 30d`)",
            )
        return episodes[0]
    chosen = next((e for e in episodes if e.id == incident), None)
    if chosen is None:
        known = ", ".join(e.id for e in episodes[:10]) or "none in the last 7 days"
        raise UsageError(
            f"unknown incident '{incident}' in {resolved.name}",
            hint=f"known incidents: {known} (`rollsafe incidents --env {resolved.name}`)",
        )
    return chosen


def _started(incident: str) -> float | None:
    """The start an id spells (``INC-YYYYMMDD-HHMMSS-SERVICE``), or None."""
    import calendar

    parts = incident.split("-")
    if len(parts) < 4 or parts[0] != "INC":
        return None
    try:
        return float(calendar.timegm(time.strptime(parts[1] + parts[2], "%Y%m%d%H%M%S")))
    except ValueError:
        return None


def _render(report: Any, fmt: str) -> str:
    if fmt == "json":
        from rollsafe.incidents.render import render_json

        return render_json(report)
    if fmt == "html":
        from rollsafe.incidents._html import render_html

        return render_html(report)
    from rollsafe.incidents.render import render_markdown

    return render_markdown(report)


@app.command()
@guarded
def why(
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    service: ServiceOpt = None,
    incident: Annotated[
        str | None,
        typer.Option(
            "--incident",
            help="The episode to report on (an id from `rollsafe incidents`).",
            show_default=False,
        ),
    ] = None,
    since: SinceOpt = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="With --since: to this time (RFC 3339 or a duration back); default now.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="Output format: markdown, json or html.")
    ] = "markdown",
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the report to FILE and print its path."),
    ] = None,
    state: StateOpt = None,
    store: StoreOpt = None,
) -> None:
    """Report on an incident: what happened, why, and what to do, every claim cited.

    Collects the evidence of a window (the deploy journal, Cloud Run revisions, Cloud
    Logging's requests and error lines, Secret Manager versions, the monitor's alerts and
    probes, drift and check findings, the manifest) and builds a postmortem from it:
    summary, measured impact, timeline, causal chains, contributing factors (trigger or
    latent), what went well, typed action items, and the evidence table. No secret value
    is read into it: only names, versions, lengths and estimated bits.

    The window: --incident ID (an episode from `rollsafe incidents`, 10 minutes before it
    to 2 minutes after), or --since T [--until T]; neither: the most recent episode of the
    last 7 days. Sources that cannot be read are listed in the report. Read-only.

    Exit 0 with a report; 1 when no incident was found; 2 on a usage or manifest error.

    Examples:

      rollsafe why --env staging

      rollsafe why --env staging --since 30m --format json

      rollsafe why --env staging --incident INC-20261206-091503-backend

      rollsafe why --env staging --format html -o incident.html
    """
    from rollsafe.check import select_services
    from rollsafe.cli._deploy import _open_env
    from rollsafe.incidents.collect import EvidenceCollector
    from rollsafe.incidents.report import build_report
    from rollsafe.incidents.window import episode_window, parse_time

    _check_why(fmt, incident, since, until)
    now = time.time()
    window: tuple[float, float] | None = None
    if since:
        start = parse_time(since, now=now, option="--since")
        end = parse_time(until, now=now, option="--until") if until else now
        if end <= start:
            raise UsageError(
                f"--until ({until}) is not after --since ({since})",
                hint="give --since the earlier time",
            )
        window = (start, end)
    _, resolved = _open_env(file, env)
    select_services(resolved, service)
    with _sources(resolved, state, store, secrets=True) as src:
        episode = None
        if window is None:
            episode = _pick(resolved, src, service, incident, now)
            window = episode_window(episode, now)
        names = list(episode.services) if episode is not None else list(service or ())
        collector = EvidenceCollector(
            resolved, state=src.state, platform=src.platform, logs=src.logs, secrets=src.secrets
        )
        evidence = collector.collect(names, *window)
    report = build_report(evidence, episode, now=now)
    text = _render(report, fmt)
    if not text.endswith("\n"):
        text += "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot write {output}: {exc.strerror or exc}", hint="give -o a writable path"
        ) from exc
    out.print(str(output), markup=False, highlight=False, soft_wrap=True)
