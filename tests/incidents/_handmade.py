"""Hand-made evidence sets shaped like the issue's three scenarios (in memory, no emulator).

(a) a weak SERVICE_SECRET version reaches a revision created outside rollsafe that maps
    ``latest``: exit 3, then 503s;
(b) a revision created without the JWT_SECRET_KEY mapping: 500s on /api/me, "JWT secret
    not configured" error lines, drift unmapped_secret;
(c) a rollsafe deploy whose verify stage did not pass and was rolled back: 503s on the tag
    URL only.
Plus (d): 503s with nothing else recorded, to show the gaps.
"""

from __future__ import annotations

from typing import Any

from rollsafe.incidents import Episode, Evidence, EvidenceKind, EvidenceSet

K = EvidenceKind
T0 = 1_796_540_000.0  # 2026-12-05T...Z
CANARY = "canary-Zq8vX3-not-a-real-secret"


class _Set:
    def __init__(self, env: str, services: tuple[str, ...], since: float, until: float) -> None:
        self.ev = EvidenceSet(
            env=env, services=services, since=since, until=until, manifest="rollsafe.yaml"
        )

    def add(
        self, kind: EvidenceKind, time: float | None, source: str, excerpt: str, /, **data: Any
    ) -> str:
        eid = f"E{len(self.ev.evidence) + 1}"
        self.ev.evidence.append(Evidence(eid, kind, time, source, excerpt, data))
        return eid


def _revision(
    s: _Set,
    name: str,
    created: float,
    *,
    deploy_id: str | None,
    secrets: dict[str, dict[str, str]],
    ready: bool = True,
    failed: bool = False,
    message: str | None = None,
    traffic: int = 100,
) -> str:
    return s.add(
        K.REVISION,
        created,
        f"run://backend/{name}#Ready",
        f"{name} created; {'Ready' if ready else 'failed'}",
        service="backend",
        revision=name,
        created=created,
        ready=ready,
        failed=failed,
        message=message,
        deploy_id=deploy_id,
        secrets=secrets,
        traffic=traffic,
        serving=traffic > 0,
    )


def _manifest(s: _Set, *, strict: bool, rollback_within: Any) -> None:
    s.add(
        K.MANIFEST,
        None,
        "manifest:8",
        f"environment staging: strict: {str(strict).lower()}",
        env="staging",
        strict=strict,
        key="strict",
        value=strict,
        line=8,
        service=None,
    )
    s.add(
        K.MANIFEST,
        None,
        "manifest:30",
        f"monitor.rollback_within: {rollback_within}",
        env="staging",
        strict=strict,
        key="monitor.rollback_within",
        value=rollback_within,
        line=30,
        service="backend",
    )


def scenario_a() -> EvidenceSet:
    """Weak SERVICE_SECRET version 2 + `latest` mapping + revision outside rollsafe -> 503."""
    s = _Set("staging", ("backend",), T0 - 600, T0 + 400)
    _manifest(s, strict=False, rollback_within=None)
    s.add(
        K.SECRET_VERSION,
        T0 - 3000,
        "sm://service-secret-staging/versions/1",
        "version 1, ENABLED, 44 chars, ~260 bits",
        secret="service-secret-staging",
        version=1,
        created=T0 - 3000,
        state="ENABLED",
        length=44,
        bits=260.0,
        classes=["lower", "upper", "digit"],
        weak=False,
        env_vars=["SERVICE_SECRET"],
    )
    _revision(
        s,
        "backend-00001-abc",
        T0 - 2000,
        deploy_id=None,
        secrets={
            "SERVICE_SECRET": {"secret": "service-secret-staging", "version": "latest"},
            "JWT_SECRET_KEY": {"secret": "jwt-secret-key-staging", "version": "latest"},
        },
    )
    s.add(
        K.SECRET_VERSION,
        T0,
        "sm://service-secret-staging/versions/2",
        "version 2, ENABLED, 11 chars, ~62 bits",
        secret="service-secret-staging",
        version=2,
        created=T0,
        state="ENABLED",
        length=11,
        bits=62.3,
        classes=["lower", "digit"],
        weak=True,
        env_vars=["SERVICE_SECRET"],
    )
    s.add(
        K.LOG,
        T0 + 20,
        "log://run.googleapis.com%2Fstderr/g1",
        "CRITICAL rollsafe.startup failed: machine_secret failed for SERVICE_SECRET",
        service="backend",
        revision="backend-00001-abc",
        log="run.googleapis.com/stderr",
        severity="CRITICAL",
        text="start-up refused: SERVICE_SECRET: machine_secret: about 62 bits, needs 128",
        count=4,
        first=T0 + 20,
        last=T0 + 200,
        exit_code=None,
        guard={
            "outcome": "failed",
            "failures": [
                {"key": "SERVICE_SECRET", "rule": "machine_secret", "message": "about 62 bits"}
            ],
        },
    )
    s.add(
        K.LOG,
        T0 + 21,
        "log://run.googleapis.com%2Fvarlog%2Fsystem/x1",
        "Container called exit(3).",
        service="backend",
        revision="backend-00001-abc",
        log="run.googleapis.com/varlog/system",
        severity="WARNING",
        text="Container called exit(3).",
        count=4,
        first=T0 + 21,
        last=T0 + 201,
        exit_code=3,
        guard=None,
    )
    s.add(
        K.REQUEST,
        T0 + 22,
        "log://run.googleapis.com%2Frequests/r1",
        "backend-00001-abc answered 503 to 40 requests",
        service="backend",
        revision="backend-00001-abc",
        status=503,
        count=40,
        first=T0 + 22,
        last=T0 + 260,
        paths={"/": 30, "/health": 10},
        tag=False,
    )
    s.add(
        K.DRIFT,
        T0 + 400,
        "drift:stale_latest/SERVICE_SECRET",
        "now: backend maps SERVICE_SECRET at latest",
        kind="stale_latest",
        service="backend",
        key="SERVICE_SECRET",
        severity="warning",
        message="maps latest",
        manifest=None,
        store=None,
        deployed=None,
        fix=None,
    )
    s.add(
        K.CHECK,
        T0 + 400,
        "check:machine_secret/SERVICE_SECRET",
        "machine_secret fails for SERVICE_SECRET",
        rule="machine_secret",
        service="backend",
        key="SERVICE_SECRET",
        severity="error",
        message="about 62 bits",
        secret="service-secret-staging",
        version=2,
    )
    s.ev.requests = {
        "backend/backend-00001-abc": {
            "total": 100,
            "failed": 40,
            "statuses": {200: 60, 503: 40},
            "tag_total": 0,
            "tag_failed": 0,
        }
    }
    return s.ev


