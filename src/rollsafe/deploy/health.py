"""Health probes: one request against a URL, judged by the manifest's health conditions.

Cold starts: the first request a revision serves after it became Ready, or after it scaled
from zero, may be slow (imports, caches, connection pools). ``verify`` gives its probes up to
the first success ``health.cold_start`` instead of ``max_latency`` (and as the request
timeout, if longer), and retries connection errors, timeouts and too-slow answers until
``verify_timeout``; an HTTP answer with a wrong status or body fails at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from rollsafe.manifest.resolved import ResolvedHealth
from rollsafe.platforms.idtoken import IdTokenError

__all__ = ["HealthSpec", "ProbeResult", "judge", "probe", "verify"]


#: what healthy means: the manifest's ``health:`` of the service, resolved
HealthSpec = ResolvedHealth


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe: ``ok`` and, if not, why; ``status`` is None when no answer came."""

    ok: bool
    status: int | None
    latency: float
    reason: str = ""
    revision: str | None = None
    #: the answer was right but slower than allowed (retried during a cold start)
    slow: bool = False

    @property
    def answered_wrongly(self) -> bool:
        """An HTTP answer with a wrong status or body: no point in asking again."""
        return not self.ok and self.status is not None and not self.slow

    def describe(self) -> str:
        answer = f"HTTP {self.status}" if self.status is not None else "no answer"
        text = f"{answer} in {self.latency * 1000:.0f} ms"
        return f"{text}: {self.reason}" if self.reason else text


def _field(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            raise KeyError(dotted)
        data = data[part]
    return data


def probe(
    client: httpx.Client, base_url: str, spec: HealthSpec, *, cold: bool = False
) -> ProbeResult:
    """GET ``base_url + spec.path`` once and judge the answer.

    ``cold``: the revision may be starting cold, so the answer may take ``spec.cold_start``
    (instead of ``max_latency``, and instead of ``timeout`` if that is shorter).

    The client's auth (``IdTokenAuth``) adds the ID token a private service needs; when it
    cannot get one, the probe fails without an answer and says why (never the token).
    """
    url = base_url.rstrip("/") + spec.path
    timeout = max(spec.timeout, spec.cold_start) if cold else spec.timeout
    limit = spec.cold_start if cold else spec.max_latency
    start = time.perf_counter()
    try:
        response = client.get(url, timeout=timeout)
    except IdTokenError as exc:
        elapsed = time.perf_counter() - start
        return ProbeResult(False, None, elapsed, f"no ID token to send: {exc.message}")
    except httpx.TimeoutException:
        elapsed = time.perf_counter() - start
        return ProbeResult(False, None, elapsed, f"timed out after {timeout:g} s")
    except httpx.HTTPError as exc:
        elapsed = time.perf_counter() - start
        return ProbeResult(False, None, elapsed, f"request failed ({exc.__class__.__name__})")
    elapsed = time.perf_counter() - start
    return judge(response, elapsed, spec, limit=limit, cold=cold)


def judge(
    response: httpx.Response,
    elapsed: float,
    spec: HealthSpec,
    *,
    limit: float | None = None,
    cold: bool = False,
) -> ProbeResult:
    """Judge an answer (read in full) that took ``elapsed`` seconds by ``spec``'s status,
    JSON fields and ``limit`` (default ``spec.max_latency``). Pure: the synchronous
    ``probe`` and the monitor's asynchronous prober share it."""
    if limit is None and not cold:
        limit = spec.max_latency
    revision = response.headers.get("x-rollsafe-revision")
    if response.status_code != spec.expect_status:
        reason = f"expected HTTP {spec.expect_status}"
        if response.status_code in (401, 403):
            sent = "with" if "authorization" in response.request.headers else "without"
            reason += f"; refused a caller {sent} an ID token (see docs/access.md)"
        return ProbeResult(False, response.status_code, elapsed, reason, revision)
    if spec.expect_json:
        try:
            body = response.json()
        except ValueError:
            return ProbeResult(False, response.status_code, elapsed, "body is not JSON", revision)
        for key, wanted in spec.expect_json.items():
            try:
                got = _field(body, key)
            except KeyError:
                return ProbeResult(
                    False, response.status_code, elapsed, f"JSON has no '{key}'", revision
                )
            if got != wanted:
                reason = f"JSON '{key}' is {got!r}, expected {wanted!r}"
                return ProbeResult(False, response.status_code, elapsed, reason, revision)
    if limit is not None and elapsed > limit:
        reason = f"slower than {limit * 1000:.0f} ms" + (" (cold_start)" if cold else "")
        return ProbeResult(False, response.status_code, elapsed, reason, revision, slow=True)
    return ProbeResult(True, response.status_code, elapsed, "", revision)


def verify(
    client: httpx.Client,
    base_url: str,
    spec: HealthSpec,
    *,
    on_probe: Callable[[ProbeResult], None] | None = None,
    consecutive: int | None = None,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, list[ProbeResult]]:
    """Probe until ``consecutive`` passes in a row, or a failure, or the timeout.

    Until the first success the revision may be starting cold: probes may take
    ``spec.cold_start``, and connection errors, timeouts and too-slow answers are retried
    until the timeout. An answer with a wrong status or body fails at once. A revision that
    answered healthy and then fails is not given another chance: the first failure after
    that ends verification (fail fast, roll back fast).
    """
    needed = spec.consecutive if consecutive is None else consecutive
    deadline = time.monotonic() + (spec.verify_timeout if timeout is None else timeout)
    results: list[ProbeResult] = []
    streak = 0
    while streak < needed:
        result = probe(client, base_url, spec, cold=not streak)
        results.append(result)
        if on_probe is not None:
            on_probe(result)
        if result.ok:
            streak += 1
        elif result.answered_wrongly or streak:
            return False, results  # it answered, and wrongly: no point waiting
        if streak >= needed:
            break
        if time.monotonic() >= deadline:
            return False, results
        sleep(spec.interval)
    return True, results
