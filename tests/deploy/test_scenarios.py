"""The demo's scenarios, one test each, on the emulator with the example backend."""

from __future__ import annotations

import json
import socket

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import run_v2

from rollsafe._gcp import client_kwargs
from rollsafe.demo import Prober
from rollsafe.deploy import CANDIDATE_TAG, DeployOptions, run_deploy
from rollsafe.deploy.plan import ANNOTATION_CHECKS, ANNOTATION_DEPLOY_ID, ANNOTATION_REASON
from rollsafe.errors import RollsafeError
from rollsafe.platforms.idtoken import IdTokenAuth
from rollsafe.stores.secretmanager import SecretManagerStore
from tests.deploy.conftest import ENV, SERVICE, Site


def test_baseline_deploy_is_healthy_and_serves_everything(site: Site) -> None:
    site.seed()
    result = site.deploy()
    assert result.exit_code == 0, result.message
    assert result.outcome == "succeeded"
    assert result.plan is not None
    revision = result.plan.spec.revision
    assert site.split() == {revision: 100}
    assert CANDIDATE_TAG not in site.tags()
    assert site.get("/health").status_code == 200
    # the evidence travels with the revision; secrets are pinned to numbers
    (info,) = site.revisions()
    assert info.annotations[ANNOTATION_CHECKS] == "passed"
    assert result.record is not None
    assert info.annotations[ANNOTATION_DEPLOY_ID] == result.record.id
    assert {ref.version for ref in info.secrets.values()} == {"1"}
    # the journal has every stage, each closed and timed
    (record,) = site.journal.history(ENV, SERVICE)
    assert (record.outcome, record.exit_code, record.revision) == ("succeeded", 0, revision)
    stages = [s["stage"] for s in record.stages]
    assert stages == ["plan", "preflight", "create", "verify", "shift", "done"]
    assert all(s["ok"] and s["seconds"] is not None for s in record.stages)
    assert site.events.stages("skip") == ["current-health", "watch"]


def test_incident_secrets_are_refused_by_preflight_and_nothing_changes(site: Site) -> None:
    base = site.baseline()
    before = [r.name for r in site.revisions()]
    site.weaken()
    result = site.deploy(site.incident)
    assert result.exit_code == 1, result.message
    assert result.outcome == "refused"
    assert "nothing was changed" in result.message
    assert result.report is not None
    blocking = {f.key for f in result.report.findings if f.severity.value == "error"}
    assert blocking == {"SERVICE_SECRET", "JWT_SECRET_KEY", "OAUTH_REDIRECT_URI"}
    assert [r.name for r in site.revisions()] == before
    assert site.split() == {base: 100}
    assert "create" not in site.events.stages("start")[-3:]
    record = site.journal.history(ENV, SERVICE)[0]
    assert (record.outcome, record.exit_code, record.stage) == ("refused", 1, "preflight")


def test_forced_incident_deploy_exits_3_at_start_and_traffic_stays(site: Site) -> None:
    base = site.baseline()
    site.weaken()
    reason = "INC-42: force the incident deploy"
    result = site.deploy(site.incident, force=True, reason=reason)
    assert result.exit_code == 3, result.message
    assert result.outcome == "failed"
    # read from the revision's logs through the Logging API, as on Google
    assert "Container called exit(3)." in result.message
    assert "start-up guard (CRITICAL)" in result.message
    assert "SERVICE_SECRET machine_secret" in result.message
    assert site.split() == {base: 100}
    assert CANDIDATE_TAG not in site.tags()
    assert site.get("/health").status_code == 200
    # forced, with its reason: in the journal, in history --format json, on the revision
    record = site.journal.history(ENV, SERVICE)[0]
    assert (record.checks, record.reason, record.outcome) == ("forced", reason, "failed")
    assert record.findings["error"] == 3
    history = site.cli("history", "--env", ENV, "--format", "json")
    assert history.exit_code == 0, history.output
    forced = [d for d in json.loads(history.stdout) if d["forced"]]
    assert [(d["reason"], d["exit_code"]) for d in forced] == [(reason, 3)]
    assert result.plan is not None
    failed = next(r for r in site.revisions() if r.name == result.plan.spec.revision)
    assert failed.failed
    assert failed.annotations[ANNOTATION_CHECKS] == "forced"
    assert failed.annotations[ANNOTATION_REASON] == reason
    # the platform's own words hold no line the application printed, nor its exit code
    assert failed.message.startswith("The user-provided container failed to start and listen")
    operation_error = site.terminal_message()
    assert operation_error == (
        f"Revision '{failed.name}' is not ready and cannot serve traffic. {failed.message}"
    )
    for printed in ("CRITICAL", "SERVICE_SECRET", "machine_secret", "exit(3)", "{"):
        assert printed not in operation_error


