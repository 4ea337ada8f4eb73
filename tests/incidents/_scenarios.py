"""Issue 13's three incidents, scripted on the emulator the way they happen on Google.

Everything that changes the service goes through Google's own clients (Secret Manager,
Cloud Run ``run_v2``) or through ``rollsafe deploy``; nothing writes the emulator's state.
The one thing no API does is recycle an instance: Cloud Run does it on its own, and here
the instance's process is killed (SIGKILL, found by its ``K_REVISION`` in ``/proc``), so the
emulator's supervisor starts it again and resolves ``latest`` again, as Cloud Run would.

- ``weak_secret_while_running`` (a): a service created outside rollsafe maps its secrets at
  ``latest``; a weak SERVICE_SECRET version is added; the instance restarts: the start-up
  guard refuses it (exit 3) and the service answers 503.
- ``missing_jwt_mapping`` (b): a service created outside rollsafe, without the guard
  (``BACKEND_GUARD=off``) and without the JWT_SECRET_KEY mapping: ``/api/me`` answers 500
  and logs ``JWT secret not configured`` at ERROR.
- ``deploy_rolled_back`` (c): ``rollsafe deploy`` of a revision whose ``/health`` breaks
  after start: verification fails on the tag URL and the deploy rolls back (exit 3).

``Google`` reads the evidence back through the same APIs, so a test can compare what the
report says with what the logs hold.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from google.api_core import exceptions
from google.api_core.future import polling
from google.auth.credentials import AnonymousCredentials
from google.cloud import logging as cloud_logging
from google.cloud import run_v2, secretmanager

from rollsafe._gcp import client_kwargs
from rollsafe.deploy.plan import startup_probe
from rollsafe.startup.contract import CONTRACT_VAR, contract_from_service
from tests.deploy.conftest import ENV, SERVICE, Site
from tests.monitor._monitor_site import MonitorProcess, monitored

#: a SERVICE_SECRET value that the ``machine_secret`` rule refuses (dictionary words, ~88
#: estimated bits) and that no report may ever print
WEAK_CANARY = "netra-canary-service-secret-weak-2026"
REQUEST_LOG = "run.googleapis.com%2Frequests"
SYSTEM_LOG = "run.googleapis.com%2Fvarlog%2Fsystem"
_FAST = polling.DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.25, multiplier=1.5)


def rfc3339(moment: float) -> str:
    """``time.time()`` as the RFC 3339 UTC time the CLI and the Logging filters take."""
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond:06d}Z"


def wait_for(what: str, ready: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``ready`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@dataclass(frozen=True)
class RequestEntry:
    """One ``run.googleapis.com/requests`` entry, as the Logging API returns it."""

    insert_id: str
    time: float
    revision: str
    status: int
    path: str
    host: str


class _ReadingClient(cloud_logging.Client):  # type: ignore[misc]
    # each logger without a resource (list_entries makes one per log) would otherwise ask
    # the GCE metadata server where it runs: traffic beyond loopback
    def logger(self, name: str, *, labels: object = None, resource: object = None) -> object:
        resource = resource or cloud_logging.Resource(type="global", labels={})
        return super().logger(name, labels=labels, resource=resource)


class Google:
    """The project's Secret Manager, Cloud Run and Cloud Logging, through Google's clients."""

    def __init__(self, site: Site) -> None:
        assert site.env.gcp_project is not None
        self.site = site
        self.project = site.env.gcp_project
        self.region = site.env.region or "us-central1"
        kwargs = client_kwargs(site.endpoint)
        self.sm = secretmanager.SecretManagerServiceClient(**kwargs)
        self.run = run_v2.ServicesClient(**kwargs)
        # REST through its own HTTP client (its GAPIC is gRPC only)
        self.logging = _ReadingClient(
            project=self.project,
            credentials=AnonymousCredentials(),
            _use_grpc=False,
            client_options={"api_endpoint": site.endpoint},
        )

    def close(self) -> None:
        for client in (self.sm, self.run):
            client.transport.close()
        self.logging.close()

    # -- Secret Manager --
    def add_version(self, secret: str, value: str) -> int:
        """``gcloud secrets versions add`` (creating the secret first if needed)."""
        parent = f"projects/{self.project}/secrets/{secret}"
        try:
            self.sm.get_secret(name=parent)
        except exceptions.NotFound:
            self.sm.create_secret(
                parent=f"projects/{self.project}",
                secret_id=secret,
                secret={"replication": {"automatic": {}}},
            )
        self.site.values.append(value)
        version = self.sm.add_secret_version(parent=parent, payload={"data": value.encode()})
        return int(version.name.rsplit("/", 1)[-1])

    def version_times(self, secret: str) -> dict[int, float]:
        """Each version's number -> create time."""
        parent = f"projects/{self.project}/secrets/{secret}"
        return {
            int(v.name.rsplit("/", 1)[-1]): v.create_time.timestamp()
            for v in self.sm.list_secret_versions(parent=parent)
        }

    # -- Cloud Run --
    def create_service(self, env: dict[str, str], secrets: dict[str, str]) -> str:
        """The example backend as a service created outside rollsafe (``gcloud run deploy``
        would do the same): plain ``env``, ``secrets`` as KEY -> SECRET:VERSION, the
        manifest's command and startup probe, no rollsafe annotation. Its revision."""
        svc = self.site.env.services[SERVICE]
        variables = [run_v2.EnvVar(name=k, value=v) for k, v in sorted(env.items())]
        for key, ref in sorted(secrets.items()):
            secret, _, version = ref.partition(":")
            selector = run_v2.SecretKeySelector(secret=secret, version=version)
            source = run_v2.EnvVarSource(secret_key_ref=selector)
            variables.append(run_v2.EnvVar(name=key, value_source=source))
        probe = startup_probe(svc.health)
        container = run_v2.Container(
            image="us-docker.pkg.dev/netra/app/backend:1.4.2",
            command=list(svc.command[:1]),
            args=list(svc.command[1:]),
            working_dir=str(self.site.root / "backend"),
            env=variables,
            startup_probe=run_v2.Probe(
                http_get=run_v2.HTTPGetAction(path=probe.path),
                period_seconds=probe.period,
                timeout_seconds=probe.timeout,
                failure_threshold=probe.failure_threshold,
            ),
        )
        operation = self.run.create_service(
            parent=f"projects/{self.project}/locations/{self.region}",
            service_id=SERVICE,
            service=run_v2.Service(template=run_v2.RevisionTemplate(containers=[container])),
        )
        service: run_v2.Service = operation.result(polling=_FAST.with_timeout(60))
        return service.latest_ready_revision.rsplit("/", 1)[-1]

    def service_host(self) -> str:
        """The host of the service's URL (requests on any other host came through a tag)."""
        name = f"projects/{self.project}/locations/{self.region}/services/{SERVICE}"
        return urlsplit(self.run.get_service(name=name).uri).netloc.lower()

    def delete_service(self) -> None:
        """Stop the service's instances (a refused revision would restart for the session)."""
        name = f"projects/{self.project}/locations/{self.region}/services/{SERVICE}"
        with contextlib.suppress(Exception):
            self.run.delete_service(name=name).result(polling=_FAST.with_timeout(60))

    # -- Cloud Logging --
    def entries(self, filter_: str) -> list[Any]:
        """Every entry of the project matching ``filter_``, oldest first."""
        return list(
            self.logging.list_entries(
                resource_names=[f"projects/{self.project}"],
                filter_=filter_,
                order_by=cloud_logging.ASCENDING,
                page_size=1000,
            )
        )

    def revision_entries(self, revision: str, log: str, extra: str = "") -> list[Any]:
        return self.entries(
            f'logName="projects/{self.project}/logs/{log}"'
            f' AND resource.labels.revision_name="{revision}"' + (f" AND {extra}" if extra else "")
        )

    def requests(self, since: float, until: float) -> list[RequestEntry]:
        """The service's request-log entries in ``[since, until]``."""
        found = self.entries(
            f'logName="projects/{self.project}/logs/{REQUEST_LOG}"'
            f' AND resource.labels.service_name="{SERVICE}"'
            f' AND timestamp>="{rfc3339(since)}" AND timestamp<="{rfc3339(until)}"'
        )
        return [
            RequestEntry(
                insert_id=e.insert_id,
                time=e.timestamp.timestamp(),
                revision=(e.resource.labels or {}).get("revision_name", ""),
                status=int(e.http_request["status"]),
                path=urlsplit(e.http_request["requestUrl"]).path,
                host=urlsplit(e.http_request["requestUrl"]).netloc.lower(),
            )
            for e in found
        ]


