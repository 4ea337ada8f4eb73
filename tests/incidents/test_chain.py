"""The rule base on hand-made evidence sets: chains reach the right causes, cite real ids,
and stop with a gap where the evidence stops."""

from __future__ import annotations

import dataclasses

import pytest

from rollsafe.incidents import Evidence, EvidenceKind, EvidenceSet
from rollsafe.incidents._text import hindsight
from rollsafe.incidents.chain import build_chains, split_chains
from tests.incidents._handmade import (
    SCENARIOS,
    T0,
    scenario_a,
    scenario_b,
    scenario_c,
    scenario_missing,
)

K = EvidenceKind


def _source(ev: EvidenceSet, evidence_id: str) -> str:
    found = ev.get(evidence_id)
    assert found is not None, evidence_id
    return found.source


def _cited_sources(ev: EvidenceSet) -> set[str]:
    return {_source(ev, i) for w in build_chains(ev).whys for i in w.evidence}


def _replace(ev: EvidenceSet, source: str, **data: object) -> None:
    for n, item in enumerate(ev.evidence):
        if item.source == source:
            ev.evidence[n] = dataclasses.replace(item, data={**item.data, **data})
            return
    raise AssertionError(source)


@pytest.mark.parametrize(
    ("name", "rules"),
    [
        pytest.param(
            "a",
            [
                "symptom.requests",
                "exit.guard",
                "guard.secret-version",
                "version.latest",
                "origin.outside",
            ],
            id="a-weak-secret-latest-outside",
        ),
        pytest.param(
            "b", ["symptom.requests", "errors.unmapped", "origin.outside"], id="b-unmapped-jwt"
        ),
        pytest.param("c", ["symptom.verify", "no-instance.exit"], id="c-verify-rolled-back"),
        pytest.param("missing", ["symptom.requests"], id="missing-evidence"),
    ],
)
def test_chain_follows_the_rule_base(name: str, rules: list[str]) -> None:
    chains = build_chains(SCENARIOS[name]())
    assert [w.rule for w in chains.whys] == rules
    assert len(split_chains(chains.whys)) == 1


@pytest.mark.parametrize("name", sorted(SCENARIOS), ids=sorted(SCENARIOS))
def test_every_link_cites_evidence_that_exists(name: str) -> None:
    ev = SCENARIOS[name]()
    chains = build_chains(ev)
    known = {e.id for e in ev.evidence}
    for why in chains.whys:
        assert why.evidence, why
        assert set(why.evidence) <= known, why
    for cause in chains.causes:
        assert set(cause.evidence) <= known, cause


@pytest.mark.parametrize("name", sorted(SCENARIOS), ids=sorted(SCENARIOS))
def test_chain_text_has_no_hindsight_words(name: str) -> None:
    chains = build_chains(SCENARIOS[name]())
    texts = [t for w in chains.whys for t in (w.claim, w.because)]
    texts += [t for g in chains.gaps for t in (g.after, g.missing, g.how)]
    assert [t for t in texts if hindsight(t)] == []


def test_a_reaches_the_weak_version_and_the_latest_mapping() -> None:
    ev = scenario_a()
    chains = build_chains(ev)
    sources = _cited_sources(ev)
    assert "sm://service-secret-staging/versions/2" in sources
    assert "drift:stale_latest/SERVICE_SECRET" in sources
    assert "check:machine_secret/SERVICE_SECRET" in sources
    version = next(w for w in chains.whys if w.rule == "guard.secret-version")
    assert "version 2 of service-secret-staging" in version.because
    assert "about 62 estimated bits" in version.because
    assert "machine_secret failed for SERVICE_SECRET" in version.claim
    latest = next(w for w in chains.whys if w.rule == "version.latest")
    assert "`latest`" in latest.because
    origin = next(w for w in chains.whys if w.rule == "origin.outside")
    assert "no rollsafe.dev/deploy-id annotation" in origin.because
    # 503 as logged, never another status
    assert chains.whys[0].claim.startswith("backend answered 503 to 40 requests")
    gaps = " ".join(g.missing + g.how for g in chains.gaps)
    assert "who added version 2 of service-secret-staging" in gaps
    assert "Data Access audit logs" in gaps
    assert "rollsafe monitor --env staging" in gaps  # no alert or probe recorded


