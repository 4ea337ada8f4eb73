"""How fast rollsafe gives the traffic back, and how long a healthy deploy takes.

On an emulator of its own (a temp state directory, stopped at the end) with the example
service of ``examples/`` as the manifest declares it (staging, strict). Three figures, each
the median of 5, target under 1 s each:

- verify: a revision whose ``/health`` breaks after its start is deployed; from the first
  failing verification probe to the candidate tag removed (the compensation done),
  ``DeployResult.rollback.seconds``.
- canary at 50%: a revision that stays healthy through verify and the 10% step
  (``BACKEND_FAIL_HEALTH=N``: its first N health answers pass) is deployed with
  ``--canary 10,50,100``; from the first failing probe of the 50% step to 100% back on the
  previous revision.
- SIGINT at 50%: the real CLI (a process of its own) deploys a healthy revision with
  ``--canary 10,50,100``; when the service splits 50/50 it gets SIGINT; from the signal to
  the service read back with 100% on the previous revision and no candidate tag.

Also: the whole ``run_deploy`` of a good revision, wall clock.

Run: ``.venv/bin/python benchmarks/rollback.py``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from rollsafe.deploy import (  # noqa: E402
    CANDIDATE_TAG,
    DeployOptions,
    DeployResult,
    EventLog,
    run_deploy,
)
from rollsafe.emulator.server import start_emulator, stop_emulator  # noqa: E402
from rollsafe.manifest import ResolvedEnvironment, load_manifest  # noqa: E402
from rollsafe.platforms import ServiceInfo  # noqa: E402
from rollsafe.platforms.cloudrun import CloudRunPlatform  # noqa: E402
from rollsafe.state.journal import DeployJournal  # noqa: E402
from rollsafe.stores.secretmanager import SecretManagerStore  # noqa: E402

RUNS = 5
TARGET = 1.0  # seconds, for each of the three figures
SERVICE = "backend"
ENV = "staging"
_NONE = ServiceInfo(SERVICE, None)


def _workspace(root: Path) -> Path:
    examples = ROOT / "examples"
    shutil.copy2(examples / "rollsafe.yaml", root / "rollsafe.yaml")
    shutil.copytree(
        examples / "backend", root / "backend", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root / "rollsafe.yaml"


def _median(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.3f} s "
        f"(min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"
    )


def _run(
    env: ResolvedEnvironment,
    platform: CloudRunPlatform,
    store: SecretManagerStore,
    journal: DeployJournal,
    expect: int,
    **options: object,
) -> tuple[DeployResult, float]:
    start = time.perf_counter()
    result = run_deploy(
        env,
        SERVICE,
        DeployOptions(watch=0, **options),  # type: ignore[arg-type]
        platform=platform,
        store=store,
        journal=journal,
        listener=EventLog(),
    )
    seconds = time.perf_counter() - start
    if result.exit_code != expect:
        raise SystemExit(f"expected exit {expect}, got {result.exit_code}: {result.message}")
    return result, seconds


def _sigint_at_50(
    manifest: Path, state_dir: Path, platform: CloudRunPlatform, journal: DeployJournal
) -> float:
    """Deploy with the CLI, SIGINT it when 50% is on the new revision, time the way back."""
    before = platform.get_service(SERVICE)
    assert before is not None
    previous = before.split()
    argv = [sys.executable, "-c", "from rollsafe.cli import main; main()", "deploy"]
    argv += ["-f", str(manifest), "--env", ENV, "--service", SERVICE]
    argv += ["--canary", "10,50,100", "--watch", "0"]
    environ = {k: v for k, v in os.environ.items() if k != "ROLLSAFE_HOME"}
    child = subprocess.Popen(
        argv,
        cwd=manifest.parent,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise SystemExit(f"the deploy ended before 50%: {child.communicate()[0]}")
            info = platform.get_service(SERVICE)
            if info is not None and 50 in info.split().values() and len(info.split()) == 2:
                break
            time.sleep(0.01)
        else:
            raise SystemExit("the deploy never reached 50%")
        start = time.perf_counter()
        child.send_signal(signal.SIGINT)
        while True:
            info = platform.get_service(SERVICE)
            assert info is not None
            if info.split() == previous and CANDIDATE_TAG not in info.tags():
                seconds = time.perf_counter() - start
                break
            time.sleep(0.005)
        output, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=30)
    if child.returncode != 130:
        raise SystemExit(f"expected exit 130, got {child.returncode}: {output}")
    record = journal.history(ENV, SERVICE)[0]
    if record.outcome != "cancelled":
        raise SystemExit(f"expected the journal outcome cancelled, got {record.outcome}")
    return seconds


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="rollsafe-bench-") as tmp:
        root = Path(tmp)
        manifest = _workspace(root)
        env = load_manifest(manifest).resolve(ENV)
        health = env.services[SERVICE].health
        state_dir = root / ".rollsafe"
        endpoint = start_emulator(state_dir).endpoint
        assert endpoint is not None
        try:
            with (
                CloudRunPlatform(env.gcp_project, env.region, endpoint=endpoint) as platform,
                SecretManagerStore(env.gcp_project, endpoint=endpoint) as store,
                DeployJournal(state_dir) as journal,
            ):
                for sec in env.services[SERVICE].secrets.values():
                    store.add_version(sec.secret, secrets.token_urlsafe(48))
                _run(env, platform, store, journal, 0)  # the first revision: nothing to time

                healthy = [_run(env, platform, store, journal, 0)[1] for _ in range(RUNS)]
                at_verify: list[float] = []
                for _ in range(RUNS):
                    failed, _ = _run(
                        env, platform, store, journal, 3, extra_env={"BACKEND_FAIL_HEALTH": "1"}
                    )
                    assert failed.rollback is not None
                    assert failed.rollback.seconds is not None
                    if CANDIDATE_TAG in (platform.get_service(SERVICE) or _NONE).tags():
                        raise SystemExit("the candidate tag survived the rollback")
                    at_verify.append(failed.rollback.seconds)
                # healthy answers: the startup probe's, verify's and the 10% step's
                good = 1 + 2 * health.consecutive
                at_step: list[float] = []
                for _ in range(RUNS):
                    failed, _ = _run(
                        env,
                        platform,
                        store,
                        journal,
                        3,
                        canary=(10, 50, 100),
                        extra_env={"BACKEND_FAIL_HEALTH": str(good)},
                    )
                    if "at 50%" not in failed.message:
                        raise SystemExit(f"expected a failure at the 50% step: {failed.message}")
                    assert failed.rollback is not None
                    assert failed.rollback.seconds is not None
                    at_step.append(failed.rollback.seconds)
                cancelled = [
                    _sigint_at_50(manifest, state_dir, platform, journal) for _ in range(RUNS)
                ]
        finally:
            stop_emulator(state_dir)

    print(
        f"example service on the emulator; health: {health.consecutive} passing probes "
        f"{health.interval:g} s apart at verify and at each canary step; no watch window"
    )
    print(f"healthy deploy, whole run_deploy:                    {_median(healthy)}")
    print(f"failing probe at verify -> candidate tag removed:    {_median(at_verify)}")
    print(f"failing canary step at 50% -> 100% back on previous: {_median(at_step)}")
    print(f"SIGINT at 50% -> 100% back on previous:              {_median(cancelled)}")
    figures = {"verify": at_verify, "canary 50%": at_step, "SIGINT 50%": cancelled}
    missed = [name for name, values in figures.items() if statistics.median(values) >= TARGET]
    print(
        f"target: each under {TARGET:g} s: "
        + (f"MISSED ({', '.join(missed)})" if missed else "met")
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
