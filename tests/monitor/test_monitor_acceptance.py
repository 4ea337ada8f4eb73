"""Issue 12's acceptance, end to end: the real ``rollsafe monitor`` process, the emulator
with the example backend, local receivers that record what they get.

- a service that starts answering 503: exactly one trigger at each receiver after the
  threshold, exactly one resolve after recovery, with a monitor restart in between;
- ``JWT secret not configured`` at ERROR fires the JWT alert naming service and revision,
  with the line's ``insertId`` as evidence;
- a deploy that passes verification and breaks after it is rolled back by the monitor,
  and ``history`` says so and why;
- two monitors on PostgreSQL: kill -9 the leader, the standby takes over, one
  notification per event.

No secret value, receiver URL or key appears in any output.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rollsafe.monitor.history import read_alert_history
from tests.deploy.conftest import ENV, SERVICE, Site
from tests.monitor._monitor_site import (
    FAST,
    KEY_CANARY,
    URL_CANARY,
    MonitorProcess,
    monitored,
    received,
)
from tests.monitor._receivers import RecordingServer, receiver_servers  # noqa: F401

DOWN = "ServiceDown"
KINDS = ("webhook", "alertmanager", "pagerduty", "slack", "apprise")


def _deploy(site: Site, **extra_env: str) -> str:
    """Deploy the service (strong secrets) with ``extra_env``; its revision."""
    site.seed()
    result = site.deploy(extra_env=extra_env or None)
    assert result.exit_code == 0, result.message
    assert result.plan is not None
    return result.plan.spec.revision


def _wait(what: str, ready: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _no_leaks(site: Site, *texts: str) -> None:
    """No receiver URL or key, no secret value in ``texts``, nor in the state the monitor
    kept (alert states, sent-markers, cursors, templates) nor in the journal."""
    store = site.journal.store
    kept = [
        json.dumps(store.kv_list(namespace), default=str) for namespace in store.kv_namespaces()
    ]
    journal = [json.dumps(r.to_dict(), default=str) for r in site.journal.history(ENV)]
    for text in (*texts, *kept, *journal):
        assert URL_CANARY not in text
        assert KEY_CANARY not in text
        for value in site.values:
            assert value not in text


def test_503_triggers_once_and_resolves_once_across_a_restart(
    site: Site,
    receiver_servers: Callable[..., RecordingServer],  # noqa: F811
) -> None:
    servers = {kind: receiver_servers() for kind in KINDS}
    monitored(site, receivers=servers)
    flag = site.root / "broken"
    _deploy(site, BACKEND_FAIL_FILE=str(flag))
    outputs = []
    with MonitorProcess(site, name="first") as first:
        first.wait_for("monitoring", stream="stderr")
        flag.touch()
        first.wait_for(f"{DOWN} firing")
        for kind, server in servers.items():
            _wait(f"{kind}'s trigger", lambda k=kind, s=server: bool(received(k, s, DOWN)))
        assert first.stop(signal.SIGTERM) == 0
        outputs += [first.stdout, first.stderr]
    assert "pending" in outputs[0]
    with MonitorProcess(site, name="second") as second:
        second.wait_for("monitoring", stream="stderr")
        flag.unlink()
        second.wait_for(f"{DOWN} resolved")
        for kind, server in servers.items():
            _wait(f"{kind}'s resolve", lambda k=kind, s=server: len(set(received(k, s, DOWN))) > 1)
        assert second.stop(signal.SIGTERM) == 0
        outputs += [second.stdout, second.stderr]
    assert f"{DOWN} firing" not in outputs[2], "the restarted monitor said it again"
    for kind in ("webhook", "pagerduty", "slack", "apprise"):
        assert received(kind, servers[kind], DOWN) == ["trigger", "resolve"], kind
    # Alertmanager hears a firing alert again while it fires (its protocol), then once resolved
    said = received("alertmanager", servers["alertmanager"], DOWN)
    assert said[-1] == "resolved"
    assert said.count("resolved") == 1
    assert set(said[:-1]) == {"firing"}
    webhook = [r.json for r in servers["webhook"].requests]
    firing = next(a for body in webhook for a in body["alerts"] if a["status"] == "firing")
    assert (
        firing["labels"] | {"alertname": DOWN, "env": ENV, "service": SERVICE} == firing["labels"]
    )
    assert firing["labels"]["revision"].startswith(SERVICE)
    _no_leaks(site, *outputs)
    # what the receivers got names no receiver URL (PagerDuty's body carries its own key)
    bodies = [r.text for server in servers.values() for r in server.requests]
    assert not [body for body in bodies if URL_CANARY in body]


def test_jwt_error_line_fires_the_jwt_alert_with_its_insert_id(
    site: Site,
    receiver_servers: Callable[..., RecordingServer],  # noqa: F811
) -> None:
    hook = receiver_servers()
    jwt = '[{name: jwt, match: "(?i)jwt.*(not configured|invalid|missing)", severity: critical}]'
    monitored(site, monitor=f"{FAST}, log_alerts: {jwt}", receivers={"webhook": hook})
    log = site.root / "errors.log"
    log.touch()
    revision = _deploy(site, BACKEND_LOG_FILE=str(log))
    with MonitorProcess(site, "--format", "json") as monitor:
        monitor.wait_for("monitoring", stream="stderr")
        with log.open("a") as out:
            out.write("JWT secret not configured\n")
        line = json.loads(monitor.wait_for('"alert": "jwt", "state": "firing"'))
        _wait("the webhook's jwt alert", lambda: bool(received("webhook", hook, "jwt")))
        assert monitor.stop() == 0
        outputs = [monitor.stdout, monitor.stderr]
    assert line["service"] == SERVICE
    assert line["revision"] == revision
    (evidence,) = [e for e in line["evidence"] if e.startswith("log://")]
    log_name, insert_id = evidence.removeprefix("log://").rsplit("/", 1)
    assert log_name == "run.googleapis.com/stderr"
    assert site.logs is not None
    entries = list(site.logs.entries(f'insertId="{insert_id}"', what="the JWT line", max_results=5))
    assert len(entries) == 1
    alert = next(
        a for r in hook.requests for a in r.json["alerts"] if a["labels"]["alertname"] == "jwt"
    )
    assert alert["labels"]["service"] == SERVICE
    assert alert["labels"]["revision"] == revision
    assert insert_id in alert["annotations"]["evidence"]
    _no_leaks(site, *outputs)


def test_a_deploy_that_breaks_after_verification_is_rolled_back(
    site: Site,
    receiver_servers: Callable[..., RecordingServer],  # noqa: F811
) -> None:
    hook = receiver_servers()
    monitored(
        site,
        monitor=FAST.replace("rollback_within: off", "rollback_within: 10m"),
        receivers={"webhook": hook},
    )
    good = _deploy(site)
    flag = site.root / "broken"
    bad = _deploy(site, BACKEND_FAIL_FILE=str(flag))
    assert site.split() == {bad: 100}
    with MonitorProcess(site) as monitor:
        monitor.wait_for("monitoring", stream="stderr")
        flag.touch()  # a few seconds after its verification passed, the revision breaks
        line = monitor.wait_for(f"{DOWN} firing.*rolled {SERVICE} back to {good}")
        monitor.wait_for(f"{DOWN} resolved")
        assert monitor.stop() == 0
    assert site.split() == {good: 100}
    # the alert history keeps the episode, with its end and the rollback, for `rollsafe why`
    (down,) = [
        r
        for r in read_alert_history(
            site.journal.store, ENV, since=0, until=math.inf, service=SERVICE
        )
        if r.alertname == DOWN
    ]
    assert down.action
    assert f"back to {good}" in down.action
    assert down.ends_at is not None
    history = site.cli("history", "--env", ENV)
    assert history.exit_code == 0, history.output
    assert f"monitor: {DOWN} fired" in history.output
    records = site.journal.history(ENV, SERVICE)
    rollback = records[0]
    assert rollback.checks == "rollback"
    assert rollback.outcome == "rolled-back"
    assert rollback.reason is not None
    assert "after deploy" in rollback.reason
    assert rollback.revision == good
    # the alert says what the monitor did
    firing = next(
        a for r in hook.requests for a in r.json["alerts"] if a["labels"]["alertname"] == DOWN
    )
    assert f"back to {good}" in firing["annotations"]["description"]
    assert f"back to {good}" in line
    _no_leaks(site, history.output, line)


def test_ha_on_postgres_kill_the_leader_and_the_standby_takes_over(
    site: Site,
    receiver_servers: Callable[..., RecordingServer],  # noqa: F811
    postgres_url: str,
    postgres_password: str,
) -> None:
    hook = receiver_servers()
    monitored(site, receivers={"webhook": hook})
    flag = site.root / "broken"
    _deploy(site, BACKEND_FAIL_FILE=str(flag))
    env = {"PGPASSWORD": postgres_password}
    state = ("--state", postgres_url)
    with MonitorProcess(site, *state, name="leader", **env) as leader:
        leader.wait_for("monitoring", stream="stderr")
        standby = MonitorProcess(site, *state, name="standby", **env)
        _ha(hook, flag, leader, standby)
        outputs = [leader.stdout, leader.stderr, standby.stdout, standby.stderr]
    assert received("webhook", hook, DOWN) == ["trigger", "resolve"]
    assert f"{DOWN} firing" not in standby.stdout
    for text in outputs:
        assert postgres_password not in text
    _no_leaks(site, *outputs)


def _ha(hook: RecordingServer, flag: Path, leader: MonitorProcess, standby: MonitorProcess) -> None:
    with standby:
        standby.wait_for("standby: the leader is", stream="stderr")
        flag.touch()
        leader.wait_for(f"{DOWN} firing")
        _wait("the trigger", lambda: bool(received("webhook", hook, DOWN)))
        assert leader.stop(signal.SIGKILL) == -signal.SIGKILL
        standby.wait_for("this monitor leads")
        flag.unlink()
        standby.wait_for(f"{DOWN} resolved")
        _wait("the resolve", lambda: len(received("webhook", hook, DOWN)) > 1)
        assert standby.stop() == 0


@pytest.fixture(autouse=True)
def _state_dir_is_the_sites(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The monitor processes find the session's emulator through the site's state dir."""
    monkeypatch.delenv("ROLLSAFE_STATE", raising=False)
    assert Path(site.state_dir).is_dir()