def test_revision_answering_503_is_rolled_back(site: Site) -> None:
    base = site.baseline()
    site.seed()
    prober = Prober(site.service().url or "", auth=IdTokenAuth(site.tokens)).start()
    try:
        result = site.deploy(extra_env={"BACKEND_FAIL_HEALTH": "1"})
    finally:
        prober.stop()
    assert result.exit_code == 3, result.message
    assert result.outcome == "rolled-back"
    assert "verification failed during verify" in result.message
    assert site.split() == {base: 100}
    assert CANDIDATE_TAG not in site.tags()
    assert result.rollback is not None
    assert result.rollback.ok
    assert result.rollback.verified
    assert result.rollback.seconds is not None
    # the broken revision never served a request of the service URL
    assert prober.total > 0
    assert prober.bad == []
    record = site.journal.history(ENV, SERVICE)[0]
    assert (record.outcome, record.exit_code) == ("rolled-back", 3)
    assert record.rollback is not None
    assert record.rollback["to"] == {base: 100}
    assert [s["stage"] for s in record.stages][-2:] == ["verify", "rollback"]


def test_revision_whose_health_fails_at_start_never_becomes_ready(site: Site) -> None:
    base = site.baseline()
    site.seed()
    # the startup probe on /health gives up after 3 one-second attempts
    env = site.variant("interval: 0.1s}", "interval: 0.1s, startup: {failure_threshold: 3}}")
    seen = len(site.events.events)
    result = site.deploy(env, extra_env={"BACKEND_FAIL_HEALTH": "start"})
    assert result.exit_code == 3, result.message
    assert result.outcome == "failed"
    assert (
        'STARTUP HTTP probe failed 3 times consecutively for container "backend-1" on path '
        '"/health". The instance was not started.'
    ) in result.message
    # the platform refused it: deploy never verified it, never shifted, never rolled back
    started = [e.stage for e in site.events.events[seen:] if e.kind == "start"]
    assert started == ["plan", "preflight", "current-health", "create"]
    assert site.split() == {base: 100}
    assert CANDIDATE_TAG not in site.tags()
    assert site.get("/health").status_code == 200
    assert result.plan is not None
    failed = next(r for r in site.revisions() if r.name == result.plan.spec.revision)
    assert (failed.ready, failed.failed) == (False, True)
    assert failed.startup_probe is not None
    assert (failed.startup_probe.path, failed.startup_probe.failure_threshold) == ("/health", 3)


def test_fixed_deploy_goes_through_canary_steps(site: Site) -> None:
    base = site.baseline()
    site.seed()
    # a tag that is not rollsafe's (set with gcloud, say) must survive the deploy
    site.platform.set_traffic(SERVICE, {base: 100}, {"stable": base})
    prober = Prober(site.service().url or "", auth=IdTokenAuth(site.tokens)).start()
    try:
        result = site.deploy(canary=(10, 50, 100), watch=0.3)
    finally:
        prober.stop()
    assert result.exit_code == 0, result.message
    assert result.plan is not None
    new = result.plan.spec.revision
    shifts = [
        e.detail
        for e in site.events.events
        if e.kind == "start" and e.stage == "shift" and new in e.detail
    ]
    assert shifts == [f"{p}% to {new}" for p in (10, 50, 100)]
    assert "watch" in site.events.stages("ok")
    assert site.split() == {new: 100}
    assert site.tags() == {"stable": base}
    assert prober.bad == []


