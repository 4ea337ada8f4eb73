"""The monitor's Prometheus metrics: probes, requests per revision, alerts, its own lag.

Every ``MonitorMetrics`` has its own ``CollectorRegistry``, never prometheus-client's global
one, so that several monitors (and tests) live in one process. Label values are service,
revision and alert names and fixed words only: a probe's URL, its detail text and any
receiver never become a label, and a value that looks like a URL is replaced, so the
exposition cannot leak an address or a secret carried in one.

prometheus-client is imported when the first ``MonitorMetrics`` is made: rollsafe without
the ``monitor`` extra never needs it.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from rollsafe.errors import RollsafeError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

__all__ = ["INSTALL_HINT", "TEXT_CONTENT_TYPE", "MonitorMetrics", "ProbeSampleLike"]

INSTALL_HINT = "pip install 'rollsafe[monitor]'"
#: the Prometheus text format's Content-Type (what prometheus-client sends for it)
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: probe latency buckets (s): loopback answers in ms, a slow health check in seconds
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: lag buckets (s): a healthy monitor is ms late; seconds means it cannot keep up
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: a label value longer than this is cut: names are short, anything longer is not a name
_MAX_LABEL = 128
#: ``scheme://`` anywhere, or userinfo (``user:pass@host``): an address, never a label
_URLISH = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|[^\s/@]+:[^\s/@]*@")


class ProbeSampleLike(Protocol):
    """What ``observe_probe`` reads of a probe result (H2's ``ProbeSample``)."""

    @property
    def service(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def latency(self) -> float | None: ...
    @property
    def at(self) -> float: ...


def _label(value: object) -> str:
    """A label value that cannot carry an address or a secret in one."""
    text = "" if value is None else str(value)
    if _URLISH.search(text):
        return "redacted"
    return text[:_MAX_LABEL]


def _import_client() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise RollsafeError(
            "`rollsafe monitor` metrics need prometheus-client, which is not installed",
            hint=INSTALL_HINT,
        ) from exc
    return prometheus_client


def _probe_result(sample: ProbeSampleLike) -> str:
    if sample.ok:
        return "ok"
    # no status at all: the service did not answer (refused, timed out, TLS)
    return "failed" if getattr(sample, "status", None) is not None else "no_answer"


class _AlertsCollector:
    """``rollsafe_monitor_alerts``: the AlertBook's active alerts, as one snapshot.

    A custom collector rather than a Gauge: ``set_alerts`` swaps a tuple, so a scrape sees
    either the previous pass's alerts or this pass's, never a half-cleared gauge.
    """

    def __init__(self, env: str) -> None:
        self._env = env
        self.snapshot: tuple[tuple[str, str, str, str], ...] = ()

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "rollsafe_monitor_alerts",
            "Alerts not inactive, by state (pending, firing, inhibited); 1 per alert.",
            labels=["env", "service", "alertname", "severity", "state"],
        )
        for service, alertname, severity, state in self.snapshot:
            family.add_metric([self._env, service, alertname, severity, state], 1.0)
        yield family


class _ServiceProbes:
    """One service's probe figures, as plain numbers (a probe costs a few increments)."""

    __slots__ = ("at", "buckets", "labels", "name", "results", "sum", "up")

    def __init__(self, name: str, labels: str) -> None:
        #: the service label's value
        self.name = name
        #: ``env="qa",service="web"``, escaped once
        self.labels = labels
        self.results = [0, 0, 0]  # ok, failed, no_answer
        self.buckets = [0] * (len(_LATENCY_BUCKETS) + 1)  # per bucket, the last is +Inf
        self.sum = 0.0
        self.up = 0.0
        self.at = 0.0


_RESULTS = ("ok", "failed", "no_answer")
_PROBES = "rollsafe_monitor_probes"
_LATENCY = "rollsafe_monitor_probe_latency_seconds"
_UP = "rollsafe_monitor_probe_up"
_PROBE_TIME = "rollsafe_monitor_probe_timestamp_seconds"
_HELP = {
    _PROBES: "Health probes by result (ok, failed, no_answer).",
    _LATENCY: "Health probe latency of the probes that got an answer.",
    _UP: "1 if the last health probe passed, else 0.",
    _PROBE_TIME: "When the last health probe of the service ran (Unix time).",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return repr(float(value))


class _ProbesCollector:
    """The per-service probe metrics: ``collect()`` for prometheus-client's encoders, and
    ``text()``, the same in the text format written directly.

    1,000 services make ~18,000 samples; prometheus-client's own metric objects cost tens
    of microseconds per probe and most of a second per scrape at that size, so the hot
    figures are plain numbers and their text is written with label strings made once.
    """

    def __init__(self, env: str) -> None:
        self._env = env
        self._lock = threading.Lock()
        self.services: dict[str, _ServiceProbes] = {}
        self._les = [_num(b) for b in _LATENCY_BUCKETS] + ["+Inf"]

    def service(self, name: str) -> _ServiceProbes:
        stats = self.services.get(name)
        if stats is None:
            with self._lock:
                stats = self.services.get(name)
                if stats is None:
                    value = _label(name)
                    labels = f'env="{_escape(self._env)}",service="{_escape(value)}"'
                    stats = self.services[name] = _ServiceProbes(value, labels)
        return stats

    def _snapshot(self) -> list[_ServiceProbes]:
        with self._lock:
            return list(self.services.values())

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        stats = self._snapshot()
        probes = CounterMetricFamily(_PROBES, _HELP[_PROBES], labels=["env", "service", "result"])
        latency = HistogramMetricFamily(_LATENCY, _HELP[_LATENCY], labels=["env", "service"])
        up = GaugeMetricFamily(_UP, _HELP[_UP], labels=["env", "service"])
        when = GaugeMetricFamily(_PROBE_TIME, _HELP[_PROBE_TIME], labels=["env", "service"])
        for item in stats:
            service = item.name
            for result, value in zip(_RESULTS, item.results, strict=True):
                probes.add_metric([self._env, service, result], value)
            cumulative, total = [], 0
            for le, n in zip(self._les, item.buckets, strict=True):
                total += n
                cumulative.append((le, float(total)))
            latency.add_metric([self._env, service], cumulative, item.sum)
            up.add_metric([self._env, service], item.up)
            when.add_metric([self._env, service], item.at)
        yield from (probes, latency, up, when)

    def text(self) -> str:
        """The families in Prometheus text format 0.0.4."""
        stats = self._snapshot()
        out: list[str] = []
        add = out.append
        add(f"# HELP {_PROBES}_total {_HELP[_PROBES]}\n# TYPE {_PROBES}_total counter\n")
        for item in stats:
            for result, value in zip(_RESULTS, item.results, strict=True):
                add(f'{_PROBES}_total{{{item.labels},result="{result}"}} {_num(value)}\n')
        add(f"# HELP {_LATENCY} {_HELP[_LATENCY]}\n# TYPE {_LATENCY} histogram\n")
        for item in stats:
            total = 0
            for le, n in zip(self._les, item.buckets, strict=True):
                total += n
                add(f'{_LATENCY}_bucket{{{item.labels},le="{le}"}} {_num(total)}\n')
            add(f"{_LATENCY}_count{{{item.labels}}} {_num(total)}\n")
            add(f"{_LATENCY}_sum{{{item.labels}}} {_num(item.sum)}\n")
        for name, attr in ((_UP, "up"), (_PROBE_TIME, "at")):
            add(f"# HELP {name} {_HELP[name]}\n# TYPE {name} gauge\n")
            for item in stats:
                add(f"{name}{{{item.labels}}} {_num(getattr(item, attr))}\n")
        return "".join(out)


class MonitorMetrics:
    """The monitor's metrics on its own registry; ``render()`` is the ``/metrics`` body.

    ``env`` is a constant label of every series, so the monitors of several environments
    can be scraped into one Prometheus. ``interval`` (the shortest probe interval) lets
    ``healthy()`` tell a stalled monitor from a live one.
    """

    def __init__(
        self,
        env: str,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        client = _import_client()
        self.env = _label(env)
        self.interval = interval
        self._clock = clock
        self._started = clock()
        self._last_pass: float | None = None
        # ``_rest``: everything but the per-service probe figures, which render() writes
        # itself; ``registry``: all of it, for prometheus-client's encoders (OpenMetrics)
        self._rest: CollectorRegistry = client.CollectorRegistry(auto_describe=False)
        reg = self._rest
        self._probes = _ProbesCollector(self.env)
        self.registry: CollectorRegistry = client.CollectorRegistry(auto_describe=False)
        self.registry.register(self._probes)
        self.registry.register(reg)
        rev = ["env", "service", "revision"]
        self._requests = client.Counter(
            "rollsafe_monitor_requests",
            "Requests read from the service's request logs, per revision.",
            rev,
            registry=reg,
        )
        self._errors = client.Counter(
            "rollsafe_monitor_requests_5xx",
            "Requests answered 5xx, read from the service's request logs, per revision.",
            rev,
            registry=reg,
        )
        self._alerts = _AlertsCollector(self.env)
        reg.register(self._alerts)
        self._lag = client.Gauge(
            "rollsafe_monitor_lag_seconds",
            "How late the last probe ran versus its schedule.",
            ["env"],
            registry=reg,
        ).labels(self.env)
        self._lag_hist = client.Histogram(
            "rollsafe_monitor_probe_lag_seconds",
            "How late probes ran versus their schedule.",
            ["env"],
            buckets=_LAG_BUCKETS,
            registry=reg,
        ).labels(self.env)
        self._pass_time = client.Gauge(
            "rollsafe_monitor_last_pass_timestamp_seconds",
            "When the monitor last finished a pass (Unix time).",
            ["env"],
            registry=reg,
        ).labels(self.env)
        self._pass_seconds = client.Gauge(
            "rollsafe_monitor_last_pass_duration_seconds",
            "How long the last pass took.",
            ["env"],
            registry=reg,
        ).labels(self.env)
        self._passes = client.Counter(
            "rollsafe_monitor_passes", "Passes the monitor finished.", ["env"], registry=reg
        ).labels(self.env)
        self._generate = client.generate_latest
        self._choose = client.exposition.choose_encoder

    # -- probes --------------------------------------------------------------------------

    def observe_probe(self, sample: ProbeSampleLike) -> None:
        """Count one probe result and its latency (the sample's URL is never read)."""
        stats = self._probes.service(sample.service)
        result = _probe_result(sample)
        stats.results[_RESULTS.index(result)] += 1
        if sample.latency is not None and result != "no_answer":
            latency = max(0.0, sample.latency)
            stats.buckets[bisect.bisect_left(_LATENCY_BUCKETS, latency)] += 1
            stats.sum += latency
        stats.up = 1.0 if sample.ok else 0.0
        stats.at = sample.at

    # -- request logs --------------------------------------------------------------------

    def observe_requests(self, service: str, revision: str, count: int, errors: int) -> None:
        """Add ``count`` requests, ``errors`` of them 5xx, newly read for a revision."""
        if count < 0 or errors < 0:
            raise ValueError("request counts cannot be negative")
        name, rev = _label(service), _label(revision)
        self._requests.labels(self.env, name, rev).inc(count)
        self._errors.labels(self.env, name, rev).inc(errors)

    # -- alerts --------------------------------------------------------------------------

    def set_alerts(self, active: Iterable[Mapping[str, Any]]) -> None:
        """Replace the alert states with ``AlertBook.active()``'s list."""
        rows = []
        for alert in active:
            labels = alert.get("labels") or {}
            status = str(alert.get("status", "firing"))
            if hasattr(alert.get("status"), "value"):
                status = str(alert["status"].value)
            state = "inhibited" if alert.get("inhibited") else status
            rows.append(
                (
                    _label(labels.get("service", alert.get("service", ""))),
                    _label(labels.get("alertname", alert.get("alertname", ""))),
                    _label(labels.get("severity", alert.get("severity", ""))),
                    _label(state),
                )
            )
        self._alerts.snapshot = tuple(sorted(rows))

    # -- the monitor itself --------------------------------------------------------------

    def observe_lag(self, seconds: float) -> None:
        """How late a probe ran versus its schedule (negative counts as on time)."""
        lag = max(0.0, seconds)
        self._lag.set(lag)
        self._lag_hist.observe(lag)

    #: the design's name for ``observe_lag``
    set_lag = observe_lag

    def mark_pass(self, at: float | None = None, seconds: float | None = None) -> None:
        """A pass finished (at ``at``, taking ``seconds``): the liveness signal."""
        when = self._clock() if at is None else at
        self._last_pass = when
        self._pass_time.set(when)
        if seconds is not None:
            self._pass_seconds.set(max(0.0, seconds))
        self._passes.inc()

    def healthy(self, now: float | None = None) -> tuple[bool, str]:
        """(ok, reason): not ok when passes stopped for ``max(3 x interval, 10 s)``."""
        if self.interval is None:
            return True, "ok"
        now = self._clock() if now is None else now
        limit = max(3 * self.interval, 10.0)
        last = self._last_pass if self._last_pass is not None else self._started
        late = now - last
        if late > limit:
            what = "no pass yet" if self._last_pass is None else "no pass"
            return False, f"{what} for {late:.0f} s (limit {limit:.0f} s)"
        return True, "ok"

    # -- exposition ----------------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text exposition (format 0.0.4) of every metric."""
        return bytes(self._generate(self._rest)) + self._probes.text().encode()

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, Content-Type) for a scrape: the text format, which Prometheus accepts,
        unless the ``Accept`` takes nothing but OpenMetrics (prometheus-client's encoder,
        slower at thousands of series)."""
        wanted = (accept or "").lower()
        if "openmetrics" in wanted and "text/plain" not in wanted and "*/*" not in wanted:
            encoder, content_type = self._choose(accept or "")
            return bytes(encoder(self.registry)), str(content_type)
        return self.render(), TEXT_CONTENT_TYPE
