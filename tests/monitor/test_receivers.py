"""The receivers: each one's wire format (checked against local recording servers),
``open_receivers`` reading URLs and keys from the secret store, error mapping, and no
receiver URL or key in any output, error, repr, log line or kv value."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rollsafe.manifest._monitor_resolved import ResolvedReceiver
from rollsafe.manifest.resolved import ResolvedEnvironment
from rollsafe.monitor.model import AlertEvent, EventKind, Notification
from rollsafe.monitor.notify import Notifier
from rollsafe.monitor.receivers import (
    AlertmanagerReceiver,
    PagerDutyReceiver,
    ReceiverConfigError,
    ReceiverError,
    SlackReceiver,
    WebhookReceiver,
    open_receiver,
    open_receivers,
)
from rollsafe.monitor.receivers._render import ZERO_TIME
from rollsafe.monitor.receivers.base import parse_retry_after
from rollsafe.monitor.receivers.pagerduty import EVENTS_URL, dedup_key
from rollsafe.state.memory import MemoryStateStore
from rollsafe.stores.memory import InMemorySecretStore
from tests.monitor._receivers import RecordingServer, ServerPool

ENV = "qa"
Servers = Callable[..., RecordingServer]


@pytest.fixture
def servers() -> Iterator[Servers]:
    """``servers(**options)``: a recording HTTP server on 127.0.0.1, closed after the test."""
    with ServerPool() as pool:
        yield pool.start


CANARY_TOKEN = "T0kCanary9xQ2mV8pL5sT1wB6hF4dR0yN7"
CANARY_KEY = "R0utingCanary_k3Z9xQ2mV8pL5sT1wB6h"


def _event(
    kind: EventKind = EventKind.FIRING, service: str = "web", revision: str | None = "web-00002-abc"
) -> AlertEvent:
    return AlertEvent(
        kind=kind,
        env=ENV,
        service=service,
        alertname="ServiceDown",
        severity="critical",
        summary=f"{service} answers 503",
        description="/health answered 503 three times",
        starts_at=1_780_000_000.25,
        ends_at=1_780_000_120.5 if kind is EventKind.RESOLVED else None,
        revision=revision,
        evidence=("monitor:ServiceDown/web", "log://run.googleapis.com%2Frequests/abc"),
    )


def _note(*events: AlertEvent) -> Notification:
    return Notification(ENV, events)


# -- wire formats --


def test_alertmanager_posts_api_v2_alerts(servers: Servers) -> None:
    am = servers()
    with AlertmanagerReceiver("am", am.url + "/") as receiver:
        receiver.send(_note(_event()))
        receiver.send(_note(_event(EventKind.RESOLVED)))
    firing, resolved = am.wait_for(2)
    assert firing.path == resolved.path == "/api/v2/alerts"
    assert firing.headers["content-type"] == "application/json"
    (alert,) = firing.json
    assert alert == {
        "labels": {
            "alertname": "ServiceDown",
            "env": "qa",
            "service": "web",
            "revision": "web-00002-abc",
            "severity": "critical",
        },
        "annotations": {
            "summary": "web answers 503",
            "description": "/health answered 503 three times",
            "evidence": "monitor:ServiceDown/web log://run.googleapis.com%2Frequests/abc",
        },
        "startsAt": "2026-05-28T20:26:40.250Z",
        "generatorURL": "rollsafe://monitor/qa/web/ServiceDown",
    }
    (ended,) = resolved.json
    assert ended["endsAt"] == "2026-05-28T20:28:40.500Z"
    assert ended["startsAt"] == alert["startsAt"]
    assert ended["labels"] == alert["labels"]


def test_pagerduty_trigger_then_resolve_with_a_stable_dedup_key(servers: Servers) -> None:
    pd = servers(status=202)
    with PagerDutyReceiver("pd", CANARY_KEY, url=pd.url + "/v2/enqueue") as receiver:
        receiver.send(_note(_event(), _event(EventKind.REMINDER)))
        receiver.send(_note(_event(EventKind.RESOLVED)))
    trigger, resolve = pd.wait_for(2)
    assert len(pd.requests) == 2  # the reminder is not sent: PagerDuty escalates itself
    assert trigger.path == "/v2/enqueue"
    body = trigger.json
    assert body["routing_key"] == CANARY_KEY
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == dedup_key(_event()) == resolve.json["dedup_key"]
    assert len(body["dedup_key"]) <= 255
    payload = body["payload"]
    assert payload["summary"] == "[qa] web answers 503"
    assert payload["source"] == "qa/web"
    assert payload["severity"] == "critical"
    assert payload["timestamp"] == "2026-05-28T20:26:40.250Z"
    assert payload["custom_details"]["revision"] == "web-00002-abc"
    assert payload["custom_details"]["evidence"].startswith("monitor:ServiceDown/web")
    assert resolve.json == {
        "routing_key": CANARY_KEY,
        "dedup_key": body["dedup_key"],
        "event_action": "resolve",
    }


def test_pagerduty_defaults_to_the_events_api() -> None:
    assert EVENTS_URL == "https://events.pagerduty.com/v2/enqueue"


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", "critical"), ("warning", "warning"), ("info", "info"), ("page", "error")],
)
def test_pagerduty_severity(servers: Servers, severity: str, expected: str) -> None:
    from dataclasses import replace

    pd = servers(status=202)
    with PagerDutyReceiver("pd", CANARY_KEY, url=pd.url) as receiver:
        receiver.send(_note(replace(_event(), severity=severity)))
    assert pd.wait_for(1)[0].json["payload"]["severity"] == expected


def test_pagerduty_keeps_what_went_through_when_a_later_event_fails(
    servers: Servers,
) -> None:
    pd = servers(status=202)
    pd.respond(202, 429, retry_after=1)
    with (
        PagerDutyReceiver("pd", CANARY_KEY, url=pd.url) as receiver,
        pytest.raises(ReceiverError) as caught,
    ):
        receiver.send(_note(_event(service="a"), _event(service="b")))
    assert caught.value.retryable
    assert caught.value.retry_after == 1.0
    assert caught.value.sent == (_event(service="a").event_id,)


def test_slack_block_kit_message(servers: Servers) -> None:
    slack = servers()
    events = [_event(service=f"svc{i}") for i in range(25)] + [_event(EventKind.RESOLVED)]
    with SlackReceiver("slack", slack.url + "/services/T/B/X") as receiver:
        receiver.send(_note(*events))
    body = slack.wait_for(1)[0].json
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith("[rollsafe qa] 25 firing, 1 resolved")
    header = body["blocks"][0]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[rollsafe qa] 25 firing, 1 resolved"},
    }
    sections = [b for b in body["blocks"] if b["type"] == "section"]
    assert len(sections) == 20
    assert sections[0]["text"]["type"] == "mrkdwn"
    assert "*ServiceDown* firing on svc0 (web-00002-abc)" in sections[0]["text"]["text"]
    assert body["blocks"][-1]["elements"][0]["text"] == "and 6 more"
    assert len(body["blocks"]) <= 50
    contexts = [b for b in body["blocks"] if b["type"] == "context"]
    assert contexts[0]["elements"][0]["text"].startswith("evidence: monitor:ServiceDown/web")


def test_webhook_carries_alertmanagers_payload_v4(servers: Servers) -> None:
    hook = servers()
    with WebhookReceiver("hook", hook.url + "/alerts") as receiver:
        receiver.send(_note(_event(), _event(EventKind.RESOLVED, service="api", revision=None)))
        receiver.send(_note(_event(EventKind.RESOLVED)))
    grouped, resolved = hook.wait_for(2)
    body = grouped.json
    assert set(body) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert body["version"] == "4"
    assert body["groupKey"] == '{}:{env="qa"}'
    assert body["truncatedAlerts"] == 0
    assert body["status"] == "firing"
    assert body["receiver"] == "hook"
    assert body["groupLabels"] == {"env": "qa"}
    assert body["commonLabels"] == {"alertname": "ServiceDown", "env": "qa", "severity": "critical"}
    assert body["commonAnnotations"] == {
        "description": "/health answered 503 three times",
        "evidence": "monitor:ServiceDown/web log://run.googleapis.com%2Frequests/abc",
    }
    assert body["externalURL"] == ""
    first, second = body["alerts"]
    assert set(first) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert first["status"] == "firing"
    assert first["endsAt"] == ZERO_TIME
    assert second["status"] == "resolved"
    assert second["endsAt"] == "2026-05-28T20:28:40.500Z"
    assert "revision" not in second["labels"]
    assert len(first["fingerprint"]) == 16
    assert first["fingerprint"] != second["fingerprint"]
    assert resolved.json["status"] == "resolved"
    assert resolved.json["alerts"][0]["fingerprint"] == first["fingerprint"]


def test_apprise_json_url_reaches_a_local_server(servers: Servers) -> None:
    pytest.importorskip("apprise")
    from rollsafe.monitor.receivers.apprise_ import AppriseReceiver

    server = servers()
    with AppriseReceiver(
        "chat", f"json://127.0.0.1:{server.port}/notify/{CANARY_TOKEN}"
    ) as receiver:
        receiver.send(_note(_event(), _event(EventKind.RESOLVED, service="api")))
        receiver.send(_note(_event(EventKind.RESOLVED)))
    failing, resolved = server.wait_for(2)
    assert failing.path == f"/notify/{CANARY_TOKEN}"
    body = failing.json
    assert body["title"] == "[rollsafe qa] 1 firing, 1 resolved"
    assert (
        "ServiceDown firing on web (web-00002-abc) [critical]: web answers 503" in body["message"]
    )
    assert body["type"] == "failure"
    assert resolved.json["type"] == "success"


def test_apprise_failure_is_a_receiver_error(servers: Servers) -> None:
    pytest.importorskip("apprise")
    from rollsafe.monitor.receivers.apprise_ import AppriseReceiver

    server = servers(status=500)
    with (
        AppriseReceiver("chat", f"json://127.0.0.1:{server.port}/{CANARY_TOKEN}") as receiver,
        pytest.raises(ReceiverError) as caught,
    ):
        receiver.send(_note(_event()))
    assert caught.value.retryable
    assert CANARY_TOKEN not in str(caught.value)


# -- errors: one mapping, no URL --


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(429, True), (500, True), (502, True), (503, True), (400, False), (404, False), (413, False)],
)
def test_http_status_mapping(servers: Servers, status: int, retryable: bool) -> None:
    hook = servers(status=status)
    url = f"{hook.url}/hook/{CANARY_TOKEN}"
    with WebhookReceiver("hook", url) as receiver, pytest.raises(ReceiverError) as caught:
        receiver.send(_note(_event()))
    err = caught.value
    assert (err.status, err.retryable) == (status, retryable)
    assert str(err) == f"receiver hook (webhook) answered HTTP {status}"
    assert CANARY_TOKEN not in repr(err) + str(err) + str(err.hint)
    assert err.__cause__ is None


def test_connection_errors_are_retryable_and_url_free() -> None:
    port = _closed_port()
    with (
        WebhookReceiver("hook", f"http://127.0.0.1:{port}/{CANARY_TOKEN}") as receiver,
        pytest.raises(ReceiverError) as caught,
    ):
        receiver.send(_note(_event()))
    err = caught.value
    assert err.retryable
    assert err.status is None
    assert err.__cause__ is None
    assert err.__suppress_context__
    assert str(port) not in str(err)
    assert CANARY_TOKEN not in str(err)


def test_timeouts_are_retryable(servers: Servers) -> None:
    slow = servers(delay=3.0)
    with (
        SlackReceiver("slack", f"{slow.url}/{CANARY_TOKEN}", timeout=0.2) as receiver,
        pytest.raises(ReceiverError) as caught,
    ):
        receiver.send(_note(_event()))
    assert caught.value.retryable
    assert str(caught.value) == "receiver slack did not answer within 0.2 s"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("7", 7.0, id="seconds"),
        pytest.param("1.5", 1.5, id="fraction"),
        pytest.param("-3", 0.0, id="negative"),
        pytest.param("99999", 300.0, id="bounded"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="date-past"),
        pytest.param("soon", None, id="garbage"),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_date_in_the_future() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0


# -- open_receivers: literal values and secrets --


def _environment(*receivers: ResolvedReceiver) -> ResolvedEnvironment:
    return ResolvedEnvironment(
        name=ENV,
        project="netra",
        platform="local",
        strict=True,
        gcp_project="netra-qa",
        region="us-central1",
        store=None,
        manifest_path=Path("rollsafe.yaml"),
        alerts=tuple(receivers),
    )


def test_open_receivers_reads_the_latest_secret_versions(servers: Servers) -> None:
    old, hook, pd, slack, am = (servers() for _ in range(5))
    secrets = InMemorySecretStore(
        {
            "alert-hook-qa": [f"{old.url}/old", f"{hook.url}/hook/{CANARY_TOKEN}"],
            "pd-key-qa": CANARY_KEY,
            "slack-hook-qa": f"{slack.url}/services/{CANARY_TOKEN}\n",
        }
    )
    env = _environment(
        ResolvedReceiver(type="webhook", name="webhook", url_secret="alert-hook-qa"),
        ResolvedReceiver(type="alertmanager", name="alertmanager", url=am.url),
        ResolvedReceiver(
            type="pagerduty", name="pagerduty", routing_key_secret="pd-key-qa", url=pd.url
        ),
        ResolvedReceiver(type="slack", name="slack", url_secret="slack-hook-qa"),
    )
    receivers = open_receivers(env, secrets)
    assert [(r.name, r.type) for r in receivers] == [
        ("webhook", "webhook"),
        ("alertmanager", "alertmanager"),
        ("pagerduty", "pagerduty"),
        ("slack", "slack"),
    ]
    with Notifier(receivers, MemoryStateStore(), ENV) as notifier:
        notifier.submit([_event()])
        assert notifier.flush(20)
    assert hook.wait_for(1)[0].path == f"/hook/{CANARY_TOKEN}"
    assert old.requests == []
    assert am.wait_for(1)[0].path == "/api/v2/alerts"
    assert pd.wait_for(1)[0].json["routing_key"] == CANARY_KEY
    assert slack.wait_for(1)[0].path == f"/services/{CANARY_TOKEN}"


def test_open_receivers_apprise(servers: Servers) -> None:
    pytest.importorskip("apprise")
    server = servers()
    secrets = InMemorySecretStore({"apprise-qa": f"json://127.0.0.1:{server.port}/{CANARY_TOKEN}"})
    env = _environment(ResolvedReceiver(type="apprise", name="apprise", url_secret="apprise-qa"))
    with Notifier(open_receivers(env, secrets), MemoryStateStore(), ENV) as notifier:
        notifier.submit([_event()])
        assert notifier.flush(20)
    assert server.wait_for(1)[0].json["title"] == "[rollsafe qa] 1 firing"


@pytest.mark.parametrize(
    ("spec", "secrets", "message"),
    [
        pytest.param(
            ResolvedReceiver(type="slack", name="slack", url_secret="slack-hook-qa"),
            {},
            "receiver slack: its URL (secret 'slack-hook-qa') cannot be read",
            id="missing-secret",
        ),
        pytest.param(
            ResolvedReceiver(type="slack", name="team", url_secret="slack-hook-qa"),
            {"slack-hook-qa": f"hooks.slack.invalid/{CANARY_TOKEN}"},
            "receiver team (slack): its URL (secret 'slack-hook-qa') is not an http(s) URL",
            id="not-a-url",
        ),
        pytest.param(
            ResolvedReceiver(type="webhook", name="webhook", url=f"ftp://x/{CANARY_TOKEN}"),
            {},
            "receiver webhook: its URL (`url`) is not an http(s) URL",
            id="literal-not-http",
        ),
        pytest.param(
            ResolvedReceiver(type="pagerduty", name="pd", routing_key_secret="pd-key-qa"),
            {"pd-key-qa": "  "},
            "receiver pd (pagerduty): its routing key (secret 'pd-key-qa') is empty",
            id="empty-key",
        ),
        pytest.param(
            ResolvedReceiver(type="apprise", name="apprise", url=f"nosuchscheme://{CANARY_TOKEN}"),
            {},
            "receiver apprise: its URL (scheme 'nosuchscheme') is not one Apprise supports",
            id="apprise-unknown-scheme",
        ),
    ],
)
def test_open_receiver_errors_name_the_receiver_not_the_url(
    spec: ResolvedReceiver, secrets: dict[str, str], message: str
) -> None:
    if spec.type == "apprise":
        pytest.importorskip("apprise")
    with pytest.raises(ReceiverConfigError) as caught:
        open_receiver(spec, InMemorySecretStore(secrets))  # type: ignore[arg-type]
    err = caught.value
    assert str(err).startswith(message)
    assert err.exit_code == 2
    assert err.hint
    assert CANARY_TOKEN not in str(err) + str(err.hint)


def test_open_receivers_without_a_secret_store() -> None:
    env = _environment(ResolvedReceiver(type="slack", name="slack", url_secret="slack-hook-qa"))
    with pytest.raises(ReceiverConfigError, match="has no secret store"):
        open_receivers(env, None)


def test_open_receivers_closes_the_opened_ones_on_an_error(servers: Servers) -> None:
    env = _environment(
        ResolvedReceiver(type="webhook", name="ok", url=servers().url),
        ResolvedReceiver(type="slack", name="slack", url_secret="missing"),
    )
    # an httpx client left open would fail this test (ResourceWarning is an error)
    with pytest.raises(ReceiverConfigError):
        open_receivers(env, InMemorySecretStore())


# -- no secret anywhere --


@pytest.fixture
def canary_world(
    servers: Servers,
) -> tuple[list[str], dict[str, RecordingServer]]:
    return (
        [CANARY_TOKEN, CANARY_KEY],
        {
            name: servers(status=status)
            for name, status in [
                ("hook", 500),
                ("am", 404),
                ("pd", 429),
                ("slack", 200),
                ("apprise", 500),
            ]
        },
    )


def test_no_receiver_url_or_key_in_any_output(
    canary_world: tuple[list[str], dict[str, RecordingServer]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("apprise")
    canaries, servers = canary_world
    urls = {name: f"{server.url}/{name}/{CANARY_TOKEN}" for name, server in servers.items()}
    urls["apprise"] = f"json://127.0.0.1:{servers['apprise'].port}/apprise/{CANARY_TOKEN}"
    secrets = InMemorySecretStore(
        {f"{name}-qa": url for name, url in urls.items()} | {"pd-key-qa": CANARY_KEY}
    )
    env = _environment(
        ResolvedReceiver(type="webhook", name="hook", url_secret="hook-qa"),
        ResolvedReceiver(type="alertmanager", name="am", url=urls["am"]),
        ResolvedReceiver(
            type="pagerduty", name="pd", routing_key_secret="pd-key-qa", url=urls["pd"]
        ),
        ResolvedReceiver(type="slack", name="slack", url_secret="slack-qa"),
        ResolvedReceiver(type="apprise", name="apprise", url_secret="apprise-qa"),
    )
    store = MemoryStateStore()
    reports: list[str] = []
    caplog.set_level(logging.DEBUG)
    receivers = open_receivers(env, secrets)
    seen = [repr(env), *(repr(s) for s in env.alerts), *(repr(r) for r in receivers)]
    with Notifier(
        receivers, store, ENV, on_report=reports.append, sleep=lambda _s: None, retries=1
    ) as notifier:
        notifier.submit([_event()])
        assert notifier.flush(30)
        servers["slack"].status = 500
        servers["hook"].status = 200
        notifier.submit([_event(EventKind.RESOLVED)])
        assert notifier.flush(30)
        seen.append(repr(notifier))
    servers["slack"].status = 404
    for receiver in open_receivers(env, secrets):
        with receiver:
            try:
                receiver.send(_note(_event()))
            except ReceiverError as err:
                seen += [str(err), repr(err), str(err.hint), str(err.__context__ or "")]
    kv = [repr(store.kv_list(ns)) + ns for ns in store.kv_namespaces()]
    text = "\n".join([*seen, *reports, *kv, caplog.text])
    assert len(reports) >= 4  # every receiver failed at some point
    for canary in canaries:
        assert canary not in text
    for url in urls.values():
        assert url not in text


def test_apprise_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "apprise", None)  # as if not installed
    spec = ResolvedReceiver(
        type="apprise", name="apprise", url=f"json://127.0.0.1:1/{CANARY_TOKEN}"
    )
    with pytest.raises(ReceiverConfigError) as caught:
        open_receiver(spec, None)
    assert caught.value.hint == "pip install 'rollsafe[monitor]'"
    assert CANARY_TOKEN not in str(caught.value)
