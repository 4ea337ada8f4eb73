"""How fast a failed deploy gives the traffic back, and how long a healthy deploy takes.

On an emulator of its own (a temp state directory, stopped at the end) with the example
service of ``examples/`` exactly as the manifest declares it (staging, strict):

- rollback: a revision whose ``/health`` answers 503 is deployed; the figure is
  ``DeployResult.rollback.seconds``, from the first failing verification probe to the
  previous revision holding 100% of the traffic again. Target: under 1 s.
- healthy deploy: the whole ``run_deploy`` of a good revision (plan, preflight, current
  health, create, verify, shift, done; no watch window), wall clock.

Each is the median of 5. Run: ``.venv/bin/python benchmarks/rollback.py``.
"""

from __future__ import annotations

import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from rollsafe.deploy import DeployOptions, DeployResult, EventLog, run_deploy  # noqa: E402
from rollsafe.emulator.server import start_emulator, stop_emulator  # noqa: E402
from rollsafe.manifest import ResolvedEnvironment, load_manifest  # noqa: E402
from rollsafe.platforms.cloudrun import CloudRunPlatform  # noqa: E402
from rollsafe.state.journal import DeployJournal  # noqa: E402
from rollsafe.stores.secretmanager import SecretManagerStore  # noqa: E402

RUNS = 5
TARGET = 1.0  # seconds from the first failing probe to the traffic restored
SERVICE = "backend"
ENV = "staging"


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


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="rollsafe-bench-") as tmp:
        root = Path(tmp)
        env = load_manifest(_workspace(root)).resolve(ENV)
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
                rollbacks: list[float] = []
                for _ in range(RUNS):
                    failed, _ = _run(
                        env, platform, store, journal, 3, extra_env={"BACKEND_FAIL_HEALTH": "1"}
                    )
                    assert failed.rollback is not None
                    assert failed.rollback.seconds is not None
                    rollbacks.append(failed.rollback.seconds)
        finally:
            stop_emulator(state_dir)

    health = env.services[SERVICE].health
    print(
        f"example service on the emulator; health: {health.consecutive} passing probes "
        f"{health.interval:g} s apart at verify and after the shift; no watch window"
    )
    print(f"healthy deploy, whole run_deploy:         {_median(healthy)}")
    print(f"rollback, first failing probe -> 100% back: {_median(rollbacks)}")
    verdict = statistics.median(rollbacks) < TARGET
    print(f"target: rollback under {TARGET:g} s: {'met' if verdict else 'MISSED'}")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