def instance_pids(revision: str, workdir: Path) -> list[int]:
    """The processes of ``revision``'s instances: ``K_REVISION`` in their environment and
    this test's copy of the backend as their working directory (revision names repeat
    across the projects of other tests)."""
    wanted = f"K_REVISION={revision}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if wanted in environ and Path(cwd) == workdir:
            found.append(int(entry.name))
    return found


def recycle_instances(revision: str, workdir: Path) -> list[int]:
    """What Cloud Run does on its own (a host's maintenance, a scale-in): the instances of
    ``revision`` go away and new ones start. SIGKILL; the supervisor starts them again."""
    pids = instance_pids(revision, workdir)
    assert pids, f"no running instance of {revision}"
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


@dataclass
class Incident:
    """A scripted incident: where, when, and the facts a report must reach."""

    name: str
    site: Site
    google: Google
    #: before the first change: the report's --since
    started: float
    #: the revision whose failure is the incident
    revision: str
    previous: str | None = None
    #: (a): the weak version of service-secret-staging
    weak_version: int | None = None
    deploy_id: str | None = None
    #: (a): the monitor's output, when it ran
    monitor_output: list[str] = field(default_factory=list)

    @property
    def values(self) -> list[str]:
        """Every secret value the incident put in the store: none may appear in a report."""
        return list(self.site.values)


