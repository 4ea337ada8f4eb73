"""EvidenceCollector on the emulator: every source read through its adapter, the data
contract of each kind, ids in time order, unreadable sources listed, no secret value."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from rollsafe.incidents import _log_evidence
from rollsafe.incidents._gather import Scrubber
from rollsafe.incidents._log_evidence import chunks, parse_guard, template
from rollsafe.incidents.collect import EvidenceCollector, number
from rollsafe.incidents.model import Evidence, EvidenceKind, EvidenceSet
from rollsafe.monitor.history import AlertRecord, history_namespace
from rollsafe.monitor.samples import ProbeRecorder
from rollsafe.state.base import StateUnavailableError
from rollsafe.state.memory import MemoryStateStore
from tests.conftest import CANARY_STRONG
from tests.deploy.conftest import ENV, SERVICE, Site
from tests.incidents._entries import Entries

#: a weak value planted in the store and printed by the service: it must be scrubbed
CANARY_WEAK = "canary-weak-netra-Q7"

#: EvidenceKind's ``data`` contract (model.py): every key, no other
CONTRACT = {
    EvidenceKind.DEPLOY: {
        "deploy_id", "service", "revision", "previous_revision", "user", "host", "ci_url",
        "git_commit", "checks", "forced", "reason", "outcome", "exit_code", "message",
        "started", "finished", "rollback", "by_monitor",
    },
    EvidenceKind.STAGE: {"deploy_id", "service", "stage", "started", "seconds", "ok", "detail"},
    EvidenceKind.REVISION: {
        "service", "revision", "created", "ready", "failed", "message", "deploy_id",
        "secrets", "traffic", "serving", "contract",
    },
    EvidenceKind.REQUEST: {
        "service", "revision", "status", "count", "first", "last", "paths", "tag",
    },
    EvidenceKind.LOG: {
        "service", "revision", "log", "severity", "text", "count", "first", "last",
        "exit_code", "guard",
    },
    EvidenceKind.SECRET_VERSION: {
        "secret", "version", "created", "state", "length", "bits", "classes", "weak",
        "env_vars",
    },
    EvidenceKind.ALERT: {
        "service", "alertname", "event", "starts_at", "ends_at", "severity", "summary",
        "revision", "cites", "action",
    },
    EvidenceKind.PROBE: {
        "service", "total", "failed", "first_failed", "last_failed", "statuses",
    },
    EvidenceKind.DRIFT: {
        "kind", "service", "key", "severity", "message", "manifest", "store", "deployed",
        "fix",
    },
    EvidenceKind.CHECK: {"rule", "service", "key", "severity", "message", "secret", "version"},
    # + service (C asked for it: the service of a per-service setting, None for strict)
    EvidenceKind.MANIFEST: {"env", "strict", "key", "value", "line", "service"},
}  # fmt: skip


def _collector(site: Site, **kw: Any) -> EvidenceCollector:
    kw.setdefault("state", site.journal.store)
    kw.setdefault("logs", site.logs)
    return EvidenceCollector(site.env, platform=site.platform, secrets=site.store, **kw)


def _everything(found: EvidenceSet) -> str:
    """Every text of the set, as a reader of any format could see it."""
    return json.dumps(
        {
            "evidence": [{**e.to_dict(), "data": e.data} for e in found.evidence],
            "requests": found.requests,
            "unreadable": found.unreadable,
        },
        default=str,
    )


def _one(found: EvidenceSet, kind: EvidenceKind, **match: Any) -> Evidence:
    hits = [e for e in found.by_kind(kind) if all(e.data.get(k) == v for k, v in match.items())]
    assert len(hits) == 1, (kind, match, [e.source for e in found.by_kind(kind)])
    return hits[0]


def _record_monitor(site: Site, revision: str, start: float) -> None:
    store = site.journal.store
    record = AlertRecord(
        service=SERVICE,
        alertname="ServiceDown",
        severity="critical",
        summary="backend answers 503 on /health",
        description="",
        revision=revision,
        evidence=("log://run.googleapis.com/varlog/system/x1",),
        starts_at=start,
        fired_at=start + 2,
        ends_at=start + 3,
        action=None,
    )
    store.kv_put(history_namespace(ENV), record.key, record.to_json())
    probes = ProbeRecorder(store, ENV)
    probes.add(SERVICE, start + 1, False, 503, 0.01)
    probes.add(SERVICE, start + 2, False, None, None)
    probes.add(SERVICE, start + 8, True, 200, 0.02)
    probes.flush(start + 10, force=True)


def test_collects_every_source_of_a_deployed_service(site: Site) -> None:
    since = time.time() - 1
    revision = site.baseline()
    site.store.add_version("service-secret-staging", CANARY_WEAK)
    url = site.service().url
    assert url is not None
    tag_url = url.replace("127.0.0.1", "localhost")  # another host: a tag URL's
    at = time.time()
    logs = Entries(site.endpoint, site.env.gcp_project)
    guard = {
        "message": "start-up failed in phase secrets: SERVICE_SECRET machine_secret: "
        "estimated 62 bits of randomness, needs 128; JWT_SECRET_KEY jwt_hmac: is 20 bytes",
        "event": "rollsafe.startup",
        "outcome": "failed",
        "failures": [
            {"key": "SERVICE_SECRET", "rule": "machine_secret", "message": "62 bits"},
            {"key": "JWT_SECRET_KEY", "rule": "jwt_hmac", "message": "is 20 bytes"},
        ],
        "exit_code": 3,
    }
    system = "run.googleapis.com/varlog/system"
    logs.write(
        logs.request(SERVICE, revision, at, 503, f"{url}/health"),
        logs.request(SERVICE, revision, at + 0.1, 503, f"{url}/api/me"),
        logs.request(SERVICE, revision, at + 0.2, 503, f"{url}/health"),
        logs.request(SERVICE, revision, at + 0.3, 503, f"{tag_url}/health"),
        logs.request(SERVICE, revision, at + 0.4, 500, f"{url}/api/me"),
        logs.request(SERVICE, revision, at + 0.5, 200, f"{url}/health"),
        logs.json_line(SERVICE, revision, at + 0.6, guard, "CRITICAL"),
        logs.line(SERVICE, revision, at + 0.7, "Container called exit(3).", log=system),
        logs.line(SERVICE, revision, at + 1.7, "Container called exit(3).", log=system),
        logs.line(SERVICE, revision, at + 0.8, f"loaded secret {CANARY_WEAK} for signing"),
        logs.line(SERVICE, revision, at + 0.9, "request 1234 took 5 ms", severity="INFO"),
    )
    _record_monitor(site, revision, at)
    found = _collector(site).collect([SERVICE], since, time.time() + 5)

    # every kind, each with exactly its contract's data keys
    assert {e.kind for e in found.evidence} == set(EvidenceKind)
    for piece in found.evidence:
        assert set(piece.data) == CONTRACT[piece.kind], piece.source
    # ids E1.. in (time or since, source) order
    assert [e.id for e in found.evidence] == [f"E{i}" for i in range(1, len(found.evidence) + 1)]
    keys = [(e.time if e.time is not None else since, e.source) for e in found.evidence]
    assert keys == sorted(keys)
    assert found.unreadable == []
    assert (found.env, found.services, found.strict) == (ENV, (SERVICE,), True)

    # no secret value anywhere; the one the service printed is scrubbed
    text = _everything(found)
    for value in [*site.values, CANARY_WEAK]:
        assert value not in text
    printed = _one(found, EvidenceKind.LOG, log="run.googleapis.com/stderr", severity="ERROR")
    assert printed.excerpt == "loaded secret *** for signing"
    assert not [e for e in found.by_kind(EvidenceKind.LOG) if "took" in e.excerpt]  # INFO

    # the deploy, its stages and its revision
    deploy = _one(found, EvidenceKind.DEPLOY, revision=revision)
    assert deploy.source == f"journal:{deploy.data['deploy_id']}/outcome"
    assert (deploy.data["outcome"], deploy.data["checks"], deploy.data["by_monitor"]) == (
        "succeeded",
        "passed",
        False,
    )
    stages = [e.data["stage"] for e in found.by_kind(EvidenceKind.STAGE)]
    assert stages[:3] == ["plan", "preflight", "create"]
    assert "verify" in stages
    rev = _one(found, EvidenceKind.REVISION, revision=revision)
    assert rev.source == f"run://{SERVICE}/{revision}#Ready"
    assert rev.data["deploy_id"] == deploy.data["deploy_id"]
    assert rev.data["contract"] is True  # rollsafe's deploy gives the guard its contract
    assert rev.data["secrets"]["SERVICE_SECRET"] == {
        "secret": "service-secret-staging",
        "version": "1",
    }
    assert (rev.data["ready"], rev.data["serving"], rev.data["traffic"]) == (True, True, 100)

    # requests: counted per revision, 5xx grouped by status (and tag URL), first entry cited
    counts = found.requests[f"{SERVICE}/{revision}"]
    assert counts["statuses"][503] == 4
    assert counts["statuses"][500] == 1
    assert counts["failed"] == 5
    assert counts["total"] >= 6
    served = [e for e in found.by_kind(EvidenceKind.REQUEST) if e.data["status"] == 503]
    assert all(e.source.startswith("log://run.googleapis.com%2Frequests/e") for e in served)
    assert sum(e.data["count"] for e in served) == 4
    users = _one(found, EvidenceKind.REQUEST, status=503, tag=False)
    assert users.data["count"] == 3
    assert users.data["paths"] == {"/health": 2, "/api/me": 1}
    assert _one(found, EvidenceKind.REQUEST, status=503, tag=True).data["count"] == 1
    assert counts["tag_failed"] == 1
    # and the deploy's verification probes, on the candidate tag's URL, answered 200
    assert counts["tag_total"] > 1

    # Cloud Run's exit lines grouped; the guard's refusal parsed
    exits = _one(found, EvidenceKind.LOG, log="run.googleapis.com/varlog/system", exit_code=3)
    assert (exits.data["count"], exits.excerpt) == (2, "Container called exit(3).")
    refused = _one(found, EvidenceKind.LOG, severity="CRITICAL")
    assert refused.data["guard"] == {
        "outcome": "failed",
        "failures": [
            {"key": "SERVICE_SECRET", "rule": "machine_secret", "message": "estimated 62 bits "
             "of randomness, needs 128"},
            {"key": "JWT_SECRET_KEY", "rule": "jwt_hmac", "message": "is 20 bytes"},
        ],
    }  # fmt: skip

    # secret versions: the weak one measured, never quoted
    weak = _one(found, EvidenceKind.SECRET_VERSION, secret="service-secret-staging", version=2)
    assert weak.source == "sm://service-secret-staging/versions/2"
    assert weak.data["length"] == len(CANARY_WEAK)
    assert weak.data["weak"] is True
    assert weak.data["bits"] < 128
    assert weak.data["env_vars"] == ["SERVICE_SECRET"]
    strong = _one(found, EvidenceKind.SECRET_VERSION, secret="service-secret-staging", version=1)
    assert strong.data["weak"] is False
    assert strong.data["length"] == 64

    # the monitor's alert (firing, resolved) and probes
    firing = _one(found, EvidenceKind.ALERT, event="firing")
    assert firing.source.startswith("monitor:ServiceDown/firing@")
    assert firing.data["cites"] == ["log://run.googleapis.com/varlog/system/x1"]
    _one(found, EvidenceKind.ALERT, event="resolved")
    probe = _one(found, EvidenceKind.PROBE, service=SERVICE)
    assert (probe.data["total"], probe.data["failed"]) == (3, 2)
    assert probe.data["statuses"] == {"200": 1, "503": 1, "error": 1}

    # now: drift (the weak version is unrolled) and check; the manifest's settings
    drift = found.by_kind(EvidenceKind.DRIFT)
    assert drift
    assert all(e.excerpt.startswith("now: ") for e in drift)
    check = _one(found, EvidenceKind.CHECK, key="SERVICE_SECRET")
    assert check.source == "check:machine_secret/SERVICE_SECRET"
    assert (check.data["secret"], check.data["version"]) == ("service-secret-staging", 2)
    strict = _one(found, EvidenceKind.MANIFEST, key="strict")
    assert strict.data["value"] is True
    assert strict.source == f"manifest:{strict.data['line']}"
    assert strict.data["service"] is None
    mapping = _one(found, EvidenceKind.MANIFEST, key="secrets.SERVICE_SECRET")
    assert mapping.data["value"] == "service-secret-staging:latest"
    assert mapping.data["service"] == SERVICE


class _DownStore(MemoryStateStore):
    """A state store whose database went away."""

    def list_records(self, env: str, service: str | None = None, limit: int = 100) -> Any:
        raise StateUnavailableError("the database is down")

    def kv_list(self, namespace: str, prefix: str = "") -> Any:
        raise StateUnavailableError("the database is down")


def test_unreadable_sources_are_listed_and_the_rest_goes_on(site: Site) -> None:
    since = time.time() - 60
    site.store.add_version("service-secret-staging", CANARY_STRONG)
    with _DownStore() as state:
        found = _collector(site, state=state, logs=None).collect([], since, time.time())
    what = [w for w, _ in found.unreadable]
    assert what == [
        f"Cloud Run service {SERVICE}",
        f"the deploy journal of {SERVICE} (memory)",
        "Cloud Logging",
        "the monitor's alert history (memory)",
        "the monitor's probe results (memory)",
    ]
    assert dict(found.unreadable)["Cloud Logging"] == "no log client was given"
    # the store and the manifest were still read
    version = _one(found, EvidenceKind.SECRET_VERSION, secret="service-secret-staging")
    assert version.data["length"] == len(CANARY_STRONG)
    assert found.by_kind(EvidenceKind.MANIFEST)
    assert CANARY_STRONG not in _everything(found)


def test_a_capped_read_is_noted(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_log_evidence, "MAX_REQUESTS", 2)
    at = time.time()
    logs = Entries(site.endpoint, site.env.gcp_project)
    rev = f"{SERVICE}-00001-abc"
    logs.write(*(logs.request(SERVICE, rev, at + i, 503, "https://b.example/") for i in range(3)))
    found = _collector(site).collect([SERVICE], at - 1, at + 5)
    assert ("Cloud Logging request log", "stopped at 2 entries: counts cover the window's "
            "start only") in found.unreadable  # fmt: skip
    assert found.requests[f"{SERVICE}/{rev}"]["failed"] == 2


# -- the pieces, without the emulator --


def test_many_services_are_read_in_a_few_queries() -> None:
    names = [f"service-{i:04d}-" + "x" * 40 for i in range(600)]
    groups = chunks(names)
    assert [n for g in groups for n in g] == names
    assert len(groups) == 3
    assert all(sum(len(n) + 6 for n in g) <= 15_000 for g in groups)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("request 1234 took 5 ms", "request # took # ms"),
        ("trace 9f8e7d6c5b4a failed", "trace # failed"),
        ("deadbeef and facade", "deadbeef and facade"),  # hex words without digits stay
        ("Container called exit(3).", "Container called exit(#)."),
    ],
    ids=["digits", "hex-id", "hex-words", "exit"],
)
def test_template_masks_what_varies(text: str, expected: str) -> None:
    assert template(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "start-up failed in phase secrets: SERVICE_SECRET machine_secret: weak; "
            "config check: unreachable",
            {
                "outcome": "failed",
                "failures": [
                    {"key": "SERVICE_SECRET", "rule": "machine_secret", "message": "weak"},
                    {"key": "config", "rule": "check", "message": "unreachable"},
                ],
            },
        ),
        (
            "start-up failed in phase config: JWT_SECRET_KEY jwt_hmac: is 20 bytes; HS256 needs "
            "at least 32; made of dictionary words; REDIRECT same_origin: not on FRONTEND_URL",
            {
                "outcome": "failed",
                "failures": [
                    {
                        "key": "JWT_SECRET_KEY",
                        "rule": "jwt_hmac",
                        "message": "is 20 bytes; HS256 needs at least 32; made of dictionary words",
                    },
                    {"key": "REDIRECT", "rule": "same_origin", "message": "not on FRONTEND_URL"},
                ],
            },
        ),
        (
            json.dumps(
                {
                    "event": "rollsafe.startup",
                    "outcome": "failed",
                    "failures": [{"key": "K", "rule": "r", "message": "m", "phase": "p"}],
                }
            ),
            {"outcome": "failed", "failures": [{"key": "K", "rule": "r", "message": "m"}]},
        ),
        ("start-up checks passed (secrets)", None),
        ('{"event": "other"}', None),
        ("JWT secret not configured", None),
    ],
    ids=["summary", "merged-reasons", "json", "passed", "other-json", "other-line"],
)
def test_parse_guard(text: str, expected: dict[str, Any] | None) -> None:
    assert parse_guard(text) == expected


def test_scrubber_replaces_values_and_never_shows_them() -> None:
    scrub = Scrubber()
    scrub.add(CANARY_STRONG)
    scrub.add(CANARY_STRONG[:10])  # contained in the other: the longer goes whole
    scrub.add("abc")  # too short to scrub
    assert scrub.text(f"a {CANARY_STRONG} b {CANARY_STRONG[:10]} abc") == "a *** b *** abc"
    assert scrub.value({"k": [CANARY_STRONG, 1], CANARY_STRONG: None}) == {
        "k": ["***", 1],
        "***": None,
    }
    assert CANARY_STRONG not in repr(scrub)
    scrub.clear()
    assert scrub.text(CANARY_STRONG) == CANARY_STRONG


def test_numbering_is_by_time_then_source() -> None:
    def piece(time: float | None, source: str) -> Evidence:
        return Evidence("", EvidenceKind.DRIFT, time, source, "x")

    ordered = number([piece(5, "b"), piece(None, "z"), piece(5, "a"), piece(1, "c")], 2.0)
    assert [(e.id, e.source) for e in ordered] == [
        ("E1", "c"),
        ("E2", "z"),
        ("E3", "a"),
        ("E4", "b"),
    ]


def test_the_versions_listed_and_read() -> None:
    from datetime import UTC, datetime

    from rollsafe.incidents._secret_evidence import _kept, _to_read, _Use
    from rollsafe.stores import SecretVersionInfo, VersionState

    def version(n: int) -> SecretVersionInfo:
        created = datetime.fromtimestamp(1000.0 + n * 100, UTC)
        return SecretVersionInfo("s", n, VersionState.ENABLED, created)

    versions = [version(n) for n in range(1, 13)]  # v N created at 1000 + 100 N
    use = _Use(pinned={2})
    # the window holds v9 and v10; v11 and v12 came after it
    kept = _kept(versions, use, since=1850.0, until=2050.0)
    assert [v.version for v in kept] == [2, 6, 7, 8, 9, 10]
    # read: created in the window, `latest` at its start (v8), pinned (v2)
    assert _to_read(kept, use, since=1850.0) == {2, 8, 9, 10}
