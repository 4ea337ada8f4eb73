"""MonitorMetrics: its own registry, the families and labels /metrics carries, no leaks."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from rollsafe.monitor.metrics import MonitorMetrics

CANARY_URL = "https://hooks.example.invalid/services/T000/B000/Cn4ryQ7vX2mK9pL4sT8wZ3bF6hJ1"
CANARY_KEY = "Rk7CanaryRoutingKey0e9f8a7b6c5d4e3f"


@dataclass(frozen=True)
class Sample:
    """H2's ProbeSample's shape: what a probe reports."""

    service: str
    url: str
    ok: bool
    status: int | None
    latency: float | None
    detail: str
    at: float


def _families(metrics: MonitorMetrics) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """name -> [(sample name, labels, value)], parsed with prometheus-client's parser."""
    text = metrics.render().decode()
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def _value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    matching = [
        value
        for sample, got, value in samples
        if sample == name and all(got.get(k) == v for k, v in labels.items())
    ]
    assert len(matching) == 1, (name, labels, samples)
    return matching[0]


@pytest.fixture
def metrics() -> MonitorMetrics:
    m = MonitorMetrics("qa", interval=1.0)
    m.observe_probe(Sample("web", "http://127.0.0.1:1/health", True, 200, 0.012, "200 OK", 100.0))
    m.observe_probe(Sample("web", "http://127.0.0.1:1/health", False, 503, 0.004, "503", 101.0))
    m.observe_probe(Sample("api", "http://127.0.0.1:2/health", False, None, None, "refused", 101.5))
    m.observe_requests("web", "web-00002-abc", 40, 3)
    m.observe_requests("web", "web-00002-abc", 10, 1)
    m.observe_requests("web", "web-00001-xyz", 5, 0)
    m.set_alerts(
        [
            {
                "labels": {
                    "alertname": "ServiceDown",
                    "env": "qa",
                    "service": "api",
                    "severity": "critical",
                },
                "status": "firing",
                "since": 99.0,
                "inhibited": False,
            },
            {
                "labels": {"alertname": "High5xxRate", "service": "api", "severity": "warning"},
                "status": "pending",
                "since": 100.0,
                "inhibited": True,
            },
            {
                "labels": {"alertname": "jwt", "service": "web", "severity": "critical"},
                "status": "pending",
                "since": 100.0,
                "inhibited": False,
            },
        ]
    )
    m.observe_lag(0.002)
    m.observe_lag(0.3)
    m.mark_pass(at=102.0, seconds=0.25)
    return m


def test_families_and_labels(metrics: MonitorMetrics) -> None:
    fam = _families(metrics)

    probes = fam["rollsafe_monitor_probes"]
    name = "rollsafe_monitor_probes_total"
    assert _value(probes, name, env="qa", service="web", result="ok") == 1
    assert _value(probes, name, env="qa", service="web", result="failed") == 1
    assert _value(probes, name, env="qa", service="api", result="no_answer") == 1

    latency = fam["rollsafe_monitor_probe_latency_seconds"]
    count = "rollsafe_monitor_probe_latency_seconds_count"
    # the probe with no answer has no latency to observe
    assert _value(latency, count, service="web") == 2
    assert _value(latency, count, service="api") == 0
    assert (
        _value(latency, "rollsafe_monitor_probe_latency_seconds_bucket", service="web", le="0.005")
        == 1
    )

    up = fam["rollsafe_monitor_probe_up"]
    assert _value(up, "rollsafe_monitor_probe_up", service="web") == 0
    when = fam["rollsafe_monitor_probe_timestamp_seconds"]
    assert _value(when, "rollsafe_monitor_probe_timestamp_seconds", service="api") == 101.5

    requests = fam["rollsafe_monitor_requests"]
    errors = fam["rollsafe_monitor_requests_5xx"]
    assert _value(requests, "rollsafe_monitor_requests_total", revision="web-00002-abc") == 50
    assert _value(requests, "rollsafe_monitor_requests_total", revision="web-00001-xyz") == 5
    assert _value(errors, "rollsafe_monitor_requests_5xx_total", revision="web-00002-abc") == 4

    alerts = fam["rollsafe_monitor_alerts"]
    got = {(labels["service"], labels["alertname"], labels["state"]) for _, labels, _ in alerts}
    assert got == {
        ("api", "ServiceDown", "firing"),
        ("api", "High5xxRate", "inhibited"),
        ("web", "jwt", "pending"),
    }
    assert all(labels["env"] == "qa" for _, labels, _ in alerts)

    lag = fam["rollsafe_monitor_probe_lag_seconds"]
    assert _value(lag, "rollsafe_monitor_probe_lag_seconds_count") == 2
    assert _value(fam["rollsafe_monitor_lag_seconds"], "rollsafe_monitor_lag_seconds") == 0.3
    last = fam["rollsafe_monitor_last_pass_timestamp_seconds"]
    assert _value(last, "rollsafe_monitor_last_pass_timestamp_seconds") == 102.0
    assert _value(fam["rollsafe_monitor_passes"], "rollsafe_monitor_passes_total") == 1


