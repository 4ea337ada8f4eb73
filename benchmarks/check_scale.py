"""How long `rollsafe check` takes on a large manifest, and how much of it is the rules.

200 services x 25 secrets = 5,000 references to 1,000 distinct secrets, in-memory store.
Run: .venv/bin/python benchmarks/check_scale.py
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rollsafe.check import run_check
from rollsafe.manifest import load_manifest
from rollsafe.rules import RuleContext, run_rules
from rollsafe.stores import InMemorySecretStore

SERVICES = 200
SECRETS_PER_SERVICE = 25
DISTINCT = 1000
TARGET_SECONDS = 2.0


def build(tmp: Path) -> tuple[Path, InMemorySecretStore]:
    rng = random.Random(7)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    store = InMemorySecretStore()
    for i in range(DISTINCT):
        store.add_version(
            f"secret-{i:04d}-{{env}}".replace("{env}", "prod"),
            "".join(rng.choice(alphabet) for _ in range(43)),
        )
    lines = ["version: 1", "project: bench", "environments:", "  prod: {strict: true}", "services:"]
    for s in range(SERVICES):
        lines += [f"  svc-{s:03d}:", "    env:", "      ENVIRONMENT: '{env}'", "    secrets:"]
        for k in range(SECRETS_PER_SERVICE):
            secret = (s * SECRETS_PER_SERVICE + k) % DISTINCT
            lines.append(
                f"      KEY_{k:02d}: {{secret: 'secret-{secret:04d}-{{env}}', rules: [machine_secret]}}"
            )
    path = tmp / "rollsafe.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path, store


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path, store = build(Path(tmp))
        whole: list[float] = []
        for _ in range(5):
            start = time.perf_counter()
            env = load_manifest(path).resolve("prod")
            report = run_check(env, store)
            whole.append(time.perf_counter() - start)
        assert report.ok, report.findings[:3]
        # the rules alone, on every reference (no per-version cache), as the baseline work
        refs = [
            (sec.rules, store.access(sec.secret).reveal())
            for svc in env.services.values()
            for sec in svc.secrets.values()
        ]
        ctx = RuleContext(env="prod", strict=True, is_secret=True)
        start = time.perf_counter()
        rules_run = 0
        for rules, value in refs:
            run_rules(value, rules, ctx)
            rules_run += len(rules)
        rules_alone = time.perf_counter() - start
    median = statistics.median(whole)
    print(
        f"manifest: {SERVICES} services x {SECRETS_PER_SERVICE} secrets = {len(refs)} references, {DISTINCT} distinct secrets"
    )
    print(
        f"store calls per check: list_secrets={report.stats.secrets_listed} list_versions={report.stats.versions_listed} access={report.stats.values_accessed}"
    )
    print(
        f"whole check (load + resolve + store + rules), median of {len(whole)}: {median:.3f} s (target < {TARGET_SECONDS} s)"
    )
    print(
        f"rules alone on all {len(refs)} references (no cache): {rules_alone:.3f} s, {rules_run / rules_alone:,.0f} rules/s"
    )
    print(f"ratio whole check / rules alone: {median / rules_alone:.2f}")
    print("PASS" if median < TARGET_SECONDS else "MISS", "target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
