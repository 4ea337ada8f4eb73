"""Rollbacks: they restore the old secret values, go back (never forward), refuse bad targets.

The example backend reports a SHA-256 prefix of its SERVICE_SECRET (never the value); read
through the service URL, it tells which version the serving revision runs with: each
revision pins its secret versions.
"""

from __future__ import annotations

import pytest

from rollsafe.deploy import manual_rollback
from rollsafe.errors import RollsafeError, UsageError
from tests.deploy.conftest import ENV, SERVICE, Site, fingerprint

SECRET = "service-secret-staging"


def _serving_fingerprint(site: Site) -> str:
    response = site.get("/api/fingerprint")
    assert response.status_code == 200
    body = response.json()
    assert body["key"] == "SERVICE_SECRET"
    value: str = body["sha256_8"]
    health = site.get("/health").json()
    assert health["checks"]["revision"]["fingerprint"] == value
    return value


def test_rollback_restores_the_old_secret_values(site: Site) -> None:
    v1 = site.seed()[SECRET]
    first = site.deploy()
    assert first.exit_code == 0, first.message
    assert _serving_fingerprint(site) == fingerprint(v1)

    v2 = site.seed()[SECRET]
    second = site.deploy()
    assert second.exit_code == 0, second.message
    assert _serving_fingerprint(site) == fingerprint(v2) != fingerprint(v1)

    # a broken revision on v3 is rolled back: the service runs v2 again, not latest (v3)
    v3 = site.seed()[SECRET]
    broken = site.deploy(extra_env={"BACKEND_FAIL_HEALTH": "1"})
    assert broken.exit_code == 3, broken.message
    assert _serving_fingerprint(site) == fingerprint(v2) != fingerprint(v3)

    # `rollsafe rollback` goes to the last verified revision not serving: the first, on v1
    result = manual_rollback(
        site.env, SERVICE, to=None, platform=site.platform, journal=site.journal
    )
    assert result.exit_code == 0, result.message
    assert result.rollback is not None
    assert result.rollback.verified
    assert first.plan is not None
    assert site.split() == {first.plan.spec.revision: 100}
    assert _serving_fingerprint(site) == fingerprint(v1)
    pinned = {r.name: r.secrets["SERVICE_SECRET"].version for r in site.revisions()}
    assert pinned[first.plan.spec.revision] == "1"
    assert second.plan is not None
    assert pinned[second.plan.spec.revision] == "2"

    # a second rollback goes further back, not forward to the revision just left
    with pytest.raises(RollsafeError, match="no earlier verified revision"):
        manual_rollback(site.env, SERVICE, to=None, platform=site.platform, journal=site.journal)
    assert site.split() == {first.plan.spec.revision: 100}


def test_rollback_refuses_a_missing_or_failed_revision_before_any_change(site: Site) -> None:
    base = site.baseline()
    site.weaken()
    forced = site.deploy(site.incident, force=True, reason="make a failed revision")
    assert forced.exit_code == 3, forced.message
    assert forced.plan is not None
    failed = forced.plan.spec.revision
    count = len(site.journal.history(ENV))
    with pytest.raises(UsageError, match="does not exist") as missing:
        manual_rollback(
            site.env, SERVICE, to="backend-09999-zzz", platform=site.platform, journal=site.journal
        )
    assert base in (missing.value.hint or "")
    with pytest.raises(RollsafeError, match="cannot serve traffic") as broken:
        manual_rollback(site.env, SERVICE, to=failed, platform=site.platform, journal=site.journal)
    assert broken.value.exit_code == 1
    # the revision's Ready condition, in Cloud Run's words (its logs say exit(3))
    assert "failed to start and listen on the port" in broken.value.message
    assert site.split() == {base: 100}
    assert len(site.journal.history(ENV)) == count


def test_rollback_to_an_unhealthy_target_puts_back_the_split_it_found(site: Site) -> None:
    base = site.baseline()
    # a revision that starts (Ready) but whose /health answers 503: its deploy rolled back
    broken = site.deploy(extra_env={"BACKEND_FAIL_HEALTH": "1"})
    assert broken.exit_code == 3, broken.message
    assert broken.plan is not None
    unhealthy = broken.plan.spec.revision
    tags = {"stable": base, "blue": base}
    site.platform.set_traffic(SERVICE, {base: 100}, tags)
    result = manual_rollback(
        site.env, SERVICE, to=unhealthy, platform=site.platform, journal=site.journal
    )
    assert result.exit_code == 3, result.message
    assert result.outcome == "rolled-back"
    assert f"{unhealthy} is unhealthy" in result.message
    assert "HTTP 503" in result.message
    assert "rollsafe rollback" in (result.hint or "")
    # what served when the rollback began serves again, with its tags
    assert site.split() == {base: 100}
    assert site.tags() == tags
    assert site.get("/health").status_code == 200
    record = site.journal.history(ENV, SERVICE)[0]
    assert (record.outcome, record.exit_code) == ("rolled-back", 3)
    assert record.compensation == {"kind": "restore", "split": {base: 100}, "tags": tags}
