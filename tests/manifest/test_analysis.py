"""``analysis:`` (canary analysis) and ``health.cold_start`` in the manifest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rollsafe.errors import ManifestError
from rollsafe.manifest import ResolvedAnalysis, load_manifest
from rollsafe.manifest.schema import manifest_json_schema

HEAD = "version: 1\nproject: p\nenvironments: {dev: {}, prod: {}}\nservices:\n  api:\n"


def test_defaults(write: Callable[[str, str], Path]) -> None:
    svc = load_manifest(write("rollsafe.yaml", HEAD + "    public: false\n")).resolve("dev")
    api = svc.services["api"]
    assert api.analysis == ResolvedAnalysis(
        max_error_rate=0.01,
        max_p95_latency=None,
        min_requests=20,
        step_seconds=10.0,
        require_traffic=False,
    )
    assert api.health.cold_start == 10.0


def test_values_durations_and_environment_overrides(write: Callable[[str, str], Path]) -> None:
    text = (
        HEAD
        + "    health: {cold_start: 30s}\n"
        + "    analysis: {max_error_rate: 0.05, max_p95_latency: 800ms, step_seconds: 1m}\n"
        + "    overrides:\n      prod:\n"
        + "        analysis: {min_requests: 50, require_traffic: true}\n"
    )
    manifest = load_manifest(write("rollsafe.yaml", text))
    dev = manifest.resolve("dev").services["api"]
    assert dev.analysis == ResolvedAnalysis(0.05, 0.8, 20, 60.0, False)
    assert dev.health.cold_start == 30.0
    # an override replaces the block, as health: does
    prod = manifest.resolve("prod").services["api"]
    assert prod.analysis == ResolvedAnalysis(0.01, None, 50, 10.0, True)


BAD = {
    "rate-above-one": (
        "analysis: {max_error_rate: 1.5}",
        "less than or equal to 1",
        "max_error_rate",
    ),
    "zero-min-requests": (
        "analysis: {min_requests: 0}",
        "greater than or equal to 1",
        "min_requests",
    ),
    "zero-step": ("analysis: {step_seconds: 0s}", "greater than 0", "step_seconds"),
    "bad-duration": ("analysis: {max_p95_latency: fast}", "a duration", "max_p95_latency"),
    "unknown-key": ("analysis: {max_errors: 3}", "unknown key", "max_errors"),
    "bad-cold-start": ("health: {cold_start: -1s}", "a duration", "cold_start"),
}


@pytest.mark.parametrize(("entry", "words", "key"), BAD.values(), ids=BAD.keys())
def test_bad_values_name_file_line_and_key(
    write: Callable[[str, str], Path], entry: str, words: str, key: str
) -> None:
    path = write(
        "rollsafe.yaml",
        HEAD + "    public: false\n    overrides:\n      prod:\n" + f"        {entry}\n",
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    err = info.value
    assert err.exit_code == 2
    assert err.file == str(path)
    assert words in err.message
    block = entry.split(":", 1)[0]
    assert err.key_path == f"services.api.overrides.prod.{block}.{key}"
    assert err.line == 9
    assert key in path.read_text().splitlines()[err.line - 1]


def test_json_schema_has_analysis_and_cold_start() -> None:
    defs = manifest_json_schema()["$defs"]
    analysis = defs["Analysis"]
    assert set(analysis["properties"]) == {
        "max_error_rate",
        "max_p95_latency",
        "min_requests",
        "step_seconds",
        "require_traffic",
    }
    assert analysis["additionalProperties"] is False
    assert analysis["properties"]["min_requests"]["default"] == 20
    assert defs["Service"]["properties"]["analysis"]["$ref"] == "#/$defs/Analysis"
    assert "cold_start" in defs["HealthCheck"]["properties"]