def scenario_b() -> EvidenceSet:
    """A revision without the JWT_SECRET_KEY mapping -> 500 on /api/me."""
    s = _Set("staging", ("backend",), T0 - 600, T0 + 400)
    _manifest(s, strict=True, rollback_within="15m")
    s.add(
        K.MANIFEST,
        None,
        "manifest:31",
        "secrets.JWT_SECRET_KEY: jwt-secret-key-{env}",
        env="staging",
        strict=True,
        key="secrets.JWT_SECRET_KEY",
        service="backend",
        value="jwt-secret-key-{env}",
        line=31,
    )
    _revision(
        s,
        "backend-00001-abc",
        T0 - 2000,
        deploy_id="20261205-100000-aaaaaa",
        traffic=0,
        secrets={
            "SERVICE_SECRET": {"secret": "service-secret-staging", "version": "1"},
            "JWT_SECRET_KEY": {"secret": "jwt-secret-key-staging", "version": "1"},
        },
    )
    _revision(
        s,
        "backend-00002-def",
        T0,
        deploy_id=None,
        secrets={"SERVICE_SECRET": {"secret": "service-secret-staging", "version": "1"}},
    )
    s.add(
        K.REQUEST,
        T0 + 30,
        "log://run.googleapis.com%2Frequests/r2",
        "backend-00002-def answered 500 to 12 requests",
        service="backend",
        revision="backend-00002-def",
        status=500,
        count=12,
        first=T0 + 30,
        last=T0 + 300,
        paths={"/api/me": 12},
        tag=False,
    )
    s.add(
        K.LOG,
        T0 + 30,
        "log://run.googleapis.com%2Fstderr/l2",
        'ERROR {"message": "JWT secret not configured"}',
        service="backend",
        revision="backend-00002-def",
        log="run.googleapis.com/stderr",
        severity="ERROR",
        text="JWT secret not configured",
        count=12,
        first=T0 + 30,
        last=T0 + 300,
        exit_code=None,
        guard=None,
    )
    s.add(
        K.ALERT,
        T0 + 90,
        "monitor:jwt/firing@2026-12-05T...",
        "jwt firing",
        service="backend",
        alertname="jwt",
        event="firing",
        starts_at=T0 + 90,
        ends_at=None,
        severity="critical",
        summary="1 log line(s) match jwt",
        revision="backend-00002-def",
        cites=[],
        action=None,
    )
    s.add(
        K.DRIFT,
        T0 + 400,
        "drift:unmapped_secret/JWT_SECRET_KEY",
        "now: backend-00002-def does not map JWT_SECRET_KEY",
        kind="unmapped_secret",
        service="backend",
        key="JWT_SECRET_KEY",
        severity="error",
        message="not mapped",
        manifest={"secret": "jwt-secret-key-staging"},
        store=None,
        deployed=None,
        fix="rollsafe deploy --env staging --service backend",
    )
    s.ev.requests = {
        "backend/backend-00002-def": {
            "total": 80,
            "failed": 12,
            "statuses": {200: 68, 500: 12},
            "tag_total": 0,
            "tag_failed": 0,
        }
    }
    return s.ev