def test_set_alerts_replaces_the_previous_set(metrics: MonitorMetrics) -> None:
    metrics.set_alerts([])
    assert _families(metrics)["rollsafe_monitor_alerts"] == []


@pytest.mark.parametrize(
    ("accept", "kind"),
    [
        pytest.param(None, "text/plain; version=0.0.4", id="prometheus-text"),
        pytest.param(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
            "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "text/plain; version=0.0.4",
            id="prometheus-scrape-accept",
        ),
        pytest.param(
            "application/openmetrics-text; version=1.0.0",
            "application/openmetrics-text",
            id="openmetrics",
        ),
    ],
)
def test_exposition_content_type(metrics: MonitorMetrics, accept: str | None, kind: str) -> None:
    body, content_type = metrics.exposition(accept)
    assert content_type.startswith(kind)
    assert b"rollsafe_monitor_probes" in body


def test_both_encodings_carry_the_same_samples(metrics: MonitorMetrics) -> None:
    """render() writes the probe families itself; prometheus-client's encoder (OpenMetrics)
    reads the same figures through the collector: they agree."""
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as openmetrics_families,
    )

    def samples(families: object) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        return {
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for family in families  # type: ignore[attr-defined]
            for s in family.samples
            if not s.name.endswith("_created")
        }

    text = samples(text_string_to_metric_families(metrics.render().decode()))
    body, _ = metrics.exposition("application/openmetrics-text")
    assert samples(openmetrics_families(body.decode())) == text


def test_own_registry_several_monitors_in_one_process() -> None:
    first, second = MonitorMetrics("qa"), MonitorMetrics("qa")
    first.observe_requests("web", "web-1", 1, 0)
    assert first.registry is not second.registry
    assert b"web-1" not in second.render()
    assert REGISTRY.get_sample_value("rollsafe_monitor_requests_total") is None
    assert "rollsafe_monitor_requests" not in {m.name for m in REGISTRY.collect()}


def test_no_url_or_secret_in_the_exposition() -> None:
    m = MonitorMetrics("qa")
    # the sample's URL and detail carry the canaries; they must never become labels
    m.observe_probe(Sample("web", CANARY_URL, False, 503, 0.1, f"body {CANARY_KEY}", 1.0))
    # a caller passing an address where a name belongs: it is replaced, not exposed
    m.observe_requests(CANARY_URL, f"https://user:{CANARY_KEY}@host/rev", 1, 1)
    m.set_alerts(
        [{"labels": {"service": CANARY_URL, "alertname": "ReceiverFailing"}, "status": "firing"}]
    )
    for body in (m.render(), m.exposition("application/openmetrics-text")[0]):
        text = body.decode()
        assert CANARY_KEY not in text
        assert "hooks.example.invalid" not in text
        assert "://" not in text
        assert 'service="redacted"' in text


def test_healthy_tracks_passes() -> None:
    now = [1000.0]
    m = MonitorMetrics("qa", interval=1.0, clock=lambda: now[0])
    assert m.healthy() == (True, "ok")
    now[0] += 11
    ok, reason = m.healthy()
    assert not ok
    assert "no pass yet" in reason
    m.mark_pass()
    assert m.healthy()[0]
    now[0] += 30
    assert not m.healthy()[0]
    assert MonitorMetrics("qa").healthy(now=now[0] + 1e6) == (True, "ok")


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        MonitorMetrics("qa").observe_requests("web", "web-1", -1, 0)


def test_label_values_are_escaped() -> None:
    m = MonitorMetrics("qa")
    odd = 'we"ird\\name\nnext'
    m.observe_probe(Sample(odd, "http://127.0.0.1:1/health", True, 200, 0.01, "", 1.0))
    families = {f.name: f for f in text_string_to_metric_families(m.render().decode())}
    services = {s.labels["service"] for s in families["rollsafe_monitor_probe_up"].samples}
    assert services == {odd}
