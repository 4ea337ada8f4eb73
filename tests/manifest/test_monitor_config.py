"""The manifest's ``monitor:`` per service and ``alerts:`` per environment (issue 12)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rollsafe.errors import ManifestError
from rollsafe.manifest import load_manifest

CANARY_HOOK = "http://127.0.0.1:9/hook-Cn4ryHookT0ken"

MANIFEST = f"""
version: 1
project: shop
environments:
  qa:
    platform: local
    strict: true
    alerts:
      - {{type: webhook, url: {{secret: "alert-hook-{{env}}"}}}}
      - {{type: alertmanager, url: "http://127.0.0.1:9093"}}
      - {{type: pagerduty, routing_key: {{secret: "pd-key-{{env}}"}}}}
      - {{type: slack, url: {{secret: "slack-hook-{{env}}"}}}}
      - {{type: apprise, url: {{secret: "apprise-{{env}}"}}}}
      - {{type: webhook, url: "{CANARY_HOOK}"}}
  dev: {{platform: local}}
services:
  web:
    command: [python, -m, http.server]
    monitor: {{interval: 1s, failure_threshold: 3, success_threshold: 2, rollback_within: 10m,
              log_alerts: [{{name: jwt, match: "(?i)jwt.*(not configured|invalid|missing)",
                            severity: critical}}]}}
    overrides:
      dev:
        monitor: {{interval: 5s}}
  api:
    command: [python, -m, http.server]
