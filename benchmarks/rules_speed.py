"""How long machine_secret takes on 20 secrets, against zxcvbn.zxcvbn() on the same 20.

The start-up guard inside a service checks every secret before the app serves; its budget
is 5 ms for 20 secrets. Run: ``python benchmarks/rules_speed.py``.
"""

from __future__ import annotations

import base64
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from rollsafe.rules import RuleContext, RuleRef, run_rules

SECRETS = 20
RUNS = 200
BUDGET_MS = 5.0


def _values() -> list[str]:
    rng = random.Random(43)
    # token_urlsafe(32): 43 characters
    return [
        base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode() for _ in range(SECRETS)
    ]


def _median_ms(batch: Callable[[], object], runs: int) -> float:
    batch()  # warm-up: loads the word list, fills caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        batch()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    values = _values()
    rules = [RuleRef("machine_secret")]
    ctx = RuleContext(is_secret=True)

    start = time.perf_counter()
    run_rules(values[0], rules, ctx)
    first_ms = (time.perf_counter() - start) * 1000

    def ours() -> None:
        for value in values:
            failures = run_rules(value, rules, ctx)
            assert not failures

    ours_ms = _median_ms(ours, RUNS)

    from zxcvbn import zxcvbn  # type: ignore[import-untyped]

    def theirs() -> None:
        for value in values:
            zxcvbn(value)

    theirs_ms = _median_ms(theirs, max(20, RUNS // 10))

    print(f"first call (loads the word list): {first_ms:8.2f} ms")
    print(
        f"machine_secret, {SECRETS} secrets:       {ours_ms:8.3f} ms "
        f"({ours_ms * 1000 / SECRETS:.0f} us each; budget {BUDGET_MS} ms)"
    )
    print(
        f"zxcvbn.zxcvbn,  {SECRETS} secrets:       {theirs_ms:8.3f} ms "
        f"({theirs_ms * 1000 / SECRETS:.0f} us each)"
    )
    print(f"ratio zxcvbn / machine_secret:        {theirs_ms / ours_ms:8.1f}x")


if __name__ == "__main__":
    main()
