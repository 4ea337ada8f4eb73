"""`deploy`, `rollback`, `history`, `status`, `demo`: changing and reading what serves."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rollsafe.cli._common import (
    EnvOpt,
    ManifestOpt,
    StateOpt,
    StoreOpt,
    TextJsonOpt,
    app,
    check_text_or_json,
    err,
    guarded,
    journal_for,
    out,
    warn,
)

# -- deploys -----------------------------------------------------------------------------

ServiceOpt = Annotated[str, typer.Option("--service", "-s", help="The service.")]
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


def _tokens(platform: Any, impersonate: str | None) -> Any:
    """The ID tokens the probes carry, from where ``platform``'s APIs are."""
    from rollsafe.deploy._auth import tokens_for

    return tokens_for(platform, impersonate)


def _revision_logs(resolved: Any) -> Any:
    """The environment's Cloud Logging, where a failed revision's exit code is read from."""
    from rollsafe._environments import gcp_endpoint
    from rollsafe.platforms.logs import CloudLoggingRevisionLogs

    return CloudLoggingRevisionLogs(resolved.gcp_project, endpoint=gcp_endpoint(resolved))


class _StagePrinter:
    """Draws deploy events: a spinner while a stage runs, then its result and time."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Any = None

    def __call__(self, event: Any) -> None:
        kind, stage, detail, seconds = event.kind, event.stage, event.detail, event.seconds
        if kind == "start":
            self._stop()
            label = f"{stage} {detail}".strip()
            self._status = self.console.status(f"[bold]{label}[/] ...")
            self._status.start()
            return
        if kind == "info":
            self.console.print(f"    {detail}", style="dim", markup=False, highlight=False)
            return
        self._stop()
        timing = f" [dim]{seconds:.2f} s[/]" if seconds is not None else ""
        mark = {"ok": "[green]✓[/]", "fail": "[red]✗[/]", "skip": "[yellow]-[/]"}[kind]
        text = f" [dim]{detail}[/]" if detail and kind != "ok" else ""
        self.console.print(f"{mark} {stage}{timing}{text}", highlight=False)

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def _say_finishing(text: str) -> None:
    """A second signal during the rollback: say why rollsafe does not stop yet."""
    err.print(text, style="bold yellow", highlight=False, markup=False)


def _open_env(file: Path, env: str) -> tuple[Any, Any]:
    from rollsafe.manifest import load_manifest

    manifest = load_manifest(file)
    return manifest, manifest.resolve(env)


def _listeners(fmt: str) -> tuple[_StagePrinter, Any, Any]:
    """The stage printer (on stderr in json mode: stdout holds the document alone), the
    stage log for the document, and the listener that feeds both."""
    from rollsafe.cli._deploy_output import Listeners, StageLog

    printer = _StagePrinter(err if fmt == "json" else out)
    stages = StageLog()
    return printer, stages, Listeners(printer, stages)


def _print_result(result: Any, fmt: str = "text", stages: Any = None) -> None:
    if fmt == "json":
        from rollsafe.cli._deploy_output import StageLog, deploy_document, dump

        sys.stdout.write(dump(deploy_document(result, stages or StageLog())))
        return
    style = {0: "bold green", 1: "bold yellow", 3: "bold red", 4: "bold red"}.get(
        result.exit_code, "bold"
    )
    out.print(f"{result.outcome}: {result.message}", style=style, highlight=False)
    if result.report is not None and not result.report.ok:
        from rollsafe.check import render_text

        out.print(render_text(result.report))
    if result.hint:
        out.print(f"hint: {result.hint}", style="dim", highlight=False)


@app.command()
@guarded
def deploy(
    env: EnvOpt,
    service: ServiceOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    image: Annotated[
        str | None, typer.Option("--image", help="Image to deploy (cloudrun).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and its difference; change nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Go on despite findings or an unhealthy service.")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why you force or skip (recorded).")
    ] = None,
    skip_checks: Annotated[
        bool, typer.Option("--skip-checks", help="Skip preflight (strict: needs --force --reason).")
    ] = False,
    canary: Annotated[
        str, typer.Option("--canary", help="Traffic steps, e.g. 10,50,100 (default: 100).")
    ] = "100",
    watch: Annotated[
        float | None,
        typer.Option("--watch", help="Seconds to watch after the shift (default 30 strict, 0)."),
    ] = None,
    store: StoreOpt = None,
    state: StateOpt = None,
    impersonate: ImpersonateOpt = None,
    fmt: TextJsonOpt = "text",
    keep_failed: Annotated[
        bool,
        typer.Option(
            "--keep-failed",
            help="A failed first deploy keeps its service for debugging (exit 4) instead of "
            "deleting it (exit 3).",
        ),
    ] = False,
) -> None:
    """Deploy a service safely: check, create without traffic, verify, shift, watch.

    Exit 0 deployed; 1 refused before any change; 3 verification failed and traffic was
    rolled back; 4 the rollback failed too (a human must act). `--format json` prints one
    document (result, stages, plan, check, rollback) and draws progress on stderr.

    Example: rollsafe deploy --env staging --service backend --canary 10,50,100
    """
    check_text_or_json(fmt)
    from rollsafe._environments import platform_for, store_for
    from rollsafe.deploy import Cancelled, DeployOptions, cancellable, run_deploy

    try:
        steps = tuple(int(part) for part in canary.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(
            f"'{canary}' is not a list of percents", param_hint="--canary"
        ) from None
    _, resolved = _open_env(file, env)
    options = DeployOptions(
        image=image,
        dry_run=dry_run,
        force=force,
        reason=reason,
        skip_checks=skip_checks,
        canary=steps,
        watch=watch,
        impersonate_service_account=impersonate,
        keep_failed=keep_failed,
    )
    printer, stages, listener = _listeners(fmt)
    with (
        # a dry run writes no record: it needs no journal, and no database to be up
        journal_for(resolved, "memory" if dry_run else state, changes=True) as journal,
        platform_for(resolved) as platform,
        store_for(resolved, store) as secret_store,
        _tokens(platform, impersonate) as tokens,
        _revision_logs(resolved) as revision_logs,
    ):
        try:
            # SIGINT/SIGTERM (a cancelled CI job): the deploy undoes itself, exit 130/143
            with cancellable(_say_finishing):
                result = run_deploy(
                    resolved,
                    service,
                    options,
                    platform=platform,
                    store=secret_store,
                    journal=journal,
                    listener=listener,
                    tokens=tokens,
                    logs=revision_logs,
                )
        except Cancelled as cancel:
            printer._stop()
            err.print(f"cancelled by {cancel.name} before the deploy began", highlight=False)
            raise typer.Exit(cancel.exit_code) from None
        finally:
            printer._stop()
    if dry_run and result.plan is not None and fmt == "text":
        plan = result.plan
        out.print(f"revision: {plan.spec.revision}", highlight=False)
        for name, ref in plan.spec.secrets.items():
            out.print(f"  secret {name} = {ref.secret}:{ref.version}", highlight=False)
        for name in sorted(plan.spec.env):
            shown = "(start-up contract)" if name == "ROLLSAFE_CONTRACT" else plan.spec.env[name]
            out.print(f"  env {name} = {shown}", highlight=False, markup=False)
        diff = plan.diff()
        serving = plan.serving_revision.name if plan.serving_revision else None
        if serving is None:
            out.print("no serving revision: everything above is new")
        elif diff:
            out.print(f"difference from the serving revision {serving}:", highlight=False)
        else:
            out.print(f"no difference from the serving revision {serving}", highlight=False)
        for line in diff:
            out.print(f"  {line}", highlight=False, markup=False)
    _print_result(result, fmt, stages)
    raise typer.Exit(result.exit_code)


@app.command()
@guarded
def rollback(
    env: EnvOpt,
    service: ServiceOpt,
    to: Annotated[
        str | None, typer.Option("--to", help="Revision (default: the last verified one).")
    ] = None,
    file: ManifestOpt = Path("rollsafe.yaml"),
    impersonate: ImpersonateOpt = None,
    fmt: TextJsonOpt = "text",
    state: StateOpt = None,
) -> None:
    """Give a previous revision all traffic and verify it.

    `--format json` prints one document (result, stages, rollback), progress on stderr.

    Example: rollsafe rollback --env staging --service backend --to backend-00003-abc
    """
    check_text_or_json(fmt)
    from rollsafe._environments import platform_for
    from rollsafe.deploy import manual_rollback

    _, resolved = _open_env(file, env)
    printer, stages, listener = _listeners(fmt)
    with (
        journal_for(resolved, state, changes=True) as journal,
        platform_for(resolved) as platform,
        _tokens(platform, impersonate) as tokens,
    ):
        try:
            result = manual_rollback(
                resolved,
                service,
                to=to,
                platform=platform,
                journal=journal,
                listener=listener,
                tokens=tokens,
            )
        finally:
            printer._stop()
    _print_result(result, fmt, stages)
    raise typer.Exit(result.exit_code)


@app.command()
@guarded
def history(
    env: EnvOpt,
    service: Annotated[
        str | None, typer.Option("--service", "-s", help="Only this service.")
    ] = None,
    file: ManifestOpt = Path("rollsafe.yaml"),
    fmt: TextJsonOpt = "text",
    limit: Annotated[int, typer.Option("--limit", help="At most this many deploys.")] = 50,
    state: StateOpt = None,
) -> None:
    """Show the deploy journal, newest first: who, what, checks, stages and outcome.

    Who (user, host, commit, CI job), what (revision, image), checks and findings, stage
    timings, outcome, rollback.

    Example: rollsafe history --env staging --format json
    """
    check_text_or_json(fmt)
    from rollsafe.cli._deploy_output import history_lines

    _, resolved = _open_env(file, env)
    with journal_for(resolved, state) as journal:
        records = journal.history(env, service, limit)
        # an attempt with no outcome whose process is gone is not running: it awaits
        # reconciling by the next deploy, rollback or status of its service
        gone = {
            r.id
            for r in records
            if r.in_progress and not journal.store.is_alive(r.session, r.host, r.pid)
        }
    if fmt == "json":
        data = [r.to_dict() | {"running": r.in_progress and r.id not in gone} for r in records]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if not records:
        out.print(f"no deploys to {env} yet", highlight=False)
    for line in history_lines(records, gone):
        out.print(line, highlight=False, markup=False, soft_wrap=True)


@app.command()
@guarded
def status(
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    service: Annotated[
        list[str] | None, typer.Option("--service", "-s", help="Only this service (repeatable).")
    ] = None,
    fmt: TextJsonOpt = "text",
    impersonate: ImpersonateOpt = None,
    state: StateOpt = None,
) -> None:
    """Each service's URL, serving revisions with traffic percent, and current health.

    Interrupted deploys are reconciled first, each only while its service's deploy lock
    is free (a deploy that runs, here or elsewhere, is left alone and named).

    Example: rollsafe status --env staging --format json
    """
    check_text_or_json(fmt)
    from rollsafe._environments import platform_for
    from rollsafe.check import select_services
    from rollsafe.deploy import service_status

    _, resolved = _open_env(file, env)
    names = select_services(resolved, service)
    with (
        journal_for(resolved, state) as journal,
        platform_for(resolved) as platform,
        _tokens(platform, impersonate) as tokens,
    ):
        statuses = service_status(
            resolved, names, platform=platform, journal=journal, tokens=tokens
        )
    if fmt == "json":
        data = {"env": env, "services": [s.to_dict() for s in statuses]}
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    for st in statuses:
        for line in st.reconciled:
            out.print(f"reconciled: {line}", style="yellow", highlight=False)
        if st.reconcile_skipped:
            out.print(f"not reconciled: {st.reconcile_skipped}", style="yellow", highlight=False)
        if not st.exists:
            out.print(f"{st.service}: not deployed", highlight=False)
            continue
        health = st.health.describe() if st.health else "no traffic"
        mark = "[green]healthy[/]" if st.health and st.health.ok else "[red]unhealthy[/]"
        out.print(f"[bold]{st.service}[/] {st.url}  {mark} ({health})", highlight=False)
        for t in st.traffic:
            tag = f" tag {t['tag']} {t['url']}" if t["tag"] else ""
            out.print(f"  {t['percent']:>3}% {t['revision']}{tag}", highlight=False)


@app.command()
@guarded
def demo(
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", help="Keep the demo's files here (default: a temp dir)."),
    ] = None,
    watch: Annotated[float, typer.Option("--watch", help="Watch window of each deploy.")] = 2.0,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            help="Keep serving the status page (and the emulator, the monitor) until Ctrl-C.",
        ),
    ] = False,
    serve: Annotated[
        str,
        typer.Option("--serve", help="Serve the status page on ADDR (default: a free port)."),
    ] = "127.0.0.1:0",
    loop_only: Annotated[
        bool,
        typer.Option(
            "--loop-only",
            help="Only the first deploy and the monitor's loop (scenes 0 and 6-9): quicker.",
        ),
    ] = False,
) -> None:
    """Play the staging incident on the local emulator, and show rollsafe stopping it.

    Then the loop: a deploy that passed verification breaks, the monitor alerts a local
    receiver and rolls it back, `rollsafe why` writes the report into the workspace, and
    the status page's URL and the report's path are printed. The answers while the demo
    breaks the service on purpose are counted apart.

    Exit 0 when every scenario ends as expected and no request failed outside the staged
    break. Leaves nothing running (--keep: until Ctrl-C). Without --workspace the files go
    to a temp dir that keeps the report and loses the emulator's state at the end.

    Examples:

      rollsafe demo

      rollsafe demo --keep --workspace demo --serve 127.0.0.1:9465
    """
    from rollsafe.demo import run_demo
    from rollsafe.monitor.server import MonitorServer

    if not MonitorServer(serve).loopback:  # a bad address fails here, before anything runs
        warn(f"--serve {serve}: the status page is reachable from other hosts")

    def say(text: str) -> None:
        out.print(text, style="bold cyan" if text[:1] in "(w" else None, highlight=False)

    printer = _StagePrinter(out)
    try:
        outcome = run_demo(
            say,
            printer,
            workspace=workspace,
            watch=watch,
            serve=serve,
            loop_only=loop_only,
            history=_demo_history,
            keep=_demo_keep if keep else None,
        )
    finally:
        printer._stop()
    if keep:  # the summary was said before serving; its last line ends the output still
        out.print(f"non-200 answers during demo: {outcome.non_200}", highlight=False)
    else:
        _demo_summary(outcome, kept=False)
    raise typer.Exit(0 if outcome.ok else 1)


def _demo_history(records: list[Any]) -> None:
    from rich.table import Table

    out.print("(5) the history: every attempt, forced ones with their reason", style="bold cyan")
    table = Table(header_style="bold")
    for column in ("revision", "checks", "outcome", "reason", "rollback"):
        table.add_column(column, overflow="fold")
    for r in reversed(records):
        rollback = "-"
        if r.rollback:
            seconds = r.rollback.get("seconds")
            rollback = f"{seconds:.2f} s" if isinstance(seconds, float) else "failed"
        table.add_row(r.revision or "-", r.checks, r.outcome or "-", r.reason or "", rollback)
    out.print(table)


def _demo_summary(outcome: Any, *, kept: bool) -> None:
    """Every scene's mark, (9) the status page and the report, the probes' count last."""
    loop = outcome.loop
    steps = [*outcome.steps, *(loop.steps if loop is not None else [])]
    for name, ok, _detail in steps:
        out.print(f"{'✓' if ok else '✗'} {name}", style="green" if ok else "red", highlight=False)
    if loop is not None:
        out.print("(9) the status page and the incident report", style="bold cyan")
        if loop.status_url:
            what = "status page" if loop.pages else "metrics (the status page is not installed)"
            note = "" if kept else " (served while the demo ran: --keep keeps it)"
            out.print(f"{what}: {loop.status_url}{note}", highlight=False, soft_wrap=True)
        if loop.report_html is not None and loop.report_md is not None:
            out.print(f"report: {loop.report_html}", highlight=False, soft_wrap=True)
            out.print(f"        {loop.report_md}", highlight=False, soft_wrap=True)
        out.print(
            f"staged break: {outcome.staged} non-200 answers while backend was broken on "
            "purpose (not counted below)",
            highlight=False,
        )
    took = f"demo took {outcome.seconds:.1f} s"
    if loop is not None:
        took += f" (the monitor's loop {loop.seconds:.1f} s)"
    out.print(f"{took}; {outcome.probes} probes", highlight=False)
    if outcome.non_200_seen:
        seen = ", ".join(outcome.non_200_seen)
        out.print(f"outside the staged break: {seen}", style="red", highlight=False)
    out.print(f"non-200 answers during demo: {outcome.non_200}", highlight=False)


def _demo_keep(outcome: Any) -> None:
    """``--keep``: the summary, then serve until SIGINT or SIGTERM."""
    from rollsafe.cli._monitor import _stopping

    _demo_summary(outcome, kept=True)
    loop = outcome.loop
    if loop is not None and loop.report_md is not None:
        manifest = loop.report_md.parent / "rollsafe.yaml"
        out.print(
            f"meanwhile, in another shell: rollsafe why --env staging -f {manifest}",
            style="dim",
            highlight=False,
            soft_wrap=True,
        )
    url = loop.status_url if loop is not None else None
    where = f" on {url}" if url else ""
    out.print(f"serving the status page{where}; Ctrl-C stops", style="bold", highlight=False)
    with _stopping() as stop:
        while not stop.wait(0.5):
            pass