def test_a_picks_the_newest_version_created_before_the_first_exit() -> None:
    ev = scenario_a()
    # a version 3 added after the exits began is not what the instances read
    ev.evidence.append(
        Evidence(
            "E11",
            K.SECRET_VERSION,
            T0 + 300,
            "sm://service-secret-staging/versions/3",
            "v3",
            {
                "secret": "service-secret-staging",
                "version": 3,
                "created": T0 + 300,
                "state": "ENABLED",
                "length": 40,
                "bits": 230.0,
                "classes": [],
                "weak": False,
                "env_vars": ["SERVICE_SECRET"],
            },
        )
    )
    version = next(w for w in build_chains(ev).whys if w.rule == "guard.secret-version")
    assert "version 2 of" in version.because
    assert "E11" not in version.evidence


def test_b_reaches_the_unmapped_jwt_secret() -> None:
    ev = scenario_b()
    chains = build_chains(ev)
    assert "drift:unmapped_secret/JWT_SECRET_KEY" in _cited_sources(ev)
    first = chains.whys[0]
    assert first.claim.startswith("backend answered 500 to 12 requests on /api/me")
    assert "`JWT secret not configured`" in first.because
    unmapped = next(w for w in chains.whys if w.rule == "errors.unmapped")
    assert unmapped.because.startswith("backend-00002-def does not map JWT_SECRET_KEY")


def test_b_without_a_key_named_in_the_errors_stops_with_a_gap() -> None:
    ev = scenario_b()
    _replace(ev, "log://run.googleapis.com%2Fstderr/l2", text="something broke")
    chains = build_chains(ev)
    assert [w.rule for w in chains.whys] == ["symptom.requests"]
    assert any(g.missing == "which setting the error lines are about" for g in chains.gaps)


def test_c_names_the_tag_url_and_the_failing_revision() -> None:
    chains = build_chains(scenario_c())
    first = chains.whys[0]
    assert "was rolled back: its verify stage did not pass" in first.claim
    assert "its verify stage did not pass (`/health answered 503`)" in first.claim
    assert "answered 503 on /health on its tag URL during verification" in first.because
    assert "users were not served by it" in first.because
    assert chains.whys[1].because.startswith("the container of backend-00002-new called exit(3)")
    # exit without a guard line: the chain stops and says how to record the reason
    assert any("StartupGuard" in g.how for g in chains.gaps)
    assert [s.kind for s in chains.symptoms] == ["verify"]


def test_c_with_a_guard_line_goes_on_to_the_pinned_version_and_the_deploy() -> None:
    ev = scenario_c()
    ev.evidence.append(
        Evidence(
            "E14",
            K.LOG,
            T0 + 3,
            "log://run.googleapis.com%2Fstderr/g3",
            "CRITICAL guard",
            {
                "service": "backend",
                "revision": "backend-00002-new",
                "log": "run.googleapis.com/stderr",
                "severity": "CRITICAL",
                "text": "start-up refused",
                "count": 2,
                "first": T0 + 3,
                "last": T0 + 9,
                "exit_code": None,
                "guard": {
                    "outcome": "failed",
                    "failures": [
                        {"key": "SERVICE_SECRET", "rule": "machine_secret", "message": "m"}
                    ],
                },
            },
        )
    )
    chains = build_chains(ev)
    rules = [w.rule for w in chains.whys]
    assert rules == [
        "symptom.verify",
        "no-instance.exit",
        "exit.guard",
        "guard.secret-version",
        "version.pinned",
        "origin.deploy",
    ]
    pinned = next(w for w in chains.whys if w.rule == "version.pinned")
    assert "maps SERVICE_SECRET to version 3 of service-secret-staging" in pinned.because
    assert any("git_commit" in g.how for g in chains.gaps)


def test_deploy_with_checks_skipped_is_named_with_its_reason() -> None:
    ev = scenario_a()
    _replace(ev, "run://backend/backend-00001-abc#Ready", deploy_id="20261205-090000-bbbbbb")
    ev.evidence.append(
        Evidence(
            "E11",
            K.DEPLOY,
            T0 - 2000,
            "journal:20261205-090000-bbbbbb/outcome",
            "deploy",
            {
                "deploy_id": "20261205-090000-bbbbbb",
                "service": "backend",
                "revision": "backend-00001-abc",
                "previous_revision": None,
                "user": "bo",
                "host": "laptop",
                "ci_url": None,
                "git_commit": None,
                "checks": "skipped",
                "forced": True,
                "reason": "hotfix for login",
                "outcome": "succeeded",
                "exit_code": 0,
                "message": None,
                "started": T0 - 2010,
                "finished": T0 - 2000,
                "rollback": None,
                "by_monitor": False,
            },
        )
    )
    chains = build_chains(ev)
    last = chains.whys[-1]
    assert last.rule == "origin.checks-skipped"
    assert last.because.startswith("deploy 20261205-090000-bbbbbb ran with checks skipped")
    assert "reason `hotfix for login`" in last.because
    assert "E11" in last.evidence


