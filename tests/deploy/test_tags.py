"""Traffic tags set by others (gcloud, a blue/green label) survive rollsafe: a deploy, a
failed deploy's rollback, ``rollsafe rollback`` and reconcile keep every one of them,
several on one revision included."""

from __future__ import annotations

from rollsafe.deploy import CANDIDATE_TAG, manual_rollback, service_status
from tests.deploy.conftest import ENV, SERVICE, Site, paused_child, sigkill


def _tag(site: Site, tags: dict[str, str]) -> None:
    split = site.split()
    site.platform.set_traffic(SERVICE, split, tags)
    assert site.tags() == tags


def test_two_tags_on_the_serving_revision_survive_a_deploy_and_a_rollback(site: Site) -> None:
    base = site.baseline()
    tags = {"stable": base, "blue": base}
    _tag(site, tags)
    # each tag keeps its own URL, on Cloud Run as on the emulator
    service = site.service()
    assert service.tag_url("stable") != service.tag_url("blue")

    site.seed()
    deployed = site.deploy(canary=(10, 50, 100))
    assert deployed.exit_code == 0, deployed.message
    assert deployed.plan is not None
    new = deployed.plan.spec.revision
    assert site.split() == {new: 100}
    assert site.tags() == tags

    # a failed deploy's rollback keeps them
    site.seed()
    failed = site.deploy(canary=(10, 50, 100), extra_env={"BACKEND_FAIL_HEALTH": "1"})
    assert failed.exit_code == 3, failed.message
    assert site.split() == {new: 100}
    assert site.tags() == tags

    # and so does `rollsafe rollback`
    back = manual_rollback(site.env, SERVICE, to=base, platform=site.platform, journal=site.journal)
    assert back.exit_code == 0, back.message
    assert site.split() == {base: 100}
    assert site.tags() == tags


def test_two_tags_survive_the_reconcile_of_a_killed_canary(site: Site) -> None:
    base = site.baseline()
    tags = {"stable": base, "blue": base}
    _tag(site, tags)
    options = {"watch": 0, "canary": [10, 50, 100]}
    with paused_child(site, mode="deploy", pause="shift", nth=2, options=options) as child:
        assert site.tags()[CANDIDATE_TAG] != base
        sigkill(child)
    (status,) = service_status(site.env, [SERVICE], platform=site.platform, journal=site.journal)
    assert len(status.reconciled) == 1
    assert site.split() == {base: 100}
    assert site.tags() == tags
    assert site.journal.interrupted(ENV, SERVICE) == []
