"""``health.startup``: the startup probe deploy sets on the health path, in whole seconds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rollsafe.deploy.plan import startup_probe
from rollsafe.errors import ManifestError
from rollsafe.manifest import ResolvedStartup, load_manifest
from rollsafe.manifest.schema import manifest_json_schema
from rollsafe.platforms import StartupProbe

HEAD = "version: 1\nproject: p\nenvironments: {dev: {}, staging: {}}\nservices:\n  api:\n"


def _load(write: Callable[[str, str], Path], health: str) -> Path:
    return write("rollsafe.yaml", HEAD + f"    health:\n{health}")


def test_default_startup_probe_is_a_minute_of_one_second_attempts(
    write: Callable[[str, str], Path],
) -> None:
    svc = load_manifest(_load(write, "      path: /ready\n")).resolve("dev").services["api"]
    assert svc.health.startup == ResolvedStartup(
        initial_delay=0, period=1, timeout=1, failure_threshold=60
    )
    assert startup_probe(svc.health) == StartupProbe(
        path="/ready", initial_delay=0, period=1, timeout=1, failure_threshold=60
    )


def test_durations_and_overrides(write: Callable[[str, str], Path]) -> None:
    text = (
        HEAD + "    health:\n      startup: {initial_delay: 2s, period: 5, timeout: 3s,"
        " failure_threshold: 4}\n"
        + "    overrides:\n      staging:\n        health:\n"
        + "          path: /healthz\n          startup: {period: 1m, timeout: 10s}\n"
    )
    manifest = load_manifest(write("rollsafe.yaml", text))
    dev = manifest.resolve("dev").services["api"].health
    assert dev.startup == ResolvedStartup(initial_delay=2, period=5, timeout=3, failure_threshold=4)
    staging = manifest.resolve("staging").services["api"].health
    assert staging.path == "/healthz"
    assert staging.startup == ResolvedStartup(
        initial_delay=0, period=60, timeout=10, failure_threshold=60
    )


BAD = {
    "fraction": ("period: 1.5s", "whole seconds", "period"),
    "milliseconds": ("timeout: 500ms", "whole seconds", "timeout"),
    "zero-period": ("period: 0", "greater than or equal to 1", "period"),
    "period-above-240": ("period: 241", "less than or equal to 240", "period"),
    "delay-above-240": ("initial_delay: 5m", "less than or equal to 240", "initial_delay"),
    "no-failures": ("failure_threshold: 0", "greater than or equal to 1", "failure_threshold"),
    "timeout-above-period": ("{timeout: 5s, period: 2s}", "must not exceed period", None),
    "not-a-duration": ("timeout: soon", "a duration is a number of seconds", "timeout"),
}


@pytest.mark.parametrize(("entry", "words", "key"), BAD.values(), ids=BAD.keys())
def test_bad_startup_names_file_line_and_key(
    write: Callable[[str, str], Path], entry: str, words: str, key: str | None
) -> None:
    if entry.startswith("{"):
        health = f"      path: /health\n      startup: {entry}\n"
    else:
        health = f"      path: /health\n      startup:\n        {entry}\n"
    path = _load(write, health)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    err = info.value
    assert err.exit_code == 2
    assert err.file == str(path)
    assert words in err.message
    expected = "services.api.health.startup" + (f".{key}" if key else "")
    assert err.key_path == expected
    lines = path.read_text().splitlines()
    assert err.line is not None
    assert (key or "startup") in lines[err.line - 1]


def test_unknown_startup_key_suggests_the_close_one(write: Callable[[str, str], Path]) -> None:
    path = _load(write, "      startup: {peroid: 2}\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert info.value.key_path == "services.api.health.startup.peroid"
    assert info.value.hint is not None
    assert "did you mean 'period'" in info.value.hint


def test_json_schema_has_health_startup() -> None:
    defs = manifest_json_schema()["$defs"]
    startup = defs["StartupCheck"]
    assert set(startup["properties"]) == {
        "initial_delay",
        "period",
        "timeout",
        "failure_threshold",
    }
    assert startup["additionalProperties"] is False
    assert startup["properties"]["failure_threshold"]["default"] == 60
    assert defs["HealthCheck"]["properties"]["startup"]["$ref"] == "#/$defs/StartupCheck"
