from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rollsafe.check import run_check
from rollsafe.findings import Severity
from rollsafe.manifest import load_manifest
from rollsafe.stores import InMemorySecretStore, VersionState
from tests.conftest import CANARY_JWT, CANARY_STRONG, EXAMPLES

GOOD = {
    "service-secret-staging": CANARY_STRONG,
    "jwt-secret-key-staging": CANARY_JWT,
    "secret-key-staging": CANARY_STRONG + "k",
}


def _check(manifest: Path, env: str, store: InMemorySecretStore):  # type: ignore[no-untyped-def]
    return run_check(load_manifest(manifest).resolve(env), store)


def test_good_store_passes(basic_manifest: Path) -> None:
    report = _check(basic_manifest, "staging", InMemorySecretStore(dict(GOOD)))
    assert report.ok, report.findings
    assert report.findings == []
    assert report.pinned[("secret-key-staging", "latest")] == 1


@pytest.mark.parametrize(
    ("mutate", "key", "rule", "message"),
    [
        (lambda s: s._versions.pop("secret-key-staging"), "SECRET_KEY", "required", "not found"),
        (
            lambda s: s.set_state("secret-key-staging", 1, VersionState.DISABLED),
            "SECRET_KEY",
            "version",
            "disabled",
        ),
        (
            lambda s: s.set_state("secret-key-staging", 1, VersionState.DESTROYED),
            "SECRET_KEY",
            "version",
            "destroyed",
        ),
        (
            lambda s: s.add_version("jwt-secret-key-staging", "short-key"),
            "JWT_SECRET_KEY",
            "jwt_hmac",
            "bytes",
        ),
    ],
    ids=["missing-secret", "disabled-version", "destroyed-version", "weak-new-latest"],
)
def test_store_problems_are_findings(
    basic_manifest: Path,
    mutate: Callable[[InMemorySecretStore], object],
    key: str,
    rule: str,
    message: str,
) -> None:
    store = InMemorySecretStore(dict(GOOD))
    mutate(store)
    report = _check(basic_manifest, "staging", store)
    assert not report.ok
    hits = [f for f in report.findings if f.key == key and f.rule == rule]
    assert hits, report.findings
    assert message in hits[0].message
    assert hits[0].severity is Severity.ERROR


def test_unknown_pinned_version_is_a_finding(write: Callable[[str, str], Path]) -> None:
    path = write(
        "rollsafe.yaml",
        """
        version: 1
        project: p
        environments: {dev: {}}
        services:
          api:
            secrets:
              K: {secret: k, version: 3}
        """,
    )
    report = run_check(
        load_manifest(path).resolve("dev"), InMemorySecretStore({"k": CANARY_STRONG})
    )
    (finding,) = report.findings
    assert (finding.rule, finding.severity) == ("version", Severity.ERROR)
    assert "no version 3" in finding.message


def test_non_strict_downgrades_rule_failures_but_not_missing(basic_manifest: Path) -> None:
    store = InMemorySecretStore(
        {"service-secret-dev": "changeme", "jwt-secret-key-dev": CANARY_JWT}
    )
    report = _check(basic_manifest, "dev", store)
    by_key = {f.key: f for f in report.findings}
    assert by_key["SERVICE_SECRET"].severity is Severity.WARNING
    assert by_key["SECRET_KEY"].severity is Severity.ERROR  # missing: blocks everywhere
    assert by_key["SECRET_KEY"].rule == "required"


def test_each_distinct_version_is_accessed_once(write: Callable[[str, str], Path]) -> None:
    services = "".join(
        f"  s{i}:\n    secrets:\n      A: {{secret: shared, rules: [machine_secret]}}\n"
        for i in range(5)
    )
    path = write(
        "rollsafe.yaml",
        f"version: 1\nproject: p\nenvironments: {{dev: {{}}}}\nservices:\n{services}",
    )
    report = run_check(
        load_manifest(path).resolve("dev"), InMemorySecretStore({"shared": CANARY_STRONG})
    )
    assert report.ok
    assert report.stats.secrets_listed == 1
    assert report.stats.versions_listed == 1
    assert report.stats.values_accessed == 1
    assert report.stats.references == 5


def test_incident_example_reports_every_cause_in_one_run() -> None:
    from rollsafe.stores import DotenvSecretStore

    manifest = load_manifest(EXAMPLES / "incident" / "rollsafe.yaml")
    store = DotenvSecretStore(EXAMPLES / "incident" / "staging.env")
    report = run_check(manifest.resolve("staging"), store)
    assert not report.ok
    found = {(f.key, f.rule) for f in report.findings}
    assert ("SERVICE_SECRET", "machine_secret") in found
    assert ("SERVICE_SECRET", "char_classes") in found
    assert ("OAUTH_REDIRECT_URI", "same_origin") in found
    assert ("JWT_SECRET_KEY", "jwt_hmac") in found
    assert all(f.severity is Severity.ERROR for f in report.findings)


def test_incident_is_fixed_by_the_fixed_store() -> None:
    from rollsafe.stores import DotenvSecretStore

    manifest = load_manifest(EXAMPLES / "incident" / "rollsafe.yaml")
    store = DotenvSecretStore(EXAMPLES / "incident" / "fixed-staging.env")
    report = run_check(manifest.resolve("staging"), store)
    keys = {f.key for f in report.findings}
    assert keys == {"OAUTH_REDIRECT_URI"}  # the redirect is a manifest fix, not a store fix


def test_differs_from_compares_digests(write: Callable[[str, str], Path]) -> None:
    write("dev.env", f"k-dev={CANARY_STRONG}\n")
    write("prod.env", f"k-prod={CANARY_STRONG}\n")
    path = write(
        "rollsafe.yaml",
        """
        version: 1
        project: p
        environments:
          dev: {store: "dotenv:dev.env"}
          prod: {strict: true, store: "dotenv:prod.env"}
        services:
          api:
            secrets:
              K: {secret: "k-{env}", rules: [{differs_from: dev}]}
        """,
    )
    from rollsafe.check import OtherEnvironmentDigests
    from rollsafe.stores import open_store

    manifest = load_manifest(path)
    prod = manifest.resolve("prod")
    report = run_check(
        prod,
        open_store("dotenv:prod.env", base_dir=path.parent),
        other_env_hashes=OtherEnvironmentDigests(manifest),
    )
    (finding,) = report.findings
    assert finding.rule == "differs_from"
    assert finding.severity is Severity.ERROR
