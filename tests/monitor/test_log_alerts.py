"""Log alerts: the defaults against the lines of the incident, thresholds and windows,
filters through the Logging API, and a running revision's JWT error on the emulator."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rollsafe.manifest._monitor_resolved import ResolvedLogAlert, ResolvedMonitor
from rollsafe.monitor.log_alerts import DEFAULT_LOG_ALERTS, LogAlertMatcher, log_alerts_of
from rollsafe.monitor.logs import LogEntryLine, ServiceLogReader
from rollsafe.platforms.logs import SYSTEM_LOG
from rollsafe.state.memory import MemoryStateStore
from tests.deploy.conftest import ENV, SERVICE, Site

STDERR = "run.googleapis.com/stderr"
_GUARD = (
    "start-up failed in phase config: SERVICE_SECRET machine_secret: the value looks like a"
    " human-chosen word"
)

# (id, line text, log, the default alert it fires or None)
LINES = [
    ("guard-critical", _GUARD, STDERR, "StartupGuardFailed"),
    ("exit-3", "Container called exit(3).", SYSTEM_LOG, "ContainerExited"),
    ("exit-0", "Container called exit(0).", SYSTEM_LOG, None),
    ("oom-kill", "Container terminated on signal 9.", SYSTEM_LOG, "ContainerExited"),
    (
        "startup-probe",
        'Default STARTUP TCP probe failed 1 time consecutively for container "backend" on'
        " port 8080. The instance was not started.",
        SYSTEM_LOG,
        "StartupProbeFailed",
    ),
    (
        "http-startup-probe",
        'STARTUP HTTP probe failed 3 times consecutively for container "backend" on path'
        ' "/health". The instance was not started.',
        SYSTEM_LOG,
        "StartupProbeFailed",
    ),
    ("jwt-not-configured", "JWT secret not configured", STDERR, "SecretConfigError"),
    ("env-not-set", "JWT_SECRET_KEY is not set", STDERR, "SecretConfigError"),
    ("missing-secret", "refusing to sign: missing secret", STDERR, "SecretConfigError"),
    ("probe-ok", "Default STARTUP TCP probe succeeded after 1 attempt", SYSTEM_LOG, None),
    ("request-401", '"GET /api/me HTTP/1.1" 401 Unauthorized', STDERR, None),
    ("guard-passed", "start-up checks passed (config, auth)", STDERR, None),
]


def _line(
    text: str, at: float, *, log: str = STDERR, n: int = 1, service: str = "web"
) -> LogEntryLine:
    return LogEntryLine(service, f"{service}-00002-new", log, "ERROR", text, f"id{n}", at)


def _settings(monitor: ResolvedMonitor) -> LogAlertMatcher:
    return LogAlertMatcher(lambda service: monitor)


def _failing(matcher: LogAlertMatcher, service: str, now: float) -> dict[str, tuple[str, ...]]:
    return {o.alertname: o.evidence for o in matcher.observe(service, now) if not o.ok}


@pytest.mark.parametrize(
    ("text", "log", "alert"), [c[1:] for c in LINES], ids=[c[0] for c in LINES]
)
def test_default_alerts_catch_the_incident_lines(text: str, log: str, alert: str | None) -> None:
    matcher = _settings(ResolvedMonitor())
    now = 1_000.0
    matcher.feed([_line(text, now - 1, log=log)])
    failing = _failing(matcher, "web", now)
    assert set(failing) == ({alert} if alert else set())
    assert matcher.last_matched == ({f"log://{log}/id1"} if alert else set())
    if alert:
        assert failing[alert] == (f"log://{log}/id1",)


def test_every_alert_is_observed_ok_or_not_with_thresholds_1_1() -> None:
    matcher = _settings(ResolvedMonitor())
    observed = matcher.observe("web", 1_000.0)
    assert [o.alertname for o in observed] == [a.name for a in DEFAULT_LOG_ALERTS]
    assert all(o.ok and o.thresholds == (1, 1) and o.evidence == () for o in observed)


def test_count_and_window_make_the_threshold() -> None:
    alert = ResolvedLogAlert(name="jwt", severity="warning", match="(?i)jwt", count=3, window=60)
    matcher = _settings(ResolvedMonitor(default_log_alerts=False, log_alerts=(alert,)))
    now = 1_000.0
    matcher.feed([_line("JWT bad", now - 100, n=1)])  # outside the window
    matcher.feed([_line("JWT bad", now - 30, n=2), _line("jwt bad", now - 20, n=3)])
    (obs,) = matcher.observe("web", now)
    assert obs.ok
    assert obs.value == 2
    matcher.feed([_line("other", now - 5, n=4), _line("JWT worse", now - 2, n=5)])
    (obs,) = matcher.observe("web", now)
    assert not obs.ok
    assert (obs.alertname, obs.severity, obs.revision, obs.value) == (
        "jwt",
        "warning",
        "web-00002-new",
        3,
    )
    assert obs.evidence == tuple(f"log://{STDERR}/id{n}" for n in (2, 3, 5))
    assert "web" in obs.summary
    assert "web-00002-new" in obs.summary
    assert "JWT worse" in obs.description
    (later,) = matcher.observe("web", now + 31)  # the line of now-30 has left the window
    assert later.ok
    assert matcher.observe("other-service", now)[0].ok


def test_a_manifest_alert_replaces_the_default_of_its_name() -> None:
    mine = ResolvedLogAlert(name="ContainerExited", severity="warning", match="exit", count=2)
    monitor = ResolvedMonitor(log_alerts=(mine,))
    names = [a.name for a in log_alerts_of(monitor)]
    assert names.count("ContainerExited") == 1
    assert [a for a in log_alerts_of(monitor) if a.name == "ContainerExited"] == [mine]
    assert log_alerts_of(ResolvedMonitor(default_log_alerts=False)) == ()


def test_lines_of_other_services_do_not_count() -> None:
    matcher = _settings(ResolvedMonitor())
    matcher.feed([_line("JWT secret not configured", 999.0, service="api")])
    assert _failing(matcher, "web", 1_000.0) == {}
    assert set(_failing(matcher, "api", 1_000.0)) == {"SecretConfigError"}


def test_a_filter_alert_is_evaluated_through_the_logging_api(emulator: str, project: str) -> None:
    from tests.monitor.test_logs import Logs

    logs = Logs(emulator, project)
    now = time.time()
    logs.write(
        logs.entry("web", now - 3, insert_id="f1", severity="CRITICAL", text="disk full"),
        logs.entry("web", now - 2, insert_id="f2", severity="INFO", text="all good"),
    )
    alert = ResolvedLogAlert(name="critical", severity="critical", filter="severity>=CRITICAL")
    monitor = ResolvedMonitor(default_log_alerts=False, log_alerts=(alert,))
    with (
        MemoryStateStore() as store,
        ServiceLogReader(project, endpoint=emulator, store=store, env="qa") as reader,
    ):
        (obs,) = LogAlertMatcher(lambda s: monitor, filters=reader).observe("web", time.time())
        assert not obs.ok
        assert obs.evidence == ("log://run.googleapis.com/stderr/f1",)
        assert obs.revision == "web-00001-abc"
        bad = ResolvedLogAlert(name="bad", severity="critical", filter="nosuchfield.x=1")
        broken = ResolvedMonitor(default_log_alerts=False, log_alerts=(bad,))
        # a filter the API refuses gives no observation: the alert keeps its state
        assert LogAlertMatcher(lambda s: broken, filters=reader).observe("web") == []
    without = LogAlertMatcher(lambda s: monitor)
    assert without.observe("web") == []


def test_a_running_revisions_jwt_error_fires_the_alert(site: Site, tmp_path: Path) -> None:
    """Acceptance: ``JWT secret not configured`` at ERROR in a container's logs fires the
    JWT alert, naming the service and the revision, with the line's insertId as evidence."""
    feed = tmp_path / "backend-errors.log"
    feed.write_text("")
    site.seed()
    result = site.deploy(extra_env={"BACKEND_LOG_FILE": str(feed)})
    assert result.exit_code == 0, result.message
    assert result.plan is not None
    revision = result.plan.spec.revision
    jwt = ResolvedLogAlert(
        name="jwt", severity="critical", match="(?i)jwt.*(not configured|invalid|missing)"
    )
    monitor = ResolvedMonitor(log_alerts=(jwt,))
    matcher = LogAlertMatcher(lambda service: monitor)
    assert site.env.gcp_project is not None
    with (
        MemoryStateStore() as store,
        ServiceLogReader(
            site.env.gcp_project, endpoint=site.endpoint, store=store, env=ENV
        ) as reader,
    ):
        _requests, lines = reader.read([SERVICE])
        matcher.feed(lines)
        assert not _failing(matcher, SERVICE, time.time())
        with feed.open("a") as handle:
            handle.write("JWT secret not configured\n")
        deadline = time.monotonic() + 30
        found: list[LogEntryLine] = []
        while not found:
            assert time.monotonic() < deadline, "the line never reached the logs"
            time.sleep(0.2)
            _, lines = reader.read([SERVICE])
            matcher.feed(lines)
            found = [x for x in lines if "JWT secret not configured" in x.text]
        (line,) = found
        assert (line.severity, line.revision, line.log_name) == ("ERROR", revision, STDERR)
        observed = {o.alertname: o for o in matcher.observe(SERVICE, time.time())}
        for name in ("jwt", "SecretConfigError"):
            obs = observed[name]
            assert not obs.ok
            assert obs.revision == revision
            assert obs.evidence == (f"log://{STDERR}/{line.insert_id}",)
            assert SERVICE in obs.summary
            assert revision in obs.summary
        assert observed["StartupGuardFailed"].ok
        assert observed["ContainerExited"].ok


