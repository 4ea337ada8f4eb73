"""Canary steps judged on the new revision's real requests, and cold starts, on the emulator.

The example backend's switches make the revisions: ``BACKEND_ERROR_RATE=0.2`` answers every
fifth ``GET /`` with 500 while ``/health`` stays healthy; ``BACKEND_FIRST_REQUEST_DELAY``
makes its first request after start slow. Load comes from threads of the test, through the
service URL with ID tokens (the service is private), as users would send it.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from rollsafe.deploy import CANDIDATE_TAG
from rollsafe.platforms.idtoken import IdTokenAuth
from tests.deploy.conftest import ENV, FAST_ANALYSIS, SERVICE, Site

_ENV_LINE = 'ENVIRONMENT: "{env}"'


class _Load:
    """Threads that GET ``/`` of the service URL as fast as the service answers."""

    def __init__(self, site: Site, threads: int = 2) -> None:
        url = site.service().url
        assert url is not None
        self.url = url + "/"
        self.auth = IdTokenAuth(site.tokens)
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"load-{i}", daemon=True)
            for i in range(threads)
        ]

    def _run(self) -> None:
        with httpx.Client(timeout=5.0, auth=self.auth) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(self.url).status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self.statuses[status] += 1

    def __enter__(self) -> _Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


def _variant(site: Site, analysis: str, **env: str) -> Path:
    """A copy of the manifest with ``analysis`` instead of the fast default and ``env``
    added to the service's variables (the CLI reads it from a file)."""
    text = site.manifest.read_text(encoding="utf-8")
    assert FAST_ANALYSIS in text
    assert _ENV_LINE in text
    extra = "".join(f'\n      {k}: "{v}"' for k, v in env.items())
    text = text.replace(FAST_ANALYSIS, analysis).replace(_ENV_LINE, _ENV_LINE + extra)
    path = site.root / "variant.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_request_stats_count_what_the_router_served(site: Site) -> None:
    base = site.baseline()
    assert site.logs is not None
    start = time.time()
    for _ in range(12):
        assert site.get("/").status_code == 200
    assert site.get("/missing").status_code == 404
    # refused by the front end: Cloud Run logs it with the revision traffic would reach
    assert site.get("/", token=False).status_code == 403
    end = time.time()
    time.sleep(1.0)  # the router writes its entries every 0.25 s
    stats = site.logs.request_stats(SERVICE, start, end)
    assert set(stats) == {base}
    assert (stats[base].requests, stats[base].errors) == (14, 0)
    assert len(stats[base].latencies) == 14
    # the service URL's host left out: nothing is left
    host = httpx.URL(site.service().url or "").netloc.decode()
    assert site.logs.request_stats(SERVICE, start, end, exclude_host=host) == {}
    assert site.logs.request_stats(SERVICE, end, end + 1) == {}


def test_canary_with_500s_under_load_exits_3_at_the_first_step(site: Site) -> None:
    base = site.baseline()
    site.seed()
    # 3 s steps and 10 requests: enough at 10% for two load threads on a shared machine
    path = _variant(
        site, "analysis: {step_seconds: 3s, min_requests: 10}", BACKEND_ERROR_RATE="0.2"
    )
    with _Load(site) as load:
        result = site.cli(
            "deploy",
            "--env",
            ENV,
            "-s",
            SERVICE,
            "--canary",
            "10,50,100",
            "--watch",
            "0",
            manifest=path,
        )
    assert result.exit_code == 3, result.output
    output = " ".join(result.output.split())
    assert "at 10%" in output
    assert "at 50%" not in output
    found = re.search(
        r"(backend-[\w-]+): (\d+) of (\d+) requests 5xx \((\d+)%\) > 1%; "
        rf"{base}: 0 of ([\d,]+)",
        output,
    )
    assert found, output
    new, errors, total = found[1], int(found[2]), int(found[3])
    assert new != base
    # every fifth answer of / is a 500
    assert errors >= 1
    assert errors * 5 <= total + 4
    assert site.split() == {base: 100}
    assert CANDIDATE_TAG not in site.tags()
    assert load.statuses[200] > 0
    record = site.journal.history(ENV, SERVICE)[0]
    assert (record.outcome, record.exit_code) == ("rolled-back", 3)
    shifts = [s for s in record.stages if s["stage"] == "shift"]
    assert len(shifts) == 1
    assert not shifts[0]["ok"]


def test_canary_without_traffic_is_judged_by_probes_alone(site: Site) -> None:
    site.baseline()
    site.seed()
    result = site.deploy(canary=(10, 100))
    assert result.exit_code == 0, result.message
    assert result.plan is not None
    new = result.plan.spec.revision
    notes = [e.detail for e in site.events.events if e.kind == "info" and e.stage == "shift"]
    # the deploy's own probes (through the tag URL) are not traffic
    assert (
        f"requests: judged by probes alone: {new} had 0 requests in 1 s, fewer than "
        "min_requests (20)"
    ) in notes


def test_require_traffic_fails_a_step_without_traffic(site: Site) -> None:
    base = site.baseline()
    site.seed()
    env = site.variant(FAST_ANALYSIS, "analysis: {step_seconds: 1s, require_traffic: true}")
    result = site.deploy(env, canary=(10, 100))
    assert result.exit_code == 3, result.message
    assert result.outcome == "rolled-back"
    assert result.plan is not None
    new = result.plan.spec.revision
    assert (
        f"at 10%: {new}: 0 requests in 1 s, fewer than min_requests (20), and "
        "analysis.require_traffic is true"
    ) in result.message
    assert site.split() == {base: 100}
    assert CANDIDATE_TAG not in site.tags()


def test_revision_slow_only_on_its_first_request_passes(site: Site) -> None:
    base = site.baseline()
    site.seed()
    # warm answers must come within 500 ms; the first one takes 1.5 s (cold_start: 10 s)
    env = site.variant("interval: 0.1s}", "interval: 0.1s, max_latency: 500ms}")
    seen = len(site.events.events)
    result = site.deploy(env, extra_env={"BACKEND_FIRST_REQUEST_DELAY": "1.5"})
    assert result.exit_code == 0, result.message
    probes = [
        e.detail for e in site.events.events[seen:] if e.kind == "info" and e.stage == "verify"
    ]
    # the first probe was the slow one, and it passed
    first = re.fullmatch(r"probe: HTTP 200 in (\d+) ms", probes[0])
    assert first, probes
    assert int(first[1]) >= 1500, probes
    assert result.plan is not None
    assert site.split() == {result.plan.spec.revision: 100}
    assert base != result.plan.spec.revision


def test_watch_judges_the_requests_of_its_window(site: Site) -> None:
    base = site.baseline()
    site.seed()
    env = site.variant(_ENV_LINE, _ENV_LINE + '\n      BACKEND_ERROR_RATE: "0.2"')
    with _Load(site, threads=1):
        result = site.deploy(env, watch=2.0)
    assert result.exit_code == 3, result.message
    assert result.plan is not None
    new = result.plan.spec.revision
    assert re.search(
        rf"during watch: {new}: \d+ of [\d,]+ requests 5xx \(\d+%\) > 1%", result.message
    ), result.message
    assert site.split() == {base: 100}
    assert CANDIDATE_TAG not in site.tags()