def scenario_c() -> EvidenceSet:
    """A rollsafe deploy whose verify stage did not pass; rolled back; tag-URL 503s only."""
    s = _Set("staging", ("backend",), T0 - 600, T0 + 120)
    _manifest(s, strict=True, rollback_within="15m")
    dep = "20261205-101010-c0ffee"
    _revision(
        s,
        "backend-00001-abc",
        T0 - 5000,
        deploy_id="20261204-090000-aaaaaa",
        secrets={"SERVICE_SECRET": {"secret": "service-secret-staging", "version": "1"}},
    )
    s.add(
        K.DEPLOY,
        T0 + 12,
        f"journal:{dep}/outcome",
        "deploy ... rolled-back (exit 3)",
        deploy_id=dep,
        service="backend",
        revision="backend-00002-new",
        previous_revision="backend-00001-abc",
        user="ana",
        host="ci-7",
        ci_url=None,
        git_commit="abc123",
        checks="passed",
        forced=False,
        reason=None,
        outcome="rolled-back",
        exit_code=3,
        message="verification failed",
        started=T0,
        finished=T0 + 12,
        rollback={"to": "backend-00001-abc"},
        by_monitor=False,
    )
    for name, start, secs, ok, detail in [
        ("plan", T0, 0.1, True, None),
        ("preflight", T0 + 0.1, 0.4, True, None),
        ("create", T0 + 0.5, 3.0, True, None),
        ("verify", T0 + 3.5, 8.0, False, "/health answered 503"),
        ("rollback", T0 + 11.5, 0.42, True, "traffic back on backend-00001-abc"),
    ]:
        s.add(
            K.STAGE,
            start,
            f"journal:{dep}/{name}",
            f"{name} {'ok' if ok else 'failed'}",
            deploy_id=dep,
            service="backend",
            stage=name,
            started=start,
            seconds=secs,
            ok=ok,
            detail=detail,
        )
    _revision(
        s,
        "backend-00002-new",
        T0 + 1,
        deploy_id=dep,
        ready=False,
        failed=True,
        traffic=0,
        message="The user-provided container exited",
        secrets={"SERVICE_SECRET": {"secret": "service-secret-staging", "version": "3"}},
    )
    s.add(
        K.SECRET_VERSION,
        T0 - 100,
        "sm://service-secret-staging/versions/3",
        "version 3, 8 chars, ~40 bits",
        secret="service-secret-staging",
        version=3,
        created=T0 - 100,
        state="ENABLED",
        length=8,
        bits=40.0,
        classes=["lower"],
        weak=True,
        env_vars=["SERVICE_SECRET"],
    )
    s.add(
        K.REQUEST,
        T0 + 4,
        "log://run.googleapis.com%2Frequests/r3",
        "backend-00002-new answered 503 to 3 requests on a tag URL",
        service="backend",
        revision="backend-00002-new",
        status=503,
        count=3,
        first=T0 + 4,
        last=T0 + 11,
        paths={"/health": 3},
        tag=True,
    )
    s.add(
        K.LOG,
        T0 + 3,
        "log://run.googleapis.com%2Fvarlog%2Fsystem/x3",
        "Container called exit(3).",
        service="backend",
        revision="backend-00002-new",
        log="run.googleapis.com/varlog/system",
        severity="WARNING",
        text="Container called exit(3).",
        count=2,
        first=T0 + 3,
        last=T0 + 9,
        exit_code=3,
        guard=None,
    )
    s.ev.requests = {
        "backend/backend-00002-new": {
            "total": 3,
            "failed": 3,
            "statuses": {503: 3},
            "tag_total": 3,
            "tag_failed": 3,
        },
        "backend/backend-00001-abc": {
            "total": 50,
            "failed": 0,
            "statuses": {200: 50},
            "tag_total": 0,
            "tag_failed": 0,
        },
    }
    return s.ev


def scenario_missing() -> EvidenceSet:
    """503s and nothing else: no logs, no revision, no alert."""
    s = _Set("dev", ("web",), T0 - 600, T0 + 400)
    s.add(
        K.REQUEST,
        T0,
        "log://run.googleapis.com%2Frequests/r4",
        "web-00003-zzz answered 503 to 5 requests",
        service="web",
        revision="web-00003-zzz",
        status=503,
        count=5,
        first=T0,
        last=T0 + 50,
        paths={"/": 5},
        tag=False,
    )
    s.ev.requests = {
        "web/web-00003-zzz": {
            "total": 9,
            "failed": 5,
            "statuses": {200: 4, 503: 5},
            "tag_total": 0,
            "tag_failed": 0,
        }
    }
    s.ev.unreadable = [("Secret Manager", "403 permission denied on secretmanager.versions.list")]
    return s.ev


