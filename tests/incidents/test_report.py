"""build_report on hand-made evidence sets: measured impact, status codes as logged, the
timeline, typed factors and actions, what went well, determinism."""

from __future__ import annotations

import re

import pytest

from rollsafe.incidents import ActionType, FactorType, IncidentReport
from rollsafe.incidents._text import hindsight
from rollsafe.incidents.report import build_report
from tests.incidents._handmade import SCENARIOS, T0, episode_for, scenario_a, scenario_b, scenario_c

NOW = T0 + 3600


def _texts(report: IncidentReport) -> list[str]:
    texts = [report.title, report.summary]
    texts += [t for w in report.whys for t in (w.claim, w.because)]
    texts += [t for g in report.gaps for t in (g.after, g.missing, g.how)]
    texts += [f.text for f in report.factors] + [a.text for a in report.actions]
    texts += [w.text for w in report.went_well] + [t.text for t in report.timeline]
    return texts


def _cited(report: IncidentReport) -> set[str]:
    cited = set(report.impact.evidence)
    for group in (report.whys, report.factors, report.actions, report.went_well, report.timeline):
        for item in group:
            cited |= set(item.evidence)
    return cited


def _statuses_written(texts: list[str]) -> set[str]:
    found: set[str] = set()
    for text in texts:
        # a status: three digits standing alone (not part of a time like 06:53:20.500Z)
        found |= set(re.findall(r"(?<![\d.:])(5\d\d)(?![\d])", text))
    return found


@pytest.mark.parametrize("name", sorted(SCENARIOS), ids=sorted(SCENARIOS))
def test_every_cited_id_resolves(name: str) -> None:
    report = build_report(SCENARIOS[name](), now=NOW)
    known = {e.id for e in report.evidence}
    assert _cited(report) <= known
    for item in [
        *report.whys,
        *report.factors,
        *report.actions,
        *report.went_well,
        *report.timeline,
    ]:
        assert item.evidence, item


@pytest.mark.parametrize("name", sorted(SCENARIOS), ids=sorted(SCENARIOS))
def test_no_hindsight_words_in_anything_written(name: str) -> None:
    report = build_report(SCENARIOS[name](), now=NOW)
    assert [t for t in _texts(report) if hindsight(t)] == []


@pytest.mark.parametrize(
    ("name", "status"),
    [
        pytest.param("a", "503", id="a-503"),
        pytest.param("b", "500", id="b-500"),
        pytest.param("c", "503", id="c-503"),
    ],
)
def test_the_status_written_is_the_status_logged(name: str, status: str) -> None:
    report = build_report(SCENARIOS[name](), now=NOW)
    assert _statuses_written(_texts(report)) == {status}


def test_a_impact_is_measured_from_the_request_log() -> None:
    report = build_report(scenario_a(), now=NOW)
    impact = report.impact
    assert (impact.requests_total, impact.requests_failed, impact.tag_failed) == (100, 40, 0)
    assert impact.statuses == {503: 40}
    assert impact.first_bad == T0 + 22
    assert impact.last_bad == T0 + 260
    assert impact.duration == 238
    assert impact.revisions == ("backend-00001-abc",)
    assert impact.to_dict()["requests"]["share"] == 0.4
    assert "40 of 100 requests (40.0%)" in report.summary
    assert "503 (40)" in report.summary


def test_a_factors_and_actions() -> None:
    report = build_report(scenario_a(), now=NOW)
    triggers = [f.text for f in report.factors if f.type is FactorType.TRIGGER]
    assert len(triggers) == 1
    assert triggers[0].startswith("version 2 of service-secret-staging was added")
    latent = " ".join(f.text for f in report.factors if f.type is FactorType.LATENT)
    assert "maps SERVICE_SECRET at `latest`" in latent
    assert "created outside rollsafe" in latent
    assert "staging is not strict" in latent
    commands = {a.type: [] for a in report.actions}  # type: dict[ActionType, list[str]]
    for action in report.actions:
        commands[action.type].append(action.command)
    assert (
        "rollsafe secret rotate service-secret-staging --env staging"
        in commands[ActionType.MITIGATE]
    )
    assert "rollsafe deploy --env staging --service backend" in commands[ActionType.MITIGATE]
    assert "rollsafe.yaml: environments.staging.strict: true" in commands[ActionType.PREVENT]
    # the monitor rolls back fresh rollsafe deploys only: nothing to ask of it for a
    # revision created outside rollsafe
    assert not any("rollback_within" in c for c in commands[ActionType.PREVENT])
    assert "rollsafe monitor --env staging" in commands[ActionType.PROCESS]
    assert "rollsafe drift --env staging" in commands[ActionType.PROCESS]
    pins = next(
        a for a in report.actions if a.command == "rollsafe deploy --env staging --service backend"
    )
    assert "pins SERVICE_SECRET" in pins.text


