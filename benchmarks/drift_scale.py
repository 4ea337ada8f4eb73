"""`rollsafe drift` at scale on the emulator, against a naive drift check, in the same run.

Setup (not timed in the comparison): a fresh emulator; 1,000 distinct secrets of one version
each; 200 Cloud Run services whose revisions map 25 of them each (5,000 references, pinned
to version 1), created with Google's own clients. Every revision is a real process (a tiny
`http.server`), as the emulator runs them. Every 20th service lacks one mapping, so there
are exactly 10 `unmapped_secret` drifts to find.

Measured, alternating, ROUNDS times each, same process, same endpoint, same concurrency
(8 calls in flight):

- drift: `run_drift` through rollsafe's adapters (one listing of secrets, one listing of
  versions per referenced secret, one access per distinct pinned version, one get_service
  and one list_revisions per service).
- naive: Google's clients directly, per service get_service + get_revision of the serving
  revision, then *one get per reference*: get_secret_version of the mapped version (its
  state) and access_secret_version (the value, for the rules), rules run per reference.

Counted: HTTP requests actually sent (every `requests` call of the process, by API), split
as Secret Manager counts its quotas (read requests: 600/min per project; access requests:
90,000/min). Wall time: the median of the rounds.

Run: .venv/bin/python benchmarks/drift_scale.py   (about a minute or two on 2 cores)
"""

from __future__ import annotations

import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import requests
from google.api_core.future import polling
from google.cloud import run_v2, secretmanager

from rollsafe._gcp import client_kwargs
from rollsafe.drift import DriftReport, run_drift
from rollsafe.emulator.server import start_emulator, stop_emulator
from rollsafe.manifest import load_manifest
from rollsafe.platforms.cloudrun import CloudRunPlatform
from rollsafe.rules import RuleContext, run_rules
from rollsafe.stores.secretmanager import SecretManagerStore

SERVICES = 200
SECRETS_PER_SERVICE = 25
DISTINCT = 1000
DRIFTED_EVERY = 20
WORKERS = 8
ROUNDS = 3
PROJECT = "bench-drift"
REGION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
SERVE = (
    "import os, http.server as h; "
    "h.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), h.BaseHTTPRequestHandler).serve_forever()"
)
FAST = polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.5, multiplier=1.5).with_timeout(
    300
)

T = TypeVar("T")
R = TypeVar("R")


def parallel(func: Callable[[T], R], items: Iterable[T]) -> list[R]:
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(func, items))


# -- counting every HTTP request the process sends --------------------------------------
_lock = threading.Lock()
_http: Counter[str] = Counter()
_send = requests.Session.send


def _counting_send(self: requests.Session, request: Any, **kwargs: Any) -> Any:
    path = request.path_url.split("?", 1)[0]
    if path.startswith("/v1/projects/"):
        kind = "sm_access" if path.endswith(":access") else "sm_read"
    elif path.startswith("/v2/"):
        kind = "run"
    else:
        kind = "other"
    with _lock:
        _http[kind] += 1
    return _send(self, request, **kwargs)


def counted(func: Callable[[], T]) -> tuple[T, Counter[str], float]:
    with _lock:
        _http.clear()
    start = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - start
    with _lock:
        return result, Counter(_http), seconds


# -- setup -------------------------------------------------------------------------------
def secret_name(i: int) -> str:
    return f"secret-{i:04d}-bench"


def refs_of(s: int) -> dict[str, str]:
    """KEY -> secret name of service ``s`` (as the manifest declares it)."""
    return {
        f"KEY_{k:02d}": secret_name((s * SECRETS_PER_SERVICE + k) % DISTINCT)
        for k in range(SECRETS_PER_SERVICE)
    }


def setup(endpoint: str, tmp: Path) -> Path:
    kwargs = client_kwargs(endpoint)
    sm = secretmanager.SecretManagerServiceClient(**kwargs)
    run = run_v2.ServicesClient(**kwargs)

    def make_secret(i: int) -> None:
        sm.create_secret(
            parent=f"projects/{PROJECT}",
            secret_id=secret_name(i),
            secret={"replication": {"automatic": {}}},
        )
        sm.add_secret_version(
            parent=f"projects/{PROJECT}/secrets/{secret_name(i)}",
            payload={"data": secrets.token_urlsafe(32).encode()},
        )

    def make_service(s: int) -> None:
        env = []
        for key, name in refs_of(s).items():
            if s % DRIFTED_EVERY == 0 and key == "KEY_07":
                continue  # the planted drift: this mapping is missing
            selector = run_v2.SecretKeySelector(secret=name, version="1")
            env.append(
                run_v2.EnvVar(name=key, value_source=run_v2.EnvVarSource(secret_key_ref=selector))
            )
        env.append(run_v2.EnvVar(name="ENVIRONMENT", value="bench"))
        container = run_v2.Container(
            image="ignored-locally", command=["python", "-c", SERVE], env=env
        )
        operation = run.create_service(
            parent=PARENT,
            service_id=f"svc-{s:03d}",
            service=run_v2.Service(template=run_v2.RevisionTemplate(containers=[container])),
        )
        operation.result(polling=FAST)

    start = time.perf_counter()
    parallel(make_secret, range(DISTINCT))
    print(f"setup: {DISTINCT} secrets in {time.perf_counter() - start:.1f} s", flush=True)
    start = time.perf_counter()
    parallel(make_service, range(SERVICES))
    print(
        f"setup: {SERVICES} services (each a running revision process) in "
        f"{time.perf_counter() - start:.1f} s",
        flush=True,
    )
    sm.transport.close()
    run.transport.close()

    lines = [
        "version: 1",
        "project: bench",
        "environments:",
        f"  bench: {{platform: local, gcp_project: {PROJECT}, region: {REGION}}}",
        "services:",
    ]
    for s in range(SERVICES):
        lines += [f"  svc-{s:03d}:", "    env: {ENVIRONMENT: '{env}'}", "    secrets:"]
        lines += [f"      {key}: {{secret: {name}}}" for key, name in refs_of(s).items()]
    path = tmp / "rollsafe.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- the two approaches ------------------------------------------------------------------