def episode_for(ev: EvidenceSet) -> Episode:
    return Episode(
        id="INC-20261205-100000-backend",
        kinds=("requests",),
        start=ev.since + 600,
        end=ev.until - 100,
        services=ev.services,
        title="backend answered 5xx",
        sources=(),
    )


def scenario_monitor_rollback() -> EvidenceSet:
    """A rollsafe deploy that passed verification, went down, and the monitor rolled back."""
    s = _Set("staging", ("backend",), T0 - 600, T0 + 400)
    dep, back = "20261205-101500-d00d00", "20261205-101540-feed00"
    _revision(
        s,
        "backend-00001-abc",
        T0 - 5000,
        deploy_id="20261204-090000-aaaaaa",
        secrets={"SERVICE_SECRET": {"secret": "service-secret-staging", "version": "1"}},
    )
    _revision(
        s,
        "backend-00002-new",
        T0 + 1,
        deploy_id=dep,
        traffic=0,
        secrets={"SERVICE_SECRET": {"secret": "service-secret-staging", "version": "1"}},
    )
    common = {
        "host": "ci-7",
        "ci_url": None,
        "git_commit": None,
        "forced": False,
        "reason": None,
        "message": None,
        "rollback": None,
    }
    s.add(
        K.DEPLOY,
        T0 + 10,
        f"journal:{dep}/outcome",
        "deploy rolled-back by the monitor",
        deploy_id=dep,
        service="backend",
        revision="backend-00002-new",
        previous_revision="backend-00001-abc",
        user="ana",
        checks="passed",
        outcome="rolled-back",
        exit_code=0,
        started=T0,
        finished=T0 + 10,
        by_monitor=False,
        **common,
    )
    s.add(
        K.STAGE,
        T0 + 3,
        f"journal:{dep}/verify",
        "verify ok",
        deploy_id=dep,
        service="backend",
        stage="verify",
        started=T0 + 3,
        seconds=2.0,
        ok=True,
        detail=None,
    )
    s.add(
        K.REQUEST,
        T0 + 20,
        "log://run.googleapis.com%2Frequests/r5",
        "backend-00002-new answered 503 to 6 requests",
        service="backend",
        revision="backend-00002-new",
        status=503,
        count=6,
        first=T0 + 20,
        last=T0 + 38,
        paths={"/": 6},
        tag=False,
    )
    s.add(
        K.PROBE,
        T0 + 25,
        "monitor:probes/backend",
        "probes",
        service="backend",
        total=40,
        failed=3,
        first_failed=T0 + 25,
        last_failed=T0 + 38,
        statuses={"503": 3, "200": 37},
    )
    s.add(
        K.ALERT,
        T0 + 30,
        "monitor:ServiceDown/firing@x",
        "ServiceDown firing",
        service="backend",
        alertname="ServiceDown",
        event="firing",
        starts_at=T0 + 30,
        ends_at=T0 + 45,
        severity="critical",
        summary="backend fails its health probe",
        revision="backend-00002-new",
        cites=[],
        action="rollsafe rolled backend back to backend-00001-abc",
    )
    s.add(
        K.DEPLOY,
        T0 + 40,
        f"journal:{back}/outcome",
        "rollback by the monitor",
        deploy_id=back,
        service="backend",
        revision="backend-00001-abc",
        previous_revision="backend-00002-new",
        user="monitor",
        checks="rollback",
        outcome="succeeded",
        exit_code=0,
        started=T0 + 39,
        finished=T0 + 40,
        by_monitor=True,
        **common,
    )
    s.add(
        K.ALERT,
        T0 + 45,
        "monitor:ServiceDown/resolved@x",
        "ServiceDown resolved",
        service="backend",
        alertname="ServiceDown",
        event="resolved",
        starts_at=T0 + 30,
        ends_at=T0 + 45,
        severity="critical",
        summary="passes again",
        revision="backend-00002-new",
        cites=[],
        action="rollsafe rolled backend back to backend-00001-abc",
    )
    s.ev.requests = {
        "backend/backend-00002-new": {
            "total": 20,
            "failed": 6,
            "statuses": {200: 14, 503: 6},
            "tag_total": 0,
            "tag_failed": 0,
        }
    }
    return s.ev


SCENARIOS = {
    "a": scenario_a,
    "b": scenario_b,
    "c": scenario_c,
    "missing": scenario_missing,
    "monitor": scenario_monitor_rollback,
}