def test_a_link_without_evidence_is_not_written_and_a_gap_says_so() -> None:
    ev = scenario_a()
    ev.evidence = [e for e in ev.evidence if e.kind is not K.REVISION]
    chains = build_chains(ev)
    assert "version.latest" not in [w.rule for w in chains.whys]
    assert "origin.outside" not in [w.rule for w in chains.whys]
    assert any(g.missing == "how backend-00001-abc maps SERVICE_SECRET" for g in chains.gaps)


def test_missing_evidence_gives_gaps_for_each_source() -> None:
    chains = build_chains(scenario_missing())
    missing = {g.missing for g in chains.gaps}
    assert "container exits or a failed Ready condition of web-00003-zzz" in missing
    assert "an alert or probe record for web" in missing
    hows = " ".join(g.how for g in chains.gaps)
    assert "run.googleapis.com/varlog/system" in hows
    assert "rollsafe monitor --env dev" in hows


def test_no_symptom_at_all_is_a_gap_not_a_chain() -> None:
    ev = EvidenceSet(env="dev", services=("web",), since=T0, until=T0 + 60)
    chains = build_chains(ev)
    assert chains.whys == []
    assert [g.missing for g in chains.gaps] == ["a symptom to start a chain from"]


def test_probes_and_alert_without_request_logs() -> None:
    ev = scenario_a()
    ev.evidence = [e for e in ev.evidence if e.kind is not K.REQUEST]
    ev.requests = {}
    ev.evidence.append(
        Evidence(
            "E11",
            K.PROBE,
            T0 + 25,
            "monitor:probes/backend",
            "probes",
            {
                "service": "backend",
                "total": 30,
                "failed": 12,
                "first_failed": T0 + 25,
                "last_failed": T0 + 250,
                "statuses": {"503": 12, "200": 18},
            },
        )
    )
    chains = build_chains(ev)
    assert chains.whys[0].rule == "symptom.probes"
    assert "(answers: 200 (18), 503 (12))" in chains.whys[0].claim
    assert "version.latest" in [w.rule for w in chains.whys]
    assert any("request logs of backend" in g.missing for g in chains.gaps)
    assert not any("alert or probe record" in g.missing for g in chains.gaps)


def test_a_log_line_that_uses_a_hindsight_phrase_is_cited_not_repeated() -> None:
    ev = scenario_b()
    _replace(
        ev, "log://run.googleapis.com%2Fstderr/l2", text="JWT secret not configured; failed to sign"
    )
    chains = build_chains(ev)
    assert "failed to" not in chains.whys[0].because
    assert "E7" in chains.whys[0].evidence  # the line is cited by id instead
    assert chains.whys[1].rule == "errors.unmapped"


@pytest.mark.parametrize("name", sorted(SCENARIOS), ids=sorted(SCENARIOS))
def test_chains_do_not_depend_on_the_order_of_the_evidence_list(name: str) -> None:
    ev = SCENARIOS[name]()
    again = SCENARIOS[name]()
    again.evidence.reverse()
    assert build_chains(ev).whys == build_chains(again).whys
    assert build_chains(ev).gaps == build_chains(again).gaps


def test_a_running_instance_stopped_before_the_first_exit_is_named() -> None:
    ev = scenario_a()
    ev.evidence.append(
        Evidence(
            "E11",
            K.LOG,
            T0 + 19,
            "log://run.googleapis.com%2Fvarlog%2Fsystem/s9",
            "Container terminated on signal 9.",
            {
                "service": "backend",
                "revision": "backend-00001-abc",
                "log": "run.googleapis.com/varlog/system",
                "severity": "WARNING",
                "text": "Container terminated on signal 9.",
                "count": 1,
                "first": T0 + 19,
                "last": T0 + 19,
                "exit_code": None,
                "guard": None,
            },
        )
    )
    first = build_chains(ev).whys[0]
    assert first.because.startswith(
        "no instance of backend-00001-abc was ready: the running instance stopped at "
    )
    assert (
        "(`Container terminated on signal 9.`), and then the container of backend-00001-abc called exit(3)"
        in first.because
    )
    assert {"E7", "E8", "E11"} <= set(first.evidence)
