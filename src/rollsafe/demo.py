"""``rollsafe demo``: the staging incident, played on the local emulator.

(1) the incident's secrets: the deploy is refused with the findings; (2) forced anyway: the
revision exits 3 and traffic stays on the good revision; (3) a revision that starts but
answers 503: verification fails and traffic is rolled back; (4) secrets fixed: the deploy
goes through canary steps; (5) the history. A prober requests the service URL every 50 ms
throughout and counts every answer that is not 200. The backend is private, as on Cloud
Run: the prober and the deploys carry ID tokens that the emulator mints.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import httpx

from rollsafe.deploy import DeployListener, DeployOptions, DeployResult, run_deploy
from rollsafe.errors import RollsafeError
from rollsafe.manifest import ResolvedEnvironment, load_manifest
from rollsafe.platforms.idtoken import IdTokenAuth, IdTokens
from rollsafe.state.journal import DeployJournal, DeployRecord

__all__ = ["DemoOutcome", "Prober", "demo_files", "run_demo"]

ENV = "staging"
SERVICE = "backend"
#: the examples of a source checkout; an installed wheel has them as ``rollsafe/_demo_data``
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO_DATA = "_demo_data"
# the incident's values: a readable SERVICE_SECRET and a JWT key too short for HS256
WEAK = {
    "service-secret-staging": "netra-staging-service-secret",
    "jwt-secret-key-staging": "staging-jwt-key-2024",
}
BAD_REDIRECT = (
    "https://app.{env}.example.com/auth/callback",
    "https://api.{env}.example.com/auth/callback",
)


class Prober:
    """Requests a URL every ``interval`` seconds in a thread; counts answers that are not 200.

    ``auth`` (an ``IdTokenAuth``) gives each request the ID token a private service needs.
    """

    def __init__(self, url: str, interval: float = 0.05, *, auth: httpx.Auth | None = None) -> None:
        self.url = url
        self.interval = interval
        self.auth = auth
        self.total = 0
        self.bad: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rollsafe-prober", daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=2.0, auth=self.auth) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(self.url + "/health").status_code
                except (httpx.HTTPError, RollsafeError) as exc:
                    status = 0
                    self.bad.append(f"no answer ({exc.__class__.__name__})")
                else:
                    if status != 200:
                        self.bad.append(f"HTTP {status}")
                self.total += 1
                self._stop.wait(self.interval)

    def start(self) -> Prober:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class DemoOutcome:
    """What the demo saw; ``ok`` when every scenario ended as the story says."""

    steps: list[tuple[str, bool, str]] = field(default_factory=list)
    non_200: int = 0
    probes: int = 0
    history: list[DeployRecord] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.steps) and self.non_200 == 0


@contextmanager
def _workspace(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="rollsafe-demo-") as tmp:
        yield Path(tmp)


def demo_files() -> Traversable:
    """Where the demo's manifest and backend are: the package data of an installed wheel
    (``rollsafe/_demo_data``, through importlib.resources), else ``examples/`` of a checkout."""
    packaged = resources.files("rollsafe") / DEMO_DATA
    if packaged.is_dir():
        return packaged
    if not EXAMPLES.is_dir():
        raise RollsafeError(
            "the demo's example files are missing from this installation",
            hint="reinstall rollsafe from a wheel or a source checkout",
        )
    return EXAMPLES


def _copy_tree(source: Traversable, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name == "__pycache__":
            continue
        if item.is_dir():
            _copy_tree(item, target / item.name)
        else:
            (target / item.name).write_bytes(item.read_bytes())


def _copy_examples(root: Path) -> tuple[Path, Path]:
    """The example manifest and backend, plus an incident variant with the bad redirect."""
    files = demo_files()
    (root / "rollsafe.yaml").write_bytes((files / "rollsafe.yaml").read_bytes())
    _copy_tree(files / "backend", root / "backend")
    good = root / "rollsafe.yaml"
    text = good.read_text()
    if BAD_REDIRECT[0] not in text:
        raise RuntimeError("examples/rollsafe.yaml no longer has the expected redirect URI")
    incident = root / "incident.yaml"
    incident.write_text(text.replace(*BAD_REDIRECT))
    return good, incident


def run_demo(
    say: Callable[[str], None],
    listener: DeployListener,
    *,
    workspace: Path | None = None,
    watch: float = 2.0,
) -> DemoOutcome:
    """Play the incident; ``say`` narrates, ``listener`` draws each deploy's stages."""
    from rollsafe.emulator.server import start_emulator, stop_emulator
    from rollsafe.platforms.cloudrun import CloudRunPlatform
    from rollsafe.platforms.logs import CloudLoggingRevisionLogs
    from rollsafe.stores.secretmanager import SecretManagerStore

    started = time.perf_counter()
    outcome = DemoOutcome()
    with _workspace(workspace) as root:
        good_path, incident_path = _copy_examples(root)
        state_dir = root / ".rollsafe"
        say(f"workspace {root}; starting the emulator (Cloud Run + Secret Manager) ...")
        status = start_emulator(state_dir)
        assert status.endpoint is not None
        endpoint = status.endpoint
        prober: Prober | None = None
        try:
            good = load_manifest(good_path).resolve(ENV)
            incident = load_manifest(incident_path).resolve(ENV)
            with (
                SecretManagerStore(good.gcp_project, endpoint=endpoint) as store,
                CloudRunPlatform(good.gcp_project, good.region, endpoint=endpoint) as platform,
                DeployJournal(state_dir) as journal,
                IdTokens(emulator=endpoint) as tokens,
                CloudLoggingRevisionLogs(good.gcp_project, endpoint=endpoint) as revision_logs,
            ):

                def deploy(env: ResolvedEnvironment, **options: object) -> DeployResult:
                    opts = DeployOptions(watch=watch, **options)  # type: ignore[arg-type]
                    return run_deploy(
                        env,
                        SERVICE,
                        opts,
                        platform=platform,
                        store=store,
                        journal=journal,
                        listener=listener,
                        tokens=tokens,
                        logs=revision_logs,
                    )

                def strong_secrets() -> None:
                    for sec in good.services[SERVICE].secrets.values():
                        store.add_version(sec.secret, secrets.token_urlsafe(48))

                def expect(name: str, result: DeployResult, code: int) -> None:
                    ok = result.exit_code == code
                    detail = f"exit {result.exit_code} (expected {code}): {result.message}"
                    outcome.steps.append((name, ok, detail))
                    if result.report is not None and not result.report.ok:
                        for f in result.report.findings:
                            say(f"    {f.severity.value} {f.key} [{f.rule}] {f.message}")
                    say(("✓ " if ok else "✗ ") + f"{name}: {detail}")

                say("(0) a healthy staging: strong secrets, the first revision")
                strong_secrets()
                expect("baseline deploy", deploy(good), 0)
                service = platform.get_service(SERVICE)
                if service is None or service.url is None:
                    return outcome  # the baseline failed: nothing to protect, the steps say why
                prober = Prober(service.url, auth=IdTokenAuth(tokens)).start()
                say(f"prober: GET {service.url}/health every 50 ms from now on, with an ID token")

                say("(1) the incident's secrets and redirect: the deploy is refused")
                for name, value in WEAK.items():
                    store.add_version(name, value)
                expect("incident deploy refused by preflight", deploy(incident), 1)

                say("(2) forced anyway: the start-up guard exits 3, traffic stays put")
                forced = deploy(incident, force=True, reason="demo: force the incident deploy")
                expect("forced deploy fails at start-up", forced, 3)

                say("(3) secrets fixed, but the new revision answers 503 after start")
                strong_secrets()
                broken = deploy(good, extra_env={"BACKEND_FAIL_HEALTH": "1"})
                expect("broken revision rolled back", broken, 3)

                say("(4) secrets and configuration fixed: canary 10% -> 50% -> 100%")
                expect("fixed deploy through canary steps", deploy(good, canary=(10, 50, 100)), 0)

                outcome.history = journal.history(ENV, SERVICE)
        finally:
            if prober is not None:
                prober.stop()
                outcome.non_200 = len(prober.bad)
                outcome.probes = prober.total
            say("stopping the emulator and every revision ...")
            stop_emulator(state_dir)
    outcome.seconds = time.perf_counter() - started
    return outcome
