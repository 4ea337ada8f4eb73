"""The start-up guard's cost, beside pydantic-settings validating the same 50 fields.

A service with 50 variables, 20 of them secrets with strength rules (machine_secret,
jwt_hmac, char_classes), the other 30 plain (url, same_origin, one_of, regex, min_length).
The guard's run is everything a service pays at boot with ``ROLLSAFE_CONTRACT`` set: read
the contract JSON, build the guard, run every phase. Median of 200 runs after a warm-up,
and the first run (which loads the rules' word list) on its own, in fresh processes. Then the import time of
``rollsafe.startup`` in fresh interpreters, and what that import pulls in.

Run: ``python benchmarks/startup.py``. Targets: < 5 ms per run, < 150 ms import.
"""

from __future__ import annotations

import base64
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

RUNS = 200
IMPORT_RUNS = 15
FIRST_RUNS = 9
BUDGET_MS = 5.0
IMPORT_BUDGET_MS = 150.0
FORBIDDEN = ("google", "typer", "rich", "rollsafe.cli", "rollsafe.emulator")


def _token(rng: random.Random, nbytes: int) -> str:
    return base64.urlsafe_b64encode(rng.randbytes(nbytes)).rstrip(b"=").decode()


def build() -> tuple[dict[str, Any], dict[str, str]]:
    """The contract (as JSON data) and the process environment of the benchmark service."""
    rng = random.Random(7)
    keys: dict[str, Any] = {}
    env: dict[str, str] = {}
    for i in range(20):
        name = f"SECRET_{i:02d}"
        if i < 12:
            rules: list[Any] = ["machine_secret", "not_placeholder"]
        elif i < 16:
            rules = [{"jwt_hmac": "HS256"}, "not_placeholder"]
        else:
            rules = ["machine_secret", {"char_classes": ["lower", "upper", "digit"]}]
        keys[name] = {"kind": "secret", "secret": name.lower().replace("_", "-"), "rules": rules}
        env[name] = _token(rng, 32) + "aA1"  # ~46 characters, all three classes
    for i in range(30):
        name = f"VAR_{i:02d}"
        kind = i % 6
        if kind == 0:
            rules, value = ["url"], f"https://api{i}.example.com/v1"
        elif kind == 1:
            rules, value = ["url", {"same_origin": "VAR_00"}], f"https://api0.example.com/cb{i}"
        elif kind == 2:
            rules, value = [{"one_of": ["debug", "info", "warning"]}], "info"
        elif kind == 3:
            rules, value = [{"regex": "[a-z]+-[0-9]+"}], f"backend-{i}"
        elif kind == 4:
            rules, value = [{"min_length": 8}], f"value-number-{i}"
        else:
            rules, value = [], f"plain-{i}"
        keys[name] = {"kind": "env", "rules": rules}
        env[name] = value
    contract = {"version": 1, "env": "staging", "strict": True, "service": "bench", "keys": keys}
    return contract, env


def median_ms(func: Callable[[], object], runs: int = RUNS) -> float:
    func()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def settings_class(contract: dict[str, Any]) -> Any:
    """The same 50 fields as pydantic-settings would declare them."""
    from pydantic import AnyHttpUrl, Field, SecretStr, create_model
    from pydantic_settings import BaseSettings

    fields: dict[str, Any] = {}
    for name, key in contract["keys"].items():
        names = [r if isinstance(r, str) else next(iter(r)) for r in key["rules"]]
        if key["kind"] == "secret":
            fields[name] = (SecretStr, Field(min_length=32))
        elif "url" in names:
            fields[name] = (AnyHttpUrl, ...)
        elif "one_of" in names:
            fields[name] = (Literal["debug", "info", "warning"], ...)
        elif "regex" in names:
            fields[name] = (Annotated[str, Field(pattern=r"^[a-z]+-[0-9]+$")], ...)
        elif "min_length" in names:
            fields[name] = (Annotated[str, Field(min_length=8)], ...)
        else:
            fields[name] = (str, ...)
    return create_model("BenchSettings", __base__=BaseSettings, **fields)


def import_cost() -> tuple[float, list[str]]:
    probe = (
        "import sys, time; t = time.perf_counter(); import rollsafe.startup; "
        "d = time.perf_counter() - t; "
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN[:3]!r} "
        f"or m.startswith({FORBIDDEN[3:]!r})]; print(d * 1000, ','.join(bad))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    times, bad = [], set()
    for _ in range(IMPORT_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
        ).stdout.split(" ", 1)
        times.append(float(out[0]))
        bad |= {m for m in out[1].strip().split(",") if m}
    return statistics.median(times), sorted(bad)


def guard_run() -> None:
    from rollsafe.startup import StartupGuard

    guard = StartupGuard.from_env(exit_process=False)
    guard._log = lambda line: None
    report = guard.run_checks()
    assert report.ok, report.summary()


def first_run() -> float:
    """One process's first guard run (loads the word list), in ms; the import is apart."""
    import rollsafe.startup  # noqa: F401 - measured on its own below

    start = time.perf_counter()
    guard_run()
    return (time.perf_counter() - start) * 1000


def first_run_cost() -> tuple[float, float]:
    """Median and minimum of the first run over fresh processes (the machine is noisy)."""
    times = []
    for _ in range(FIRST_RUNS):
        out = subprocess.run(
            [sys.executable, __file__, "--first-run"], capture_output=True, text=True, check=True
        ).stdout
        times.append(float(out))
    return statistics.median(times), min(times)


def main() -> None:
    contract, values = build()
    os.environ.update(values)
    os.environ["ROLLSAFE_CONTRACT"] = json.dumps(contract)
    os.environ.pop("ROLLSAFE_MANIFEST", None)
    if sys.argv[1:] == ["--first-run"]:
        print(first_run())
        return

    first_ms, first_min = first_run_cost()
    guard_ms = median_ms(guard_run)

    settings = settings_class(contract)
    settings()  # builds the validators once, as an app does at import
    settings_ms = median_ms(settings)
    import_ms, pulled = import_cost()

    n_secrets = sum(1 for k in contract["keys"].values() if k["kind"] == "secret")
    print(f"service: {len(contract['keys'])} variables, {n_secrets} secrets with strength rules")
    print(
        f"guard, first run (loads the word list): {first_ms:8.2f} ms  "
        f"(median of {FIRST_RUNS} fresh processes; fastest {first_min:.2f} ms)"
    )
    print(
        f"guard, median of {RUNS}:                  {guard_ms:8.3f} ms  "
        f"(budget {BUDGET_MS} ms: {'ok' if guard_ms < BUDGET_MS else 'OVER'})"
    )
    print(f"pydantic-settings, median of {RUNS}:      {settings_ms:8.3f} ms  (types only)")
    print(f"ratio guard / pydantic-settings:        {guard_ms / settings_ms:8.1f}x")
    print(
        f"import rollsafe.startup, median of {IMPORT_RUNS}: {import_ms:6.1f} ms  "
        f"(budget {IMPORT_BUDGET_MS:.0f} ms: {'ok' if import_ms < IMPORT_BUDGET_MS else 'OVER'})"
    )
    print(f"  pulls in google-cloud / typer / rich / CLI / emulator: {', '.join(pulled) or 'none'}")


if __name__ == "__main__":
    main()