def drift(endpoint: str, manifest: Path) -> DriftReport:
    env = load_manifest(manifest).resolve("bench")
    with (
        SecretManagerStore(PROJECT, endpoint=endpoint) as store,
        CloudRunPlatform(PROJECT, REGION, endpoint=endpoint) as platform,
    ):
        return run_drift(env, store, platform)


def naive(endpoint: str, manifest: Path) -> int:
    """The same question, asked one reference at a time. Returns the drifts it found."""
    env = load_manifest(manifest).resolve("bench")
    kwargs = client_kwargs(endpoint)
    services = run_v2.ServicesClient(**kwargs)
    revisions = run_v2.RevisionsClient(**kwargs)
    sm = secretmanager.SecretManagerServiceClient(**kwargs)
    ctx = RuleContext(env="bench", is_secret=True)

    def one(name: str) -> int:
        svc = services.get_service(name=f"{PARENT}/services/{name}")
        serving = next(t.revision for t in svc.traffic_statuses if t.percent)
        revision = revisions.get_revision(name=f"{PARENT}/services/{name}/revisions/{serving}")
        mapped = {
            v.name: v.value_source.secret_key_ref
            for v in revision.containers[0].env
            if "value_source" in v
        }
        found = 0
        for key, sec in env.services[name].secrets.items():
            ref = mapped.get(key)
            if ref is None:
                found += 1
                continue
            path = f"projects/{PROJECT}/secrets/{ref.secret}/versions/{ref.version}"
            sm.get_secret_version(name=path)  # exists, enabled?
            value = sm.access_secret_version(name=path).payload.data.decode()
            found += bool(run_rules(value, sec.rules, ctx))
        return found

    try:
        return sum(parallel(one, list(env.services)))
    finally:
        for client in (services, revisions, sm):
            client.transport.close()


def main() -> int:
    requests.Session.send = _counting_send  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="rollsafe-drift-bench-") as tmp:
        state = Path(tmp) / "state"
        endpoint = start_emulator(state).endpoint
        assert endpoint is not None
        try:
            manifest = setup(endpoint, Path(tmp))
            drift_runs: list[tuple[DriftReport, Counter[str], float]] = []
            naive_runs: list[tuple[int, Counter[str], float]] = []
            for _ in range(ROUNDS):
                drift_runs.append(counted(lambda: drift(endpoint, manifest)))
                naive_runs.append(counted(lambda: naive(endpoint, manifest)))
        finally:
            stop_emulator(state)

    report, d_http, _ = drift_runs[-1]
    found, n_http, _ = naive_runs[-1]
    kinds = report.kinds()
    expected = SERVICES // DRIFTED_EVERY
    assert kinds == {"unmapped_secret": expected}, kinds
    assert found == expected, found
    d_time = statistics.median(t for *_, t in drift_runs)
    n_time = statistics.median(t for *_, t in naive_runs)
    d_total, n_total = sum(d_http.values()), sum(n_http.values())
    refs = SERVICES * SECRETS_PER_SERVICE
    print(
        f"environment: {SERVICES} services x {SECRETS_PER_SERVICE} secrets = {refs} references "
        f"to {DISTINCT} distinct secrets; {expected} planted drifts, found by both"
    )
    print(f"drift: adapter calls {report.calls.describe()}")
    for label, http in (("drift", d_http), ("naive", n_http)):
        print(
            f"{label}: HTTP requests {sum(http.values())} (Cloud Run {http['run']}; Secret "
            f"Manager reads {http['sm_read']}, accesses {http['sm_access']})"
        )
    print(
        f"Secret Manager read quota (600/min): drift {d_http['sm_read'] / 600:.1f} min of it, "
        f"naive {n_http['sm_read'] / 600:.1f} min"
    )
    print(
        f"wall time, median of {ROUNDS}: drift {d_time:.2f} s, naive {n_time:.2f} s "
        f"(rounds: drift {', '.join(f'{t:.2f}' for *_, t in drift_runs)}; "
        f"naive {', '.join(f'{t:.2f}' for *_, t in naive_runs)})"
    )
    print(
        f"ratio naive/drift: HTTP requests {n_total / d_total:.2f}x, Secret Manager reads "
        f"{n_http['sm_read'] / d_http['sm_read']:.2f}x, wall time {n_time / d_time:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
