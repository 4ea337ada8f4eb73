"""A deploy workspace on the session's emulator: the example service, its store, a journal.

Every test gets the example manifest and backend copied into ``tmp_path`` with the
``staging`` environment pointed at a project of its own, so tests never see each other's
services, secrets or journal. The state directory beside the manifest holds the journal
and a copy of the session emulator's run file, so the real CLI (``-f`` that manifest) finds
the same running emulator instead of starting one.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from rollsafe.cli import app
from rollsafe.demo import BAD_REDIRECT, WEAK
from rollsafe.deploy import DeployOptions, DeployResult, EventLog, run_deploy
from rollsafe.emulator.server import RUN_FILE, stop_emulator
from rollsafe.manifest import ResolvedEnvironment, load_manifest
from rollsafe.platforms import RevisionInfo, ServiceInfo
from rollsafe.platforms.cloudrun import CloudRunPlatform
from rollsafe.platforms.idtoken import IdTokenAuth, IdTokens
from rollsafe.platforms.logs import CloudLoggingRevisionLogs
from rollsafe.state import STATE_DIR_NAME
from rollsafe.state.journal import DeployJournal
from rollsafe.stores.secretmanager import SecretManagerStore
from tests.conftest import EXAMPLES

CHILD = Path(__file__).with_name("_child.py")
PAUSE_TIMEOUT = 60.0

ENV = "staging"
SERVICE = "backend"

# the example's strict environment, given a project of its own
_STAGING = "staging: {platform: local, strict: true}"
# the example's health check, probed every 0.1 s instead of 0.5 s to keep the suite quick
_HEALTH = "health: {path: /health, expect_status: 200, timeout: 2s}"
_FAST_HEALTH = "health: {path: /health, expect_status: 200, timeout: 2s, interval: 0.1s}"
# and canary steps judged over 1 s of request logs instead of 3 s
_ANALYSIS = "analysis: {step_seconds: 3s, max_error_rate: 0.01}"
FAST_ANALYSIS = "analysis: {step_seconds: 1s}"


def fingerprint(value: str) -> str:
    """What the example backend reports for SERVICE_SECRET: a SHA-256 prefix."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


def write_manifests(root: Path, project: str, *, fast: bool = True) -> tuple[Path, Path]:
    """Copy the example into ``root``: ``rollsafe.yaml`` and the incident's ``incident.yaml``."""
    text = (EXAMPLES / "rollsafe.yaml").read_text(encoding="utf-8")
    for old in (_STAGING, _HEALTH, _ANALYSIS, BAD_REDIRECT[0]):
        assert old in text, f"examples/rollsafe.yaml no longer has {old!r}"
    text = text.replace(_STAGING, _STAGING[:-1] + f", gcp_project: {project}}}")
    if fast:
        text = text.replace(_HEALTH, _FAST_HEALTH).replace(_ANALYSIS, FAST_ANALYSIS)
    shutil.copytree(
        EXAMPLES / "backend", root / "backend", ignore=shutil.ignore_patterns("__pycache__")
    )
    good = root / "rollsafe.yaml"
    good.write_text(text, encoding="utf-8")
    incident = root / "incident.yaml"
    incident.write_text(text.replace(*BAD_REDIRECT), encoding="utf-8")
    return good, incident