def test_b_actions_map_the_jwt_secret_and_roll_back() -> None:
    report = build_report(scenario_b(), now=NOW)
    deploy = next(
        a for a in report.actions if a.command == "rollsafe deploy --env staging --service backend"
    )
    assert deploy.type is ActionType.MITIGATE
    assert "maps JWT_SECRET_KEY" in deploy.text
    rollback = [a.command for a in report.actions if a.command.startswith("rollsafe rollback")]
    assert rollback == ["rollsafe rollback --env staging --service backend --to backend-00001-abc"]
    assert report.impact.statuses == {500: 12}
    # the monitor's alert is detection, and no monitor action is asked for
    assert not any(a.command.startswith("rollsafe monitor") for a in report.actions)
    assert any(
        "alert jwt fired for backend, 1 min after the first bad answer" in w.text
        for w in report.went_well
    )


def test_c_near_zero_impact_and_the_rollback_time() -> None:
    report = build_report(scenario_c(), now=NOW)
    impact = report.impact
    assert (impact.requests_failed, impact.tag_failed, impact.requests_total) == (0, 3, 50)
    assert impact.statuses == {}
    assert impact.first_bad is None
    assert "users were not affected" in report.summary.lower()
    well = [w.text for w in report.went_well]
    assert (
        "traffic was back on backend-00001-abc 0.42 s after the verification failed (rollback stage: 0.42 s)"
        in well
    )
    assert any(w.startswith("users were not served by backend-00002-new") for w in well)
    assert [f.type for f in report.factors] == [FactorType.TRIGGER]
    assert [(a.type, a.command) for a in report.actions] == [
        (ActionType.PROCESS, "rollsafe deploy --env staging --service backend --dry-run")
    ]
    assert report.factors[0].text.startswith(
        "deploy 20261205-101010-c0ffee by ana created backend-00002-new"
    )


def test_timeline_holds_every_event_in_order() -> None:
    report = build_report(scenario_c(), now=NOW)
    times = [t.time for t in report.timeline]
    assert times == sorted(times)
    texts = [t.text for t in report.timeline]
    for expected in (
        "version 3 of service-secret-staging created (about 40 estimated bits)",
        "deploy 20261205-101010-c0ffee of backend-00002-new started by ana (checks passed)",
        "deploy 20261205-101010-c0ffee: stage verify did not pass in 8 s: `/health answered 503`",
        "deploy 20261205-101010-c0ffee: stage rollback passed in 0.42 s: `traffic back on backend-00001-abc`",
        "deploy 20261205-101010-c0ffee ended rolled-back (exit 3)",
        "first 503 answer from backend-00002-new on its tag URL",
    ):
        assert expected in texts
    # every timed piece of evidence of an event kind is on the timeline
    on_timeline = {i for t in report.timeline for i in t.evidence}
    timed = {e.id for e in report.evidence if e.kind.value not in ("drift", "check", "manifest")}
    assert timed <= on_timeline


def test_same_evidence_same_report() -> None:
    first = build_report(scenario_a(), episode_for(scenario_a()), now=NOW).to_dict()
    second = build_report(scenario_a(), episode_for(scenario_a()), now=NOW).to_dict()
    assert first == second
    assert first["summary"]["generated"] == "2026-12-06T07:53:20.000Z"
    undated = build_report(scenario_a()).to_dict()
    assert undated["summary"]["generated"] == undated["summary"]["until"]


def test_episode_names_the_report() -> None:
    ev = scenario_b()
    report = build_report(ev, episode_for(ev), now=NOW)
    assert report.title.startswith("INC-20261205-100000-backend: backend in staging: 500 answers")
    assert report.to_dict()["summary"]["episode"]["id"] == "INC-20261205-100000-backend"