def test_skip_checks_without_force_is_refused_in_strict(site: Site) -> None:
    site.seed()
    with pytest.raises(RollsafeError) as info:
        site.deploy(skip_checks=True)
    assert info.value.exit_code == 1
    assert "strict" in info.value.message
    assert "--force --reason" in (info.value.hint or "")
    assert site.platform.get_service(SERVICE) is None
    assert site.journal.history(ENV) == []
    # with --force --reason it goes, and the skip is recorded as forced with the reason
    result = site.deploy(skip_checks=True, force=True, reason="hotfix INC-7")
    assert result.exit_code == 0, result.message
    assert site.events.stages("skip")[0] == "preflight"
    (record,) = site.journal.history(ENV)
    assert (record.checks, record.reason) == ("forced", "hotfix INC-7")
    (info_rev,) = site.revisions()
    assert info_rev.annotations[ANNOTATION_CHECKS] == "forced"


def test_a_failing_first_deploy_deletes_the_service_it_created(site: Site) -> None:
    site.seed()
    broken = site.deploy(extra_env={"BACKEND_FAIL_HEALTH": "1"})
    assert broken.exit_code == 3, broken.message
    assert broken.outcome == "rolled-back"
    assert broken.rollback is not None
    assert broken.rollback.deleted
    assert "deleted" in broken.message
    # the state before the deploy: as Google's own client sees it, there is no service
    client = run_v2.ServicesClient(**client_kwargs(site.endpoint))
    try:
        name = f"projects/{site.env.gcp_project}/locations/{site.env.region}/services/{SERVICE}"
        with pytest.raises(NotFound):
            client.get_service(name=name)
    finally:
        client.transport.close()
    (record,) = site.journal.history(ENV, SERVICE)
    assert (record.outcome, record.exit_code) == ("rolled-back", 3)
    assert record.compensation == {"kind": "delete", "split": {}, "tags": {}}
    # and the next deploy is a first deploy again
    assert site.deploy().exit_code == 0


def test_unhealthy_serving_revision_needs_force_and_a_kept_failed_first_deploy_exits_4(
    site: Site,
) -> None:
    site.seed()
    # a first revision that is broken, kept for debugging: a human must act
    broken = site.deploy(extra_env={"BACKEND_FAIL_HEALTH": "1"}, keep_failed=True)
    assert broken.exit_code == 4, broken.message
    assert broken.outcome == "kept-failed"
    assert "a human must act" in (broken.hint or "")
    assert site.get("/health").status_code == 503
    # the next deploy sees the unhealthy service and refuses unless forced
    refused = site.deploy()
    assert refused.exit_code == 1, refused.message
    assert "serving revision is unhealthy" in refused.message
    assert "--force" in (refused.hint or "")
    assert broken.plan is not None
    assert site.split() == {broken.plan.spec.revision: 100}
    fixed = site.deploy(force=True, reason="fix the outage")
    assert fixed.exit_code == 0, fixed.message
    assert site.get("/health").status_code == 200
    record = site.journal.history(ENV, SERVICE)[0]
    assert (record.reason, record.outcome) == ("fix the outage", "succeeded")
    # the checks passed, but --force took it past the unhealthy service: history says forced
    assert record.checks == "passed"
    assert record.to_dict()["forced"] is True


def test_unreachable_store_stops_the_deploy_before_any_change(site: Site) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with SecretManagerStore(site.env.gcp_project, endpoint=dead) as store:
        result = run_deploy(
            site.env,
            SERVICE,
            DeployOptions(watch=0),
            platform=site.platform,
            store=store,
            journal=site.journal,
            listener=site.events,
        )
    assert result.exit_code == 1, result.message
    assert result.outcome == "refused"
    assert "cannot be reached" in result.message
    assert site.platform.get_service(SERVICE) is None
    # the attempt is closed, not left looking like a running deploy
    (record,) = site.journal.history(ENV)
    assert (record.outcome, record.exit_code) == ("refused", 1)