@dataclass
class Site:
    """One test's deploy workspace: manifests, platform, store, journal, events."""

    root: Path
    manifest: Path
    incident_manifest: Path
    state_dir: Path
    env: ResolvedEnvironment
    incident: ResolvedEnvironment
    endpoint: str
    platform: CloudRunPlatform
    store: SecretManagerStore
    journal: DeployJournal
    #: ID tokens from the emulator: the example backend is private
    tokens: IdTokens
    events: EventLog = field(default_factory=EventLog)
    #: every secret value this test put in the store
    values: list[str] = field(default_factory=list)
    #: the emulator's Cloud Logging: a failed revision's exit code and CRITICAL line
    logs: CloudLoggingRevisionLogs | None = None

    def deploy(self, env: ResolvedEnvironment | None = None, **options: Any) -> DeployResult:
        options.setdefault("watch", 0)
        return run_deploy(
            env or self.env,
            SERVICE,
            DeployOptions(**options),
            platform=self.platform,
            store=self.store,
            journal=self.journal,
            listener=self.events,
            logs=self.logs,
        )

    def seed(self) -> dict[str, str]:
        """A strong new version of every secret of the service; returns secret -> value."""
        added = {}
        for sec in self.env.services[SERVICE].secrets.values():
            value = secrets.token_urlsafe(48)
            self.store.add_version(sec.secret, value)
            self.values.append(value)
            added[sec.secret] = value
        return added

    def weaken(self) -> None:
        """The incident's values: a readable SERVICE_SECRET, a short JWT key."""
        for name, value in WEAK.items():
            self.store.add_version(name, value)
            self.values.append(value)

    def baseline(self) -> str:
        """Strong secrets and a first healthy revision; returns its name."""
        self.seed()
        result = self.deploy()
        assert result.exit_code == 0, result.message
        assert result.plan is not None
        return result.plan.spec.revision

    def service(self) -> ServiceInfo:
        info = self.platform.get_service(SERVICE)
        assert info is not None
        return info

    def split(self) -> dict[str, int]:
        return self.service().split()

    def tags(self) -> dict[str, str]:
        return self.service().tags()

    def revisions(self) -> list[RevisionInfo]:
        return self.platform.list_revisions(SERVICE)

    def terminal_message(self) -> str:
        """The service's terminal condition: the text of its last operation's error."""
        from google.cloud import run_v2

        from rollsafe._gcp import client_kwargs

        client = run_v2.ServicesClient(**client_kwargs(self.endpoint))
        try:
            name = f"projects/{self.env.gcp_project}/locations/{self.env.region}/services/"
            message: str = client.get_service(name=name + SERVICE).terminal_condition.message
            return message
        finally:
            client.transport.close()

    def variant(self, old: str, new: str) -> ResolvedEnvironment:
        """The environment of this workspace's manifest with ``old`` replaced by ``new``."""
        text = self.manifest.read_text(encoding="utf-8")
        assert old in text, f"the manifest has no {old!r}"
        path = self.root / "variant.yaml"
        path.write_text(text.replace(old, new), encoding="utf-8")
        return load_manifest(path).resolve(ENV)

    def get(self, path: str, *, token: bool = True) -> httpx.Response:
        """GET through the service URL (the router splits it like Cloud Run), with an ID
        token unless ``token`` is False."""
        url = self.service().url
        assert url is not None
        auth = IdTokenAuth(self.tokens) if token else None
        return httpx.get(url + path, timeout=5.0, auth=auth)

    def cli(self, *args: str, manifest: Path | None = None) -> Result:
        """Run the real CLI on this workspace's manifest (and so its state directory)."""
        argv = [args[0], "-f", str(manifest or self.manifest), *args[1:]]
        return CliRunner().invoke(app, argv)


@pytest.fixture
def site(
    tmp_path: Path,
    project: str,
    emulator: str,
    emulator_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Site]:
    # the CLI must use the state directory beside the manifest
    monkeypatch.delenv("ROLLSAFE_HOME", raising=False)
    good, incident = write_manifests(tmp_path, project)
    state_dir = tmp_path / STATE_DIR_NAME
    state_dir.mkdir()
    # the CLI opens the emulator of the state directory: point it at the session's
    shutil.copy2(emulator_dir / RUN_FILE, state_dir / RUN_FILE)
    env = load_manifest(good).resolve(ENV)
    assert env.gcp_project == project
    with (
        CloudRunPlatform(project, env.region, endpoint=emulator) as platform,
        SecretManagerStore(project, endpoint=emulator) as store,
        DeployJournal(state_dir) as journal,
        IdTokens(emulator=emulator) as tokens,
        CloudLoggingRevisionLogs(project, endpoint=emulator) as logs,
    ):
        yield Site(
            root=tmp_path,
            manifest=good,
            incident_manifest=incident,
            state_dir=state_dir,
            env=env,
            incident=load_manifest(incident).resolve(ENV),
            endpoint=emulator,
            platform=platform,
            store=store,
            journal=journal,
            tokens=tokens,
            logs=logs,
        )
    # had the CLI judged the session's emulator gone, it would have started one of its own
    session = json.loads((emulator_dir / RUN_FILE).read_text())
    ours = json.loads((state_dir / RUN_FILE).read_text())
    if ours.get("pid") != session.get("pid"):
        stop_emulator(state_dir)
        pytest.fail(f"the CLI started an emulator of its own in {state_dir}")


_children = itertools.count(1)


@contextlib.contextmanager
def paused_child(
    site: Site,
    *,
    cwd: Path | None = None,
    environ: dict[str, str] | None = None,
    **args: Any,
) -> Iterator[subprocess.Popen[str]]:
    """Run ``_child.py`` on ``site`` until it prints ``paused STAGE``; kill it at the end.

    The caller kills it with SIGKILL where the test needs it (or resumes it: ``resume``);
    whatever is left is killed and reaped here (a zombie would still look alive to the
    journal). ``cwd`` and ``environ`` (added to this process's) are the child's own; its
    stderr is in ``child.stderr_path``.
    """
    args = {
        "manifest": str(site.manifest),
        "endpoint": site.endpoint,
        "state_dir": str(site.state_dir),
        **args,
    }
    errors = site.root / f"child-{next(_children)}.stderr"
    with errors.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), json.dumps(args)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=cwd,
            env={**os.environ, **(environ or {})},
        )
    child.stderr_path = errors  # type: ignore[attr-defined]
    try:
        assert child.stdout is not None
        line = ""
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + PAUSE_TIMEOUT
            while not line and time.monotonic() < deadline:
                if selector.select(timeout=0.2):
                    line = child.stdout.readline() or "(exited)"
        assert line.startswith("paused"), f"{line!r}; stderr: {errors.read_text()}"
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


def sigkill(child: subprocess.Popen[str]) -> None:
    """Kill ``child`` with SIGKILL and reap it, as a shell would."""
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL
