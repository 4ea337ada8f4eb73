"""``rollsafe demo``'s second half: the monitor closes the loop.

(6) with the monitor watching, a deploy passes its verification, and a few seconds later
the demo breaks it on purpose (the example backend answers 503 while ``BACKEND_FAIL_FILE``
exists); (7) the monitor (``MonitorEngine`` in this process, as ``rollsafe monitor`` runs
it) fires ``ServiceDown``, tells a webhook receiver on 127.0.0.1 that records what it gets,
and rolls the deploy back; (8) the incident report (``rollsafe why``'s, on the window of
the staged break) is written into the workspace as Markdown and HTML; (9) the status page
(``monitor --serve``'s server) and the report's path are printed.

The workspace's manifest only (never ``examples/rollsafe.yaml``) gets fast monitor settings
and the receiver (``_demo_monitor``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollsafe._demo_monitor import ALERTS_SECRET

if TYPE_CHECKING:
    from rollsafe._demo_monitor import DemoMonitor
    from rollsafe.manifest import ResolvedEnvironment
    from rollsafe.platforms.logs import CloudLoggingRevisionLogs
    from rollsafe.state.journal import DeployJournal, DeployRecord
    from rollsafe.stores.secretmanager import SecretManagerStore

__all__ = ["LoopOutcome", "demo_manifest", "play_loop", "write_report"]

#: fast, so the loop takes seconds: a probe a second, down after 2 failures, and a deploy
#: that breaks within 5 minutes rolled back; the 5xx rate is left out (the prober's own 503s
#: would keep it firing for its window after the rollback)
MONITOR = (
    "{interval: 1s, failure_threshold: 2, success_threshold: 1, rollback_within: 5m, "
    "max_error_rate: 1}"
)
_ENV_LINE = "  staging: {platform: local, strict: true}"
_ALERTS = (
    "  staging:\n"
    "    platform: local\n"
    "    strict: true\n"
    "    # the demo's own receiver on 127.0.0.1 (its URL kept in Secret Manager)\n"
    f'    alerts: [{{type: webhook, name: demo-receiver, url: {{secret: "{ALERTS_SECRET}"}}}}]'
)
_SERVICE_ANCHOR = "    public: false\n"
#: the file whose existence breaks the deployed revision (the backend's BACKEND_FAIL_FILE)
FLAG_FILE = "break-backend"
#: how long the deployed revision serves well before the demo breaks it
HEALTHY_FOR = 1.0
#: bounds on each wait of the loop (the monitor acts within seconds; these only end a hang)
ROLLBACK_TIMEOUT = 30.0
RESOLVE_TIMEOUT = 15.0


def demo_manifest(text: str) -> str:
    """The example manifest with the demo's fast ``monitor:`` settings for the backend and
    its webhook receiver for staging."""
    if _ENV_LINE not in text or _SERVICE_ANCHOR not in text:
        raise RuntimeError("examples/rollsafe.yaml no longer has the expected staging/backend")
    text = text.replace(_ENV_LINE, _ALERTS, 1)
    return text.replace(_SERVICE_ANCHOR, f"{_SERVICE_ANCHOR}    monitor: {MONITOR}\n", 1)


# -- the loop ---------------------------------------------------------------------------


@dataclass
class LoopOutcome:
    """What the loop saw: the alerts the receiver got, the monitor's rollback as the journal
    holds it, the report files, the status page's URL."""

    steps: list[tuple[str, bool, str]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    rollback: DeployRecord | None = None
    report_md: Path | None = None
    report_html: Path | None = None
    incident: str | None = None
    status_url: str | None = None
    #: the status page is served (else /metrics only: the web pages are not installed)
    pages: bool = False
    #: when the staged break began (``time.time()``)
    broke_at: float | None = None
    seconds: float = 0.0


def rollback_of(journal: DeployJournal, env: str, service: str, after: float) -> Any:
    """The monitor's rollback of ``service`` journaled after ``after``, once it ended."""
    for record in journal.history(env, service, limit=5):
        if (
            record.checks == "rollback"
            and record.started >= after
            and record.outcome is not None
            and (record.reason or "").startswith("monitor:")
        ):
            return record
    return None


def wait_until(ready: Callable[[], Any], timeout: float, step: float = 0.1) -> Any:
    """``ready()``'s first truthy value, or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = ready()
        if found or time.monotonic() >= deadline:
            return found or None
        time.sleep(step)


# -- the report ----------------------------------------------------------------------------


def write_report(
    env: ResolvedEnvironment,
    services: list[str],
    *,
    state: Any,
    platform: Any,
    logs: CloudLoggingRevisionLogs | None,
    secrets: SecretManagerStore,
    since: float,
    until: float,
    root: Path,
) -> tuple[Path, Path, Any]:
    """``rollsafe why --since SINCE --until UNTIL``'s report, as ``incident-report.md`` and
    ``incident-report.html`` in ``root``; returns both paths and the report."""
    from rollsafe.incidents import EvidenceCollector, build_report, render_html, render_markdown

    collector = EvidenceCollector(env, state=state, platform=platform, logs=logs, secrets=secrets)
    evidence = collector.collect(services, since, until)
    report = build_report(evidence, None, now=until)
    markdown, html = root / "incident-report.md", root / "incident-report.html"
    for path, text in ((markdown, render_markdown(report)), (html, render_html(report))):
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return markdown, html, report


# -- the scenes ----------------------------------------------------------------------------


def play_loop(
    monitor: DemoMonitor,
    *,
    deploy: Callable[..., Any],
    prober: Any,
    platform: Any,
    logs: CloudLoggingRevisionLogs | None,
    root: Path,
    service: str,
) -> LoopOutcome:
    """Scenes (6) to (8) with ``monitor`` watching; ``deploy(**options)`` deploys the good
    manifest's ``service``, ``prober`` is the demo's (its answers during the staged break
    are counted apart)."""
    started = time.perf_counter()
    say, env, journal, sink = monitor.say, monitor.env, monitor.journal, monitor.sink
    loop = LoopOutcome(status_url=monitor.url, pages=monitor.pages)

    def step(name: str, ok: bool, detail: str) -> bool:
        loop.steps.append((name, ok, detail))
        say(("✓ " if ok else "✗ ") + f"{name}: {detail}")
        return ok

    flag = root / FLAG_FILE
    flag.unlink(missing_ok=True)
    say("(6) the monitor watches; a deploy passes its verification, then breaks")
    say(
        f"    monitor: a probe a second, alerts to a webhook receiver on 127.0.0.1, "
        f"rollback within 5 min of a deploy; {monitor.url}"
    )
    since = time.time()
    result = deploy(extra_env={"BACKEND_FAIL_FILE": str(flag)})
    detail = f"exit {result.exit_code} (expected 0): {result.message}"
    if not step("deploy passes verification", result.exit_code == 0, detail):
        return _done(loop, started)
    time.sleep(HEALTHY_FOR)
    prober.staging(True)
    flag.touch()
    loop.broke_at = time.time()
    at = time.strftime("%H:%M:%SZ", time.gmtime(loop.broke_at))
    say(f"    {at}, {HEALTHY_FOR:g} s later: the revision breaks, every answer a 503 (staged)")
    say("(7) the monitor alerts the receiver and rolls the deploy back")
    try:
        _rolled_back(monitor, loop, prober)
    finally:
        flag.unlink(missing_ok=True)
        prober.staging(False)
    loop.alerts = sink.alerts()
    if loop.rollback is None:
        return _done(loop, started)
    start = float(int(since - 1.0))  # whole seconds, as --since takes them
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    say(f"(8) rollsafe why --since {stamp}: the report, every claim citing recorded evidence")
    until = time.time()
    md, html, report = write_report(
        env,
        [service],
        state=journal.store,
        platform=platform,
        logs=logs,
        secrets=monitor.secrets,
        since=start,
        until=until,
        root=root,
    )
    loop.report_md, loop.report_html, loop.incident = md, html, report.title
    cited = sum(1 for w in report.whys if w.evidence)
    step("report written", md.is_file() and html.is_file(), f"{report.title} ({cited} cited whys)")
    return _done(loop, started)


def _rolled_back(monitor: DemoMonitor, loop: LoopOutcome, prober: Any) -> None:
    """Waits for the alert at the receiver, the rollback in the journal, the prober's
    first 200 after it and the alert's resolve; each a step of ``loop``."""
    sink, env, service = monitor.sink, monitor.env, next(iter(monitor.env.services))
    broke_at = loop.broke_at or 0.0
    alerted = sink.wait(lambda: sink.has("ServiceDown", "firing"), ROLLBACK_TIMEOUT)
    firing = [a for a in sink.alerts() if a.get("status") == "firing"]
    what = firing[0].get("annotations", {}).get("summary", "") if firing else ""
    why = monitor.failed or "nothing arrived"
    loop.steps.append(
        ("receiver got the alert", alerted, f"ServiceDown firing: {what}" if alerted else why)
    )
    record = wait_until(
        lambda: rollback_of(monitor.journal, env.name, service, broke_at), ROLLBACK_TIMEOUT
    )
    loop.rollback = record
    if record is None:
        detail = monitor.failed or "no rollback in the journal"
    else:
        seconds = (record.finished or record.started) - broke_at
        detail = f"{record.outcome} to {record.revision} {seconds:.1f} s after the break"
    ok = record is not None and record.outcome == "rolled-back"
    loop.steps.append(("monitor rolled the deploy back", ok, detail))
    for name, passed, text in loop.steps[-2:]:
        monitor.say(("✓ " if passed else "✗ ") + f"{name}: {text}")
    if record is None:
        return
    mark = time.monotonic()
    wait_until(lambda: prober.last_ok > mark, RESOLVE_TIMEOUT)
    sink.wait(lambda: sink.has("ServiceDown", "resolved"), RESOLVE_TIMEOUT)


def _done(loop: LoopOutcome, started: float) -> LoopOutcome:
    loop.seconds = time.perf_counter() - started
    return loop