def _strong_secrets(google: Google) -> None:
    for sec in google.site.env.services[SERVICE].secrets.values():
        google.add_version(sec.secret, secrets.token_urlsafe(48))


def _plain_env(site: Site) -> dict[str, str]:
    return {name: var.value for name, var in site.env.services[SERVICE].env.items()}


def _traffic(site: Site, path: str, count: int) -> list[int]:
    return [site.get(path).status_code for _ in range(count)]


def weak_secret_while_running(site: Site, google: Google, *, monitor: bool = False) -> Incident:
    """(a) See the module docstring. ``monitor``: ``rollsafe monitor`` runs (a process) from
    before the version is added until its ServiceDown alert fires, so its alerts and probe
    counts are evidence too."""
    started = time.time()
    _strong_secrets(google)
    env = {**_plain_env(site), CONTRACT_VAR: contract_from_service(site.env, SERVICE).to_json()}
    latest = {k: f"{s.secret}:latest" for k, s in site.env.services[SERVICE].secrets.items()}
    revision = google.create_service(env, latest)
    assert _traffic(site, "/", 3) == [200] * 3
    incident = Incident("weak-secret", site, google, started, revision)
    with contextlib.ExitStack() as stack:
        running = None
        if monitor:
            monitored(site)
            running = stack.enter_context(MonitorProcess(site, name="monitor"))
            running.wait_for("monitoring", stream="stderr")
        incident.weak_version = google.add_version(f"service-secret-{ENV}", WEAK_CANARY)
        recycle_instances(revision, site.root / "backend")
        wait_for(
            "the guard's exit(3)",
            lambda: google.revision_entries(revision, SYSTEM_LOG, 'textPayload:"exit(3)"'),
        )
        statuses = _traffic(site, "/", 3)
        assert statuses == [503] * 3, statuses
        if running is not None:
            running.wait_for("ServiceDown firing")
            assert running.stop() == 0, running.stderr
            incident.monitor_output = [running.stdout, running.stderr]
    return incident


def missing_jwt_mapping(site: Site, google: Google) -> Incident:
    """(b) See the module docstring."""
    started = time.time()
    _strong_secrets(google)
    pinned = {
        k: f"{s.secret}:1"
        for k, s in site.env.services[SERVICE].secrets.items()
        if k != "JWT_SECRET_KEY"
    }
    revision = google.create_service({**_plain_env(site), "BACKEND_GUARD": "off"}, pinned)
    assert _traffic(site, "/health", 2) == [200] * 2
    # the ID token Cloud Run checks is the bearer token /api/me reads
    assert _traffic(site, "/api/me", 4) == [500] * 4
    return Incident("missing-jwt", site, google, started, revision)


def deploy_rolled_back(site: Site, google: Google) -> Incident:
    """(c) See the module docstring."""
    started = time.time()
    previous = site.baseline()
    assert _traffic(site, "/", 3) == [200] * 3
    result = site.deploy(extra_env={"BACKEND_FAIL_HEALTH": "1"})
    assert result.exit_code == 3, result.message
    assert result.plan is not None
    assert site.split() == {previous: 100}
    assert _traffic(site, "/", 3) == [200] * 3
    return Incident(
        "rolled-back",
        site,
        google,
        started,
        result.plan.spec.revision,
        previous=previous,
        deploy_id=result.record.id if result.record else None,
    )


@contextlib.contextmanager
def opened(site: Site) -> Iterator[Google]:
    """``Google`` on the site's project; the service is deleted at the end, so a revision
    the guard refuses does not restart for the rest of the session."""
    google = Google(site)
    try:
        yield google
    finally:
        google.delete_service()
        google.close()


def settled_requests(google: Google, since: float) -> list[RequestEntry]:
    """The request log from ``since`` on, once the emulator has written all of it (it
    writes in batches every 0.25 s): two reads half a second apart agree."""
    last: list[RequestEntry] | None = None
    deadline = time.monotonic() + 10
    while True:
        now = google.requests(since, time.time())
        if (last is not None and len(now) == len(last)) or time.monotonic() > deadline:
            return now
        last = now
        time.sleep(0.5)