def test_monitor_rollback_is_resolution_and_went_well() -> None:
    from rollsafe.incidents.report import resolution
    from tests.incidents._handmade import scenario_monitor_rollback

    report = build_report(scenario_monitor_rollback(), now=NOW)
    assert not any("no failing stage" in g.missing for g in report.gaps)
    assert [w.rule for w in report.whys] == ["symptom.requests", "origin.deploy"]
    assert report.whys[1].because == (
        "revision backend-00002-new came from deploy 20261205-101500-d00d00 by ana, checks passed"
    )
    triggers = [f.text for f in report.factors if f.type is FactorType.TRIGGER]
    assert triggers == [
        "deploy 20261205-101500-d00d00 by ana created backend-00002-new at 2026-12-06T06:53:20.000Z"
    ]
    assert [a.command for a in report.actions] == [
        "rollsafe deploy --env staging --service backend --dry-run"
    ]
    well = [w.text for w in report.went_well]
    assert (
        "the monitor rolled backend back: traffic was back on backend-00001-abc 15 s after the first failing probe"
        in well
    )
    assert any(
        w.startswith("alert ServiceDown fired for backend, 10 s after the first bad answer")
        for w in well
    )
    done = [t.text for t in resolution(report)]
    assert "rollback 20261205-101540-feed00 by the monitor put backend-00001-abc in service" in done
    assert any(
        t.startswith("alert ServiceDown resolved for backend; the monitor acted: `rollsafe rolled")
        for t in done
    )
    assert report.impact.probes_failed == 3
    assert report.impact.first_bad == T0 + 20


def test_the_last_change_before_the_first_bad_answer_is_the_trigger() -> None:
    import dataclasses

    ev = scenario_a()
    # the revision outside rollsafe was created in the window, and served, before version 2
    for n, item in enumerate(ev.evidence):
        if item.kind.value == "revision":
            ev.evidence[n] = dataclasses.replace(item, data={**item.data, "created": T0 - 60})
    report = build_report(ev, now=NOW)
    kinds = {f.text.split(" was ")[0]: f.type for f in report.factors}
    assert kinds["version 2 of service-secret-staging"] is FactorType.TRIGGER
    assert kinds["revision backend-00001-abc"] is FactorType.LATENT
    assert [f.type for f in report.factors].count(FactorType.TRIGGER) == 1


def _rollback_within_off(service: str) -> IncidentReport:
    from rollsafe.incidents import Evidence, EvidenceKind
    from tests.incidents._handmade import scenario_monitor_rollback

    ev = scenario_monitor_rollback()
    ev.evidence.append(
        Evidence(
            "E10",
            EvidenceKind.MANIFEST,
            None,
            "manifest:30",
            "monitor.rollback_within: off",
            {
                "env": "staging",
                "strict": True,
                "key": "monitor.rollback_within",
                "value": None,
                "line": 30,
                "service": service,
            },
        )
    )
    return build_report(ev, now=NOW)


def test_rollback_within_off_applies_to_its_own_service_only() -> None:
    report = _rollback_within_off("backend")
    assert "rollsafe.yaml: services.backend.monitor.rollback_within: 10m" in [
        a.command for a in report.actions if a.type is ActionType.PREVENT
    ]
    assert any(f.text.startswith("the monitor does not roll backend back") for f in report.factors)
    other = _rollback_within_off("web")
    assert not any("rollback_within" in a.command for a in other.actions)
    assert not any("does not roll" in f.text for f in other.factors)


@pytest.mark.parametrize("name", sorted(SCENARIOS), ids=sorted(SCENARIOS))
def test_the_order_of_the_evidence_list_does_not_matter(name: str) -> None:
    ev, again = SCENARIOS[name](), SCENARIOS[name]()
    again.evidence.reverse()
    again.requests = dict(reversed(list(again.requests.items())))
    assert build_report(ev, now=NOW).to_dict() == build_report(again, now=NOW).to_dict()


def test_b_a_revision_without_the_start_up_contract_is_a_latent_factor() -> None:
    import dataclasses

    ev = scenario_b()
    for n, item in enumerate(ev.evidence):
        if item.data.get("revision") == "backend-00002-def" and item.kind.value == "revision":
            ev.evidence[n] = dataclasses.replace(item, data={**item.data, "contract": False})
    report = build_report(ev, now=NOW)
    latent = [f for f in report.factors if "start-up contract" in f.text]
    assert [f.type for f in latent] == [FactorType.LATENT]
    assert latent[0].text.startswith("backend-00002-def runs without rollsafe's start-up contract")
    deploy = next(
        a for a in report.actions if a.command == "rollsafe deploy --env staging --service backend"
    )
    assert deploy.text.endswith(
        "maps JWT_SECRET_KEY and carries the start-up contract (ROLLSAFE_CONTRACT)"
    )
    # not recorded (the key absent): nothing is said about it
    assert not any("contract" in f.text for f in build_report(scenario_b(), now=NOW).factors)