"""


def test_the_issue_shape_resolves(write: Callable[[str, str], Path]) -> None:
    manifest = load_manifest(write("rollsafe.yaml", MANIFEST))
    qa = manifest.resolve("qa")
    names = [(r.type, r.name) for r in qa.alerts]
    assert names == [
        ("webhook", "webhook"),
        ("alertmanager", "alertmanager"),
        ("pagerduty", "pagerduty"),
        ("slack", "slack"),
        ("apprise", "apprise"),
        ("webhook", "webhook-2"),
    ]
    assert qa.alerts[0].url_secret == "alert-hook-qa"
    assert qa.alerts[2].routing_key_secret == "pd-key-qa"
    assert qa.alerts[5].url == CANARY_HOOK
    # a receiver URL is a secret: never in a repr
    assert CANARY_HOOK not in repr(qa.alerts)
    assert CANARY_HOOK not in repr(qa)
    web = qa.services["web"].monitor
    assert (web.interval, web.failure_threshold, web.success_threshold) == (1.0, 3, 2)
    assert web.rollback_within == 600.0
    (jwt,) = web.log_alerts
    assert (jwt.name, jwt.severity, jwt.count, jwt.filter) == ("jwt", "critical", 1, None)


@pytest.mark.parametrize(
    ("env", "service", "expected"),
    [
        pytest.param("qa", "api", 900.0, id="strict-default-15m"),
        pytest.param("dev", "api", None, id="non-strict-default-off"),
        pytest.param("dev", "web", None, id="override-keeps-non-strict-default"),
        pytest.param("qa", "web", 600.0, id="explicit"),
    ],
)
def test_rollback_within_defaults(
    write: Callable[[str, str], Path], env: str, service: str, expected: float | None
) -> None:
    resolved = load_manifest(write("rollsafe.yaml", MANIFEST)).resolve(env)
    assert resolved.services[service].monitor.rollback_within == expected


def test_defaults_without_a_monitor_section(write: Callable[[str, str], Path]) -> None:
    monitor = load_manifest(write("rollsafe.yaml", MANIFEST)).resolve("dev").services["api"].monitor
    assert (monitor.interval, monitor.failure_threshold, monitor.success_threshold) == (30.0, 3, 2)
    assert monitor.repeat == 4 * 3600.0
    assert monitor.default_log_alerts is True
    assert monitor.log_alerts == ()


@pytest.mark.parametrize(
    ("snippet", "words"),
    [
        pytest.param("monitor: {interval: 0.5s}", "greater than or equal to 1", id="interval"),
        pytest.param(
            "monitor: {log_alerts: [{name: x, match: a, filter: b}]}", "exactly one", id="both"
        ),
        pytest.param("monitor: {log_alerts: [{name: x}]}", "exactly one", id="neither"),
        pytest.param(
            "monitor: {log_alerts: [{name: x, match: '(unclosed'}]}",
            "not a regular expression",
            id="bad-regex",
        ),
        pytest.param("monitor: {rollback_within: off}", None, id="off-is-fine"),
    ],
)
def test_bad_monitor_settings_name_the_key(
    write: Callable[[str, str], Path], snippet: str, words: str | None
) -> None:
    text = f"""
    version: 1
    project: shop
    environments: {{qa: {{platform: local, strict: true}}}}
    services:
      web:
        command: [python]
        {snippet}
    """
    path = write("rollsafe.yaml", text)
    if words is None:
        assert load_manifest(path).resolve("qa").services["web"].monitor.rollback_within is None
        return
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert words in str(info.value)
    assert info.value.line == 7
    assert "monitor" in (info.value.key_path or "")


@pytest.mark.parametrize(
    ("receiver", "words"),
    [
        pytest.param("{type: pagerduty}", "needs `routing_key`", id="pagerduty-no-key"),
        pytest.param("{type: slack}", "needs `url`", id="slack-no-url"),
        pytest.param("{type: sms, url: x}", "type", id="unknown-type"),
        pytest.param("{type: slack, url: x, routing_key: y}", "routing_key", id="key-on-slack"),
    ],
)
def test_bad_receivers_name_the_line(
    write: Callable[[str, str], Path], receiver: str, words: str
) -> None:
    text = f"""
    version: 1
    project: shop
    environments:
      qa:
        alerts:
          - {receiver}
    services: {{}}
    """
    with pytest.raises(ManifestError) as info:
        load_manifest(write("rollsafe.yaml", text))
    assert words in str(info.value)
    assert info.value.line == 6


# -- monitor.retention (issue 14) ---------------------------------------------------------
def test_retention_defaults_and_days(write: Callable[[str, str], Path]) -> None:
    text = MANIFEST.replace(
        "monitor: {interval: 1s,", "monitor: {retention: {raw: 36h, hourly: 14d}, interval: 1s,"
    )
    qa = load_manifest(write("rollsafe.yaml", text)).resolve("qa")
    web, api = qa.services["web"].monitor.retention, qa.services["api"].monitor.retention
    assert (web.raw, web.hourly, web.daily) == (36 * 3600.0, 14 * 86400.0, 90 * 86400.0)
    assert (api.raw, api.hourly, api.daily) == (2 * 86400.0, 30 * 86400.0, 90 * 86400.0)


@pytest.mark.parametrize(
    ("snippet", "words", "key"),
    [
        pytest.param("{raw: 12h}", "at least 1d", "monitor.retention", id="raw-under-a-day"),
        pytest.param(
            "{raw: 3d, hourly: 2d}", "raw <= hourly <= daily", "monitor.retention", id="order"
        ),
        pytest.param("{daily: 10d}", "raw <= hourly <= daily", "monitor.retention", id="daily"),
        pytest.param("{raw: 2w}", "like '2d'", "monitor.retention.raw", id="bad-unit"),
        pytest.param("{weekly: 2d}", "weekly", "monitor.retention", id="unknown-key"),
    ],
)
def test_bad_retention_names_file_line_and_key(
    write: Callable[[str, str], Path], snippet: str, words: str, key: str
) -> None:
    text = f"""
    version: 1
    project: shop
    environments: {{qa: {{platform: local}}}}
    services:
      web:
        command: [python]
        monitor: {{retention: {snippet}}}
    """
    path = write("rollsafe.yaml", text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert words in str(info.value)
    assert info.value.line == 7
    assert key in (info.value.key_path or "")
    assert str(path) in str(info.value)
    assert info.value.hint
