"""Issue 13's acceptance: three incidents on the emulator, then the real CLI's reports.

Each scenario (``_scenarios.py``) makes its incident with Google's own clients (or
``rollsafe deploy``), checks that the raw evidence is where Google keeps it (request logs,
Cloud Run's system log, the guard's CRITICAL line, Secret Manager's versions, the journal),
then runs ``rollsafe incidents`` and ``rollsafe why`` (JSON, Markdown, HTML) as processes
(``_reports.py``) and checks the reports: the shared acceptance (``_acceptance.py``:
citations that resolve, statuses as logged, no secret value, the schema, the sections, no
hindsight words) and, here, the causal chain each incident must reach.

The checks of one scenario are all made and reported together (``Verdicts``), so one run
shows every gap of a report at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy.conftest import ENV, SERVICE, Site
from tests.incidents._acceptance import check_common
from tests.incidents._reports import (
    STATUS,
    Reports,
    Verdicts,
    run_reports,
    section,
    sources,
    text_of,
    why_citing,
    whys,
)
from tests.incidents._scenarios import (
    SYSTEM_LOG,
    Google,
    Incident,
    RequestEntry,
    deploy_rolled_back,
    missing_jwt_mapping,
    settled_requests,
    weak_secret_while_running,
)

STDERR_LOG = "run.googleapis.com%2Fstderr"


# -- raw evidence: what Google holds, read with Google's clients --------------------------


def _payloads(entries: list[Any]) -> list[str]:
    return [e.payload if isinstance(e.payload, str) else json.dumps(e.payload) for e in entries]


def raw_weak_secret(v: Verdicts, incident: Incident, logged: list[RequestEntry]) -> None:
    google, rev = incident.google, incident.revision
    system = _payloads(google.revision_entries(rev, SYSTEM_LOG))
    v.check(
        "raw: system log has `Container called exit(3).`",
        "Container called exit(3)." in system,
        system,
    )
    critical = [
        e.payload
        for e in google.revision_entries(rev, STDERR_LOG, "severity=CRITICAL")
        if isinstance(e.payload, dict)
    ]
    v.check(
        "raw: the guard's CRITICAL line names machine_secret for SERVICE_SECRET",
        any(
            f.get("key") == "SERVICE_SECRET" and f.get("rule") == "machine_secret"
            for c in critical
            for f in c.get("failures") or []
        ),
        critical,
    )
    v.check("raw: request log holds 503s", any(e.status == 503 for e in logged), logged)
    v.check("raw: request log holds no 500", not any(e.status == 500 for e in logged))
    times = google.version_times("service-secret-staging")
    v.check(
        "raw: the weak version was created after the revision",
        incident.weak_version in times and times[incident.weak_version] > incident.started,
        times,
    )


def raw_missing_jwt(v: Verdicts, incident: Incident, logged: list[RequestEntry]) -> None:
    errors = [
        e
        for e in incident.google.revision_entries(incident.revision, STDERR_LOG, "severity=ERROR")
        if isinstance(e.payload, dict) and e.payload.get("message") == "JWT secret not configured"
    ]
    v.check("raw: stderr has `JWT secret not configured` at ERROR", errors)
    failed = [e for e in logged if e.status >= 500]
    v.check(
        "raw: request log holds 500s on /api/me only",
        failed and {(e.status, e.path) for e in failed} == {(500, "/api/me")},
        failed,
    )


def raw_rolled_back(v: Verdicts, incident: Incident, logged: list[RequestEntry]) -> None:
    record = incident.site.journal.get(incident.deploy_id or "")
    v.check(
        "raw: the journal holds the deploy, rolled back",
        record is not None and record.outcome == "rolled-back",
        record,
    )
    host = incident.google.service_host()
    v.check(
        "raw: the new revision's /health answered 503 on its tag URL",
        any(e.status == 503 and e.path == "/health" and e.host != host for e in logged),
        logged,
    )
    v.check("raw: users got no 5xx", not any(e.status >= 500 and e.host == host for e in logged))


# -- the chains -----------------------------------------------------------------------------


def chain_weak_secret(v: Verdicts, incident: Incident, reports: Reports) -> None:
    report, rev, n = reports.report, incident.revision, incident.weak_version
    secret = f"sm://service-secret-{ENV}/versions/{n}"

    def request_503(s: str) -> bool:
        return s.startswith("log://run.googleapis.com%2Frequests/")

    links = {
        "503": why_citing(report, request_503, r"\b503\b"),
        "exit 3": why_citing(
            report,
            lambda s: "varlog/system" in s or "varlog%2Fsystem" in s,
            r"exit\W*(code\W*)?\(?3\b",
        ),
        "guard": why_citing(report, lambda s: "stderr" in s, r"machine_secret"),
        "secret version": why_citing(report, lambda s: s == secret, rf"version {n}\b"),
        "latest": why_citing(
            report,
            lambda s: (
                s.startswith(f"run://{SERVICE}/{rev}") or s == "drift:stale_latest/SERVICE_SECRET"
            ),
            r"\blatest\b",
        ),
        "outside rollsafe": why_citing(
            report, lambda s: s.startswith(f"run://{SERVICE}/{rev}"), r"outside rollsafe"
        ),
    }
    for name, index in links.items():
        v.check(
            f"(a) the chain reaches: {name}",
            index is not None,
            json.dumps(whys(report), indent=1)[:1500],
        )
    found = [i for i in links.values() if i is not None]
    v.check(
        "(a) the links go from the 503s to their causes, in order", found == sorted(found), links
    )
    v.check(
        "(a) the guard link names SERVICE_SECRET",
        links["guard"] is not None and "SERVICE_SECRET" in text_of(whys(report)[links["guard"]]),
    )
    v.check(
        "(a) the secret-version link states the estimated bits",
        links["secret version"] is not None
        and re.search(r"\d+ (estimated )?bits", text_of(whys(report)[links["secret version"]])),
    )
    # the instance went away (SIGKILL) before its restarts exited 3: the 503 link cites both
    system = incident.google.revision_entries(rev, SYSTEM_LOG)
    stopped = next((e for e in system if "signal 9" in str(e.payload)), None)
    exited = next((e for e in system if "exit(3)" in str(e.payload)), None)
    link = links["503"]
    cited = sources(report, whys(report)[link]["evidence"]) if link is not None else []
    v.check(
        "(a) the 503 link cites the instance stopping (signal 9) and the first exit(3) entries",
        stopped is not None
        and exited is not None
        and f"log://run.googleapis.com/varlog/system/{stopped.insert_id}" in cited
        and f"log://run.googleapis.com/varlog/system/{exited.insert_id}" in cited,
        cited,
    )
    triggers = [f for f in report.get("factors") or [] if f.get("type") == "trigger"]
    v.check(
        "(a) the one trigger is the weak secret version",
        len(triggers) == 1 and secret in sources(report, triggers[0].get("evidence") or ()),
        triggers,
    )
    latent = [f for f in report.get("factors") or [] if f.get("type") == "latent"]
    v.check(
        "(a) no factor says the revision lacks the start-up contract (it carries one)",
        not any("ROLLSAFE_CONTRACT" in f.get("text", "") for f in report.get("factors") or []),
        report.get("factors"),
    )
    v.check(
        "(a) the revision made outside rollsafe is a latent factor",
        any(re.search(r"outside rollsafe", f.get("text", "")) for f in latent),
        latent,
    )
    v.check(
        "(a) a latent factor is the `latest` mapping",
        any(re.search(r"\blatest\b", f.get("text", "")) for f in latent),
        latent,
    )
    commands = " ".join(a.get("command", "") for a in report.get("actions") or [])
    v.check(
        "(a) an action rotates the secret",
        f"rollsafe secret rotate service-secret-{ENV} --env {ENV}" in commands,
        commands,
    )
    v.check(
        "(a) an action pins the versions with a rollsafe deploy",
        f"rollsafe deploy --env {ENV} --service {SERVICE}" in commands,
        commands,
    )
    gaps = " ".join(f"{g.get('missing')} {g.get('how')}" for g in report.get("gaps") or [])
    v.check(
        "(a) a gap says who added the version needs Data Access audit logs",
        re.search(r"audit log", gaps, re.I),
        gaps,
    )
    text = (report.get("summary") or {}).get("text", "")
    v.check("(a) the summary says 503", "503" in STATUS.findall(text), text)
    if incident.monitor_output:
        alerts = [e for e in report.get("evidence") or [] if e["kind"] == "alert"]
        v.check(
            "(a) the monitor's ServiceDown alert is evidence",
            any(e["source"].startswith("monitor:ServiceDown/firing@") for e in alerts),
            alerts,
        )
        cited = {
            c
            for part in ("whys", "timeline")
            for i in report.get(part) or []
            for c in i["evidence"]
        }
        v.check("(a) the alert is cited (timeline or chain)", {e["id"] for e in alerts} & cited)
        probes = [e for e in report.get("evidence") or [] if e["kind"] == "probe"]
        v.check("(a) the monitor's probes are evidence", probes)
        v.check(
            "(a) impact counts the failed probes",
            ((report.get("impact") or {}).get("probes") or {}).get("failed"),
            report.get("impact"),
        )


def chain_missing_jwt(v: Verdicts, incident: Incident, reports: Reports) -> None:
    report, rev = reports.report, incident.revision
    links = {
        "500": why_citing(
            report, lambda s: s.startswith("log://run.googleapis.com%2Frequests/"), r"\b500\b"
        ),
        "JWT error line": why_citing(report, lambda s: "stderr" in s, r"JWT secret not configured"),
        "unmapped_secret": why_citing(
            report, lambda s: s == "drift:unmapped_secret/JWT_SECRET_KEY"
        ),
        "outside rollsafe": why_citing(
            report, lambda s: s.startswith(f"run://{SERVICE}/{rev}"), r"outside rollsafe"
        ),
    }
    for name, index in links.items():
        v.check(
            f"(b) the chain reaches: {name}",
            index is not None,
            json.dumps(whys(report), indent=1)[:1500],
        )
    found = [i for i in links.values() if i is not None]
    v.check(
        "(b) the links go from the 500s to their causes, in order", found == sorted(found), links
    )
    v.check(
        "(b) the 500 link names /api/me",
        links["500"] is not None and "/api/me" in text_of(whys(report)[links["500"]]),
    )
    text = (report.get("summary") or {}).get("text", "")
    v.check(
        "(b) the summary says 500 (as logged), not 503", set(STATUS.findall(text)) == {"500"}, text
    )
    latent = [f for f in report.get("factors") or [] if f.get("type") == "latent"]
    v.check(
        "(b) a latent factor: the revision runs without the start-up contract (no guard)",
        any("ROLLSAFE_CONTRACT" in f.get("text", "") for f in latent),
        latent,
    )
    triggers = [f for f in report.get("factors") or [] if f.get("type") == "trigger"]
    v.check(
        "(b) the trigger is the revision made outside rollsafe",
        len(triggers) == 1
        and any(
            s.startswith(f"run://{SERVICE}/{rev}")
            for s in sources(report, triggers[0].get("evidence") or ())
        ),
        triggers,
    )
    actions = report.get("actions") or []
    v.check(
        "(b) an action maps JWT_SECRET_KEY (cites the drift)",
        any(
            "JWT_SECRET_KEY" in text_of(a)
            and "drift:unmapped_secret/JWT_SECRET_KEY" in sources(report, a.get("evidence") or ())
            for a in actions
        ),
        actions,
    )


def chain_rolled_back(v: Verdicts, incident: Incident, reports: Reports) -> None:
    report, rev, old, deploy = (
        reports.report,
        incident.revision,
        incident.previous,
        incident.deploy_id,
    )
    impact = report.get("impact") or {}
    v.check(
        "(c) impact near zero: no user request failed",
        (impact.get("requests") or {}).get("failed") == 0,
        impact,
    )
    v.check("(c) impact lists the new revision", rev in (impact.get("revisions") or []), impact)
    triggers = [f for f in report.get("factors") or [] if f.get("type") == "trigger"]
    v.check(
        "(c) the trigger is the deploy",
        len(triggers) == 1
        and f"journal:{deploy}/outcome" in sources(report, triggers[0].get("evidence") or ()),
        triggers,
    )
    verify = why_citing(report, lambda s: s == f"journal:{deploy}/verify", r"health")
    v.check(
        "(c) the cause is the failing revision's health (cites the verify stage)",
        verify is not None and rev in text_of(whys(report)[verify]),
        json.dumps(whys(report), indent=1)[:1500],
    )
    v.check(
        "(c) the chain says users were not served by it",
        any(re.search(r"tag URL", text_of(w)) for w in whys(report)),
        whys(report),
    )
    went = report.get("went_well") or []
    back = [
        w for w in went if f"journal:{deploy}/rollback" in sources(report, w.get("evidence") or ())
    ]
    v.check(
        "(c) went well: traffic back on the old revision, the rollback time stated",
        any(
            old in w.get("text", "") and re.search(r"\d+(\.\d+)? ?s\b", w.get("text", ""))
            for w in back
        ),
        went,
    )
    timeline = " ".join(t.get("text", "") for t in report.get("timeline") or [])
    v.check(
        "(c) the timeline has the rollback", re.search(r"roll(ed)? ?back", timeline, re.I), timeline
    )
    text = (report.get("summary") or {}).get("text", "")
    v.check("(c) the summary says it was rolled back", re.search(r"rolled back", text, re.I), text)
    v.check(
        "(c) the Markdown states the rollback time",
        re.search(
            r"\d+(\.\d+)? ?s\b",
            section(reports.markdown, "Lessons Learned") + section(reports.markdown, "Resolution"),
        ),
        reports.markdown[:3000],
    )


# -- the scenarios ----------------------------------------------------------------------------


SCENARIOS: dict[str, tuple[Callable[..., Incident], Callable[..., None], Callable[..., None]]] = {
    "a-weak-secret-latest": (
        lambda site, google: weak_secret_while_running(site, google, monitor=True),
        raw_weak_secret,
        chain_weak_secret,
    ),
    "b-unmapped-jwt": (missing_jwt_mapping, raw_missing_jwt, chain_missing_jwt),
    "c-deploy-rolled-back": (deploy_rolled_back, raw_rolled_back, chain_rolled_back),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS), ids=list(SCENARIOS))
def test_scenario(scenario: str, site: Site, google: Google) -> None:
    """The incident, its raw evidence, then the CLI's reports: shared checks and its chain."""
    build, raw, chain = SCENARIOS[scenario]
    incident = build(site, google)
    v = Verdicts(scenario)
    raw(v, incident, settled_requests(google, incident.started - 1))
    reports = run_reports(incident)
    logged = google.requests(reports.since, reports.until)
    check_common(v, incident, reports, logged)
    chain(v, incident, reports)
    v.done()
