"""``rollsafe monitor`` as users run it: exit codes of ``--once``, errors without
tracebacks, the SQLite refusal of a second monitor, a clean stop, ``--serve``, receivers
failing in the output (never their URL)."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CANARY_STRONG
from tests.deploy.conftest import ENV, SERVICE, Site
from tests.monitor._monitor_site import (
    URL_CANARY,
    MonitorProcess,
    monitored,
    run_once,
)
from tests.monitor._receivers import RecordingServer, receiver_servers  # noqa: F401


def _deploy(site: Site, **extra_env: str) -> None:
    site.seed()
    result = site.deploy(extra_env=extra_env or None)
    assert result.exit_code == 0, result.message


def test_once_exits_0_when_healthy_and_1_when_failing(site: Site) -> None:
    monitored(site)
    flag = site.root / "broken"
    _deploy(site, BACKEND_FAIL_FILE=str(flag))
    healthy = run_once(site)
    assert healthy.returncode == 0, healthy.stderr
    assert "Traceback" not in healthy.stderr
    flag.touch()
    failing = run_once(site, "--format", "json")
    assert failing.returncode == 1, failing.stderr
    lines = [json.loads(line) for line in failing.stdout.splitlines()]
    assert {(x["service"], x["alert"], x["state"]) for x in lines} >= {
        (SERVICE, "ServiceDown", "pending")
    }
    flag.unlink()


def test_a_service_not_deployed_is_reported_not_alerted(site: Site) -> None:
    monitored(site)
    result = run_once(site)
    assert result.returncode == 0, result.stderr
    assert f"{SERVICE} is not deployed in {ENV}" in result.stdout
    assert "firing" not in result.stdout
    assert "pending" not in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--format", "xml"), "not one of text, json"),
        (("--env", "nowhere"), "nowhere"),
        (("--no-such-flag",), "No such option"),
        (("--state", "postgresql://rollsafe@127.0.0.1:1/none"), "127.0.0.1:1"),
        (("--serve", "example.com:9464"), "example.com"),
    ],
    ids=["bad-format", "unknown-env", "unknown-flag", "state-unreachable", "serve-hostname"],
)
def test_errors_exit_2_without_a_traceback(
    site: Site, args: tuple[str, ...], expected: str
) -> None:
    monitored(site)
    _deploy(site)
    result = run_once(site, *args, ROLLSAFE_STATE_PASSWORD=CANARY_STRONG)
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert CANARY_STRONG not in result.stdout + result.stderr


def test_a_receiver_secret_missing_is_named_exit_2(
    site: Site,
    receiver_servers: Callable[..., RecordingServer],  # noqa: F811
) -> None:
    monitored(site, receivers={"slack": receiver_servers()})
    _deploy(site)
    site.store.add_version(f"hook-slack-{ENV}", " ")  # the latest version is empty
    result = run_once(site)
    assert result.returncode == 2, result.stderr
    assert f"hook-slack-{ENV}" in result.stderr
    assert "Traceback" not in result.stderr
    assert URL_CANARY not in result.stderr


def test_sqlite_refuses_a_second_monitor_naming_the_first(site: Site) -> None:
    monitored(site)
    _deploy(site)
    with MonitorProcess(site) as first:
        first.wait_for("monitoring", stream="stderr")
        second = run_once(site)
        assert second.returncode == 1, second.stderr
        assert "another monitor of staging runs" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert first.stop(signal.SIGINT) == 0
    # stopped cleanly, it let go of its lock: the next monitor starts
    assert run_once(site).returncode == 0


def test_serve_exposes_metrics_that_parse(site: Site) -> None:
    monitored(site)
    _deploy(site)
    with MonitorProcess(site, "--serve", "127.0.0.1:0") as monitor:
        line = monitor.wait_for(r"serving /metrics on http://127\.0\.0\.1:\d+", stream="stderr")
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match is not None
        monitor.wait_for("monitoring", stream="stderr")
        families: dict[str, object] = {}
        for _ in range(100):
            body = httpx.get(match.group(0) + "/metrics", timeout=5).text
            families = {f.name: f for f in text_string_to_metric_families(body)}
            if "rollsafe_monitor_probes" in families:
                break
            time.sleep(0.2)
        assert "rollsafe_monitor_probes" in families
        assert monitor.stop() == 0


def test_a_failing_receiver_is_reported_without_its_url(
    site: Site,
    receiver_servers: Callable[..., RecordingServer],  # noqa: F811
) -> None:
    hook = receiver_servers()
    hook.status = 404  # never retried: a configuration error
    monitored(site, receivers={"webhook": hook})
    flag = site.root / "broken"
    _deploy(site, BACKEND_FAIL_FILE=str(flag))
    flag.touch()
    with MonitorProcess(site) as monitor:
        monitor.wait_for("ServiceDown firing")
        line = monitor.wait_for("ReceiverFailing")
        assert "404" in line
        assert monitor.stop() == 0
        output = monitor.stdout + monitor.stderr
    assert URL_CANARY not in output
    flag.unlink()