def test_the_incident_deploy_fires_the_default_alerts(site: Site) -> None:
    """The incident, forced through: the guard's CRITICAL line and Cloud Run's exit(3) fire
    StartupGuardFailed and ContainerExited for the revision that never started."""
    site.baseline()
    site.weaken()
    result = site.deploy(site.incident, force=True, reason="INC-42: the incident again")
    assert result.exit_code == 3, result.message
    assert result.plan is not None
    revision = result.plan.spec.revision
    matcher = LogAlertMatcher(lambda service: ResolvedMonitor())
    assert site.env.gcp_project is not None
    with (
        MemoryStateStore() as store,
        ServiceLogReader(
            site.env.gcp_project, endpoint=site.endpoint, store=store, env=ENV
        ) as reader,
    ):
        _, lines = reader.read([SERVICE])
    matcher.feed(lines)
    observed = {o.alertname: o for o in matcher.observe(SERVICE, time.time())}
    for name in ("StartupGuardFailed", "ContainerExited"):
        assert not observed[name].ok, name
        assert observed[name].revision == revision
        assert observed[name].evidence
        assert all(e.startswith("log://run.googleapis.com/") for e in observed[name].evidence)
    assert observed["SecretConfigError"].ok or observed["SecretConfigError"].revision == revision
    for value in site.values:  # the weak and strong secret values never reach an alert
        for obs in observed.values():
            assert value not in obs.summary + obs.description
