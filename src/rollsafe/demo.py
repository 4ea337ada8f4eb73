"""``rollsafe demo``: the staging incident, played on the local emulator.

(1) the incident's secrets: the deploy is refused with the findings; (2) forced anyway: the
revision exits 3 and traffic stays on the good revision; (3) a revision that starts but
answers 503: verification fails and traffic is rolled back; (4) secrets fixed: the deploy
goes through canary steps; (5) the history. Then the loop (``rollsafe._demo_loop``): (6) a
deploy that passed verification breaks, (7) the monitor alerts a local receiver and rolls
it back, (8) ``rollsafe why`` writes the report, (9) the status page and the report.
A prober requests the service URL every 50 ms throughout and counts every answer that is
not 200, those during the staged break apart. The backend is private, as on Cloud Run: the
prober and the deploys carry ID tokens that the emulator mints.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from rollsafe._demo_loop import LoopOutcome, demo_manifest, play_loop
from rollsafe._demo_monitor import DemoMonitor
from rollsafe.deploy import DeployListener, DeployOptions, DeployResult, run_deploy
from rollsafe.errors import RollsafeError
from rollsafe.manifest import ResolvedEnvironment, load_manifest
from rollsafe.platforms.idtoken import IdTokenAuth, IdTokens
from rollsafe.state.journal import DeployJournal, DeployRecord

if TYPE_CHECKING:
    from rollsafe.stores.secretmanager import SecretManagerStore

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
    While ``staging(True)`` (a break made on purpose) they go to ``staged``, not ``bad``;
    ``last_ok`` is the ``time.monotonic()`` of the latest 200. Each failed answer is kept
    as what it was and when (``HTTP 503 at 10:41:02.123Z``).
    """

    def __init__(self, url: str, interval: float = 0.05, *, auth: httpx.Auth | None = None) -> None:
        self.url = url
        self.interval = interval
        self.auth = auth
        self.total = 0
        self.bad: list[str] = []
        self.staged: list[str] = []
        self.last_ok = 0.0
        self._staging = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rollsafe-prober", daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=2.0, auth=self.auth) as client:
            while not self._stop.is_set():
                staged = self._staging
                failure: str | None
                try:
                    status = client.get(self.url + "/health").status_code
                except (httpx.HTTPError, RollsafeError) as exc:
                    failure = f"no answer ({exc.__class__.__name__}) at {_now()}"
                else:
                    failure = f"HTTP {status} at {_now()}" if status != 200 else None
                    if failure is None:
                        self.last_ok = time.monotonic()
                if failure is not None:
                    # a request in flight when the break began (or ended) belongs to it
                    staged = staged or self._staging
                    (self.staged if staged else self.bad).append(failure)
                self.total += 1
                self._stop.wait(self.interval)

    def staging(self, on: bool) -> None:
        """Count the answers that are not 200 as the staged break's (``on``) or not."""
        self._staging = on

    def start(self) -> Prober:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _now() -> str:
    now = time.time()
    return time.strftime("%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


@dataclass
class DemoOutcome:
    """What the demo saw; ``ok`` when every scenario ended as the story says."""

    steps: list[tuple[str, bool, str]] = field(default_factory=list)
    non_200: int = 0
    #: the first few of them, with their time
    non_200_seen: list[str] = field(default_factory=list)
    #: answers that were not 200 while the demo broke the service on purpose (scene 6)
    staged: int = 0
    probes: int = 0
    loop: LoopOutcome | None = None
    history: list[DeployRecord] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        loop = self.loop.steps if self.loop is not None else []
        return all(ok for _, ok, _ in [*self.steps, *loop]) and self.non_200 == 0


@contextmanager
def _workspace(given: Path | None) -> Iterator[Path]:
    """``given``, or a new temporary directory that stays for its report (the state in
    it, the emulator's data and keys, goes; all of it goes when no report was written)."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    root = Path(tempfile.mkdtemp(prefix="rollsafe-demo-"))
    try:
        yield root
    finally:
        reported = any(root.glob("incident-report.*"))
        shutil.rmtree(root / ".rollsafe" if reported else root, ignore_errors=True)


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
    text = demo_manifest((files / "rollsafe.yaml").read_text(encoding="utf-8"))
    _copy_tree(files / "backend", root / "backend")
    good = root / "rollsafe.yaml"
    good.write_text(text, encoding="utf-8")
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
    serve: str = "127.0.0.1:0",
    loop_only: bool = False,
    history: Callable[[list[DeployRecord]], None] | None = None,
    keep: Callable[[DemoOutcome], None] | None = None,
) -> DemoOutcome:
    """Play the incident; ``say`` narrates, ``listener`` draws each deploy's stages.

    ``history`` shows the journal after scene (4); the status page is served on ``serve``.
    ``loop_only``: the baseline (0), then the loop (6-9) straight away.
    ``keep``, when given, is called with the outcome once everything was played, with the
    emulator, the monitor and the status page still running, and they stop when it
    returns (``rollsafe demo --keep`` waits for Ctrl-C in it).
    """
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

                if not loop_only:
                    _story(say, expect, deploy, store, strong_secrets, good, incident)

                if history is not None:
                    history(journal.history(ENV, SERVICE))
                with DemoMonitor(
                    good, journal=journal, secrets=store, endpoint=endpoint, say=say, serve=serve
                ) as monitor:
                    outcome.loop = play_loop(
                        monitor,
                        deploy=lambda **options: deploy(good, **options),
                        prober=prober,
                        platform=platform,
                        logs=revision_logs,
                        root=root,
                        service=SERVICE,
                    )
                    outcome.history = journal.history(ENV, SERVICE)
                    _stop_prober(prober, outcome)
                    outcome.seconds = time.perf_counter() - started
                    if keep is not None:
                        keep(outcome)
        finally:
            if prober is not None:
                _stop_prober(prober, outcome)
            say("stopping the emulator and every revision ...")
            stop_emulator(state_dir)
    if keep is None:
        outcome.seconds = time.perf_counter() - started
    return outcome


def _story(
    say: Callable[[str], None],
    expect: Callable[[str, DeployResult, int], None],
    deploy: Callable[..., DeployResult],
    store: SecretManagerStore,
    strong_secrets: Callable[[], None],
    good: ResolvedEnvironment,
    incident: ResolvedEnvironment,
) -> None:
    """Scenes (1) to (4): the incident refused, forced, a broken revision, the fix."""
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


def _stop_prober(prober: Prober, outcome: DemoOutcome) -> None:
    prober.stop()
    outcome.non_200 = len(prober.bad)
    outcome.non_200_seen = prober.bad[:5]
    outcome.staged = len(prober.staged)
    outcome.probes = prober.total
