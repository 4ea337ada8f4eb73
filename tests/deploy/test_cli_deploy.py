"""The deploy commands through the real CLI: deploy, status, history, rollback, exit codes."""

from __future__ import annotations

import json

import pytest

from tests.deploy.conftest import ENV, SERVICE, Site

DEPLOY = ("deploy", "--env", ENV, "--service", SERVICE, "--watch", "0")


def _flat(text: str) -> str:
    """The output with Rich's line wrapping undone."""
    return " ".join(text.split())


def test_deploy_exit_codes_status_and_history(site: Site) -> None:
    site.seed()
    ok = site.cli(*DEPLOY)
    assert ok.exit_code == 0, ok.output
    assert "succeeded:" in ok.stdout
    (serving,) = site.split()

    status = site.cli("status", "--env", ENV, "--format", "json")
    assert status.exit_code == 0, status.output
    (svc,) = json.loads(status.stdout)["services"]
    assert svc["service"] == SERVICE
    assert svc["url"] == site.service().url
    assert [(t["revision"], t["percent"]) for t in svc["serving"]] == [(serving, 100)]
    assert svc["health"]["ok"] is True
    assert svc["health"]["status"] == 200
    text = site.cli("status", "--env", ENV)
    assert text.exit_code == 0, text.output
    assert "healthy" in text.stdout
    assert serving in text.stdout

    skip = site.cli(*DEPLOY, "--skip-checks")
    assert skip.exit_code == 1
    assert "--skip-checks is refused in strict environment" in _flat(skip.stderr)

    site.weaken()
    refused = site.cli(*DEPLOY, manifest=site.incident_manifest)
    assert refused.exit_code == 1, refused.output
    assert "refused:" in refused.stdout
    assert "SERVICE_SECRET" in refused.stdout  # the findings, by key

    reason = "INC-42 force it"
    forced = site.cli(*DEPLOY, "--force", "--reason", reason, manifest=site.incident_manifest)
    assert forced.exit_code == 3, forced.output
    # read from the revision's logs: Cloud Run's exit line and the guard's CRITICAL line
    assert "Container called exit(3)." in _flat(forced.stdout)
    assert "start-up guard (CRITICAL)" in _flat(forced.stdout)
    assert site.split() == {serving: 100}

    history = site.cli("history", "--env", ENV, "--format", "json")
    assert history.exit_code == 0, history.output
    records = json.loads(history.stdout)
    assert [(r["outcome"], r["exit_code"]) for r in records] == [
        ("failed", 3),
        ("refused", 1),
        ("succeeded", 0),
    ]
    assert [(r["forced"], r["reason"]) for r in records] == [
        (True, reason),
        (False, None),
        (False, None),
    ]
    table = site.cli("history", "--env", ENV)
    assert table.exit_code == 0, table.output
    assert "forced" in table.stdout


def test_dry_run_prints_the_plan_and_the_diff_and_changes_nothing(site: Site) -> None:
    base = site.baseline()
    site.seed()
    before = ([r.name for r in site.revisions()], site.split(), site.journal.history(ENV))
    result = site.cli(*DEPLOY, "--dry-run")
    assert result.exit_code == 0, result.output
    out = _flat(result.stdout)
    assert "revision: backend-00002-" in out
    assert "secret SERVICE_SECRET = service-secret-staging:2" in out
    assert "env ROLLSAFE_CONTRACT = (start-up contract)" in out
    assert f"difference from the serving revision {base}:" in out
    for name in ("JWT_SECRET_KEY", "SECRET_KEY", "SERVICE_SECRET"):
        secret = f"{name.lower().replace('_', '-')}-staging"
        assert f"~ secret {name}: {secret}:1 -> {secret}:2" in out
    assert "dry-run: nothing was changed" in out
    after = ([r.name for r in site.revisions()], site.split(), site.journal.history(ENV))
    assert after == before
    assert site.split() == {base: 100}


def test_rollback_command_to_a_named_revision(site: Site) -> None:
    first = site.baseline()
    site.seed()
    assert site.deploy().exit_code == 0
    result = site.cli("rollback", "--env", ENV, "--service", SERVICE, "--to", first)
    assert result.exit_code == 0, result.output
    assert "rolled-back:" in result.stdout
    assert site.split() == {first: 100}
    record = site.journal.history(ENV, SERVICE)[0]
    assert (record.checks, record.revision, record.outcome) == ("rollback", first, "rolled-back")


def test_rollback_of_a_service_never_deployed_is_refused(site: Site) -> None:
    result = site.cli("rollback", "--env", ENV, "--service", SERVICE)
    assert result.exit_code == 1
    assert "is not deployed" in result.stderr
    assert "Traceback" not in result.output
    assert site.journal.history(ENV, SERVICE) == []


@pytest.mark.parametrize("command", ["history", "status"], ids=["history", "status"])
def test_text_or_json_only(site: Site, command: str) -> None:
    result = site.cli(command, "--env", ENV, "--format", "sarif")
    assert result.exit_code == 2
    assert "text, json" in result.output
