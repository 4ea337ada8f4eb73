"""Every kind of drift, made on the emulator with Google's clients, is found and named."""

from __future__ import annotations

import json

import pytest

from rollsafe.drift import DriftReport, render_json, run_drift
from rollsafe.manifest import load_manifest
from rollsafe.platforms.cloudrun import CloudRunPlatform
from rollsafe.stores.secretmanager import SecretManagerStore
from tests.drift.scenario import EXPECTED, Drifted
from tests.drift.world import REGION


@pytest.fixture(scope="module")
def report(drifted: Drifted, emulator: str) -> DriftReport:
    env = load_manifest(drifted.manifest).resolve("dev")
    project = drifted.world.project
    with (
        SecretManagerStore(project, endpoint=emulator) as store,
        CloudRunPlatform(project, REGION, endpoint=emulator) as platform,
    ):
        return run_drift(env, store, platform)


def _found(report: DriftReport, kind: str, service: str, key: str) -> list[dict[str, object]]:
    return [
        f.to_dict()
        for f in report.findings
        if (f.kind.value, f.service, f.key) == (kind, service, key)
    ]


@pytest.mark.parametrize(
    ("kind", "service", "key"),
    [pytest.param(*row[:3], id=row[3]) for row in EXPECTED],
)
def test_each_kind_is_found_and_named(
    report: DriftReport, kind: str, service: str, key: str
) -> None:
    found = _found(report, kind, service, key)
    assert len(found) == 1, [f.to_dict() for f in report.findings if f.service == service]
    finding = found[0]
    assert finding["kind"] == kind
    for side in ("manifest", "store", "deployed"):
        assert side in finding
    assert finding["message"]
    assert finding["source"]


def test_nothing_else_is_found(report: DriftReport) -> None:
    # every finding is one the scenario made: no false positives, clean has none
    made = {(kind, service, key) for kind, service, key, _ in EXPECTED}
    extra = [f.to_dict() for f in report.findings if (f.kind.value, f.service, f.key) not in made]
    assert extra == []
    assert not [f for f in report.findings if f.service == "clean"]
    assert report.drift
    assert report.exit_code == 1


def test_the_incident_jwt_is_unmapped_with_the_fix(report: DriftReport, drifted: Drifted) -> None:
    (finding,) = report.of_kind("unmapped_secret")
    assert (finding.service, finding.key) == ("incident", "JWT_SECRET_KEY")
    assert "JWT signing secret" in finding.message
    assert finding.manifest == {
        "type": "secret",
        "secret": "jwt-secret-key-dev",
        "version": "latest",
        "line": finding.line,
    }
    assert finding.store is not None
    assert (finding.store["exists"], finding.store["latest_enabled"]) == (True, 1)
    assert finding.deployed is not None
    assert finding.deployed["type"] == "absent"
    assert finding.fix is not None
    assert finding.fix.rollsafe.startswith("rollsafe deploy")
    assert finding.fix.rollsafe.endswith("--env dev --service incident")
    assert finding.fix.gcloud == (
        "gcloud run services update incident --update-secrets "
        f"JWT_SECRET_KEY=jwt-secret-key-dev:1 --region {REGION} --project {drifted.world.project}"
    )


def test_sides_carry_names_and_versions(report: DriftReport) -> None:
    (pinned,) = _found(report, "wrong_version", "mapping", "PINNED")
    assert pinned["manifest"]["version"] == "2"  # type: ignore[index]
    assert pinned["deployed"]["version"] == "1"  # type: ignore[index]
    assert pinned["store"]["latest"] == 2  # type: ignore[index]
    (rotated,) = _found(report, "wrong_version", "mapping", "ROTATED")
    assert rotated["severity"] == "warning"
    assert "a rotation not rolled out" in str(rotated["message"])
    (disabled,) = _found(report, "missing_in_store", "mapping", "DISABLED")
    assert disabled["store"]["state"] == "DISABLED"  # type: ignore[index]
    assert disabled["source"] == "sm://disabled-dev/versions/1"
    assert "enable" in str(disabled["fix"]["gcloud"])  # type: ignore[index]
    (deleted,) = _found(report, "missing_in_store", "mapping", "DELETED")
    assert deleted["store"] == {"secret": "deleted-dev", "exists": False}
    (stale,) = _found(report, "stale_latest", "mapping", "FLOATING")
    assert "--update-secrets FLOATING=floating-dev:2" in str(stale["fix"]["gcloud"])  # type: ignore[index]
    (plain,) = _found(report, "secret_as_plain_value", "envs", "API_KEY")
    assert plain["deployed"]["type"] == "env"  # type: ignore[index]
    assert "--remove-env-vars API_KEY --update-secrets API_KEY=api-key-dev:1" in str(
        plain["fix"]["gcloud"]  # type: ignore[index]
    )


def test_orphans_are_info_and_follow_the_naming_pattern(report: DriftReport) -> None:
    orphans = report.of_kind("orphan_secret")
    assert [f.key for f in orphans] == ["jwt-secret-dev"]  # not unrelated-config
    assert orphans[0].severity == "info"
    assert not orphans[0].is_drift


def test_weak_secret_severity_follows_strictness(report: DriftReport) -> None:
    (weak,) = report.of_kind("weak_secret")
    assert weak.severity == "warning"  # dev is not strict
    assert weak.source == "sm://weak-password-dev/versions/1"


def test_calls_are_batched(report: DriftReport) -> None:
    calls = report.calls.to_dict()
    assert calls["run"] == {"get_service": 5, "list_revisions": 5, "get_iam_policy": 5}
    assert calls["secretmanager"]["list_secrets"] == 1
    # one listing per referenced secret that exists (deleted-dev does not)
    referenced = {
        "api-key-dev", "pinned-dev", "service-secret-dev", "jwt-secret-key-dev", "other-dev",
        "rotated-dev", "floating-dev", "disabled-dev", "destroyed-dev", "weak-password-dev",
    }  # fmt: skip
    assert calls["secretmanager"]["list_versions"] == len(referenced)
    # accesses: each distinct enabled pinned version of a declared key, once
    # api-key-dev:1 (clean), pinned-dev:2, service-secret-dev:1, pinned-dev:1,
    # rotated-dev:1, floating-dev:2, weak-password-dev:1
    assert calls["secretmanager"]["access"] == 7


def test_json_parses_and_names_no_values(report: DriftReport, drifted: Drifted) -> None:
    text = render_json(report)
    data = json.loads(text)
    assert data["drift"] is True
    assert {f["kind"] for f in data["findings"]} == {row[0] for row in EXPECTED}
    for canary in drifted.canaries:
        assert canary not in text
