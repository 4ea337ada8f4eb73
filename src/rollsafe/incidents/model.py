"""What an incident report is made of: evidence, episodes, and the report's parts.

Evidence is what was recorded (a journal stage, a revision's condition, a log entry, a
secret version's metadata, a monitor event, a drift or check finding); everything the
report says cites evidence ids. ``Evidence.data`` carries the structured facts the rule
base reasons over (``rollsafe.incidents.chain``); it never holds a secret value, only
names, version numbers, lengths and estimated bits, and it is not part of the JSON report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "Action",
    "ActionType",
    "Episode",
    "Evidence",
    "EvidenceKind",
    "EvidenceSet",
    "Factor",
    "FactorType",
    "Gap",
    "Impact",
    "IncidentReport",
    "TimelineEntry",
    "Why",
    "iso",
]


def iso(moment: float | None) -> str | None:
    """``time.time()`` seconds as RFC 3339 UTC with milliseconds (``...T09:15:03.120Z``)."""
    if moment is None:
        return None
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class EvidenceKind(StrEnum):
    """What a piece of evidence is, and so which ``data`` keys it carries.

    The ``data`` contract (every key present, ``None`` where unknown):

    - ``deploy``  (``journal:DEPLOY/outcome``): deploy_id, service, revision,
      previous_revision, user, host, ci_url, git_commit, checks ("passed", "skipped",
      "forced", ...), forced (bool), reason, outcome ("succeeded", "rolled-back", "failed",
      "refused", "cancelled", "rollback-failed", "unlocked", None while running), exit_code,
      message, started, finished, rollback (the record's rollback dict or None),
      by_monitor (bool: the monitor's automatic rollback wrote it).
    - ``stage``   (``journal:DEPLOY/STAGE``): deploy_id, service, stage (plan, preflight,
      current-health, create, verify, shift, watch, done, rollback, reconcile), started,
      seconds, ok (bool or None while open), detail.
    - ``revision`` (``run://SERVICE/REVISION#Ready``): service, revision, created, ready
      (bool), failed (bool), message, deploy_id (the ``rollsafe.dev/deploy-id`` annotation
      or None: created outside rollsafe), secrets ({ENV_VAR: {"secret", "version"}}, the
      version as mapped: a number or "latest"), traffic (percent now, 0 when none),
      serving (bool: has traffic now), contract (bool: ``ROLLSAFE_CONTRACT`` is set on the
      revision, so its start-up guard checks the declared keys; the name, never the value).
    - ``request`` (``log://run.googleapis.com%2Frequests/INSERT_ID``, the group's first
      entry): service, revision, status (int), count, first, last (times of the first and
      last entry), paths ({path: count}, the 5 most frequent), tag (bool: all arrived on a
      tag URL, not the service URL). One piece per (service, revision, status, tag) for
      status >= 500; ``impact`` is computed from all requests (see ``Impact``).
    - ``log``     (``log://LOG_NAME/INSERT_ID``, the first entry): service, revision, log
      (short log id: ``run.googleapis.com/varlog/system``, ``.../stdout``, ``.../stderr``),
      severity, text (the message, secret values scrubbed), count, first, last,
      exit_code (int from ``Container called exit(N).``, else None), guard (for the start-up
      guard's CRITICAL/ERROR line: {"outcome", "failures": [{"key", "rule", "message"}]},
      else None). One piece per (service, revision, log, message template).
    - ``secret_version`` (``sm://SECRET/versions/N``): secret, version (int), created,
      state ("ENABLED", ...), length (int or None when not read), bits (estimated bits,
      float or None), classes ([lower, upper, digit, symbol] present), weak (bool or None:
      below the rule's threshold where a rule applies), env_vars ([ENV_VAR, ...] that the
      manifest maps to this secret for the service).
    - ``alert``   (``monitor:ALERT/EVENT``, EVENT = ``firing@RFC3339`` or ``resolved@RFC3339``):
      service, alertname, event ("firing" | "resolved"), starts_at, ends_at, severity,
      summary, revision, cites ([source, ...]: the evidence the monitor attached), action
      (what the monitor did: an automatic rollback, or None).
    - ``probe``   (``monitor:probes/SERVICE``): service, total, failed, first_failed,
      last_failed, statuses ({status or "error": count}).
    - ``drift``   (``drift:KIND/KEY``): kind, service, key, severity, message, manifest,
      store, deployed (the finding's sides: names, versions, lengths), fix (command or None).
    - ``check``   (``check:RULE/KEY``): rule, service, key, severity, message, secret,
      version (int or None).
    - ``manifest`` (``manifest:LINE``): env, strict (bool), key (the setting: "strict",
      "monitor.rollback_within", "secrets.JWT_SECRET_KEY", ...), value (a setting, never a
      secret), line, service (the service of a per-service setting; None for ``strict``).
    """

    DEPLOY = "deploy"
    STAGE = "stage"
    REVISION = "revision"
    REQUEST = "request"
    LOG = "log"
    SECRET_VERSION = "secret_version"
    ALERT = "alert"
    PROBE = "probe"
    DRIFT = "drift"
    CHECK = "check"
    MANIFEST = "manifest"


@dataclass(frozen=True)
class Evidence:
    """One recorded fact: an id the report cites, its kind, when, where it was read, and a
    short excerpt (never a secret value)."""

    id: str
    kind: EvidenceKind
    time: float | None
    source: str
    excerpt: str
    data: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "time": iso(self.time),
            "source": self.source,
            "excerpt": self.excerpt,
        }


@dataclass
class EvidenceSet:
    """Everything collected for one window: evidence (ids ``E1``... in time order), the
    requests seen, and what could not be read."""

    env: str
    services: tuple[str, ...]
    since: float
    until: float
    evidence: list[Evidence] = field(default_factory=list)
    #: every request the request log holds in the window, per (service, revision):
    #: {"total", "failed" (status >= 500), "statuses": {status: count}, "tag_total",
    #: "tag_failed"}; keys "SERVICE/REVISION"
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: sources that could not be read: (what, why), e.g. ("Cloud Logging", "403 ...")
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: the manifest (path) the environment came from, for action items
    manifest: str | None = None
    strict: bool = False

    def by_kind(self, kind: EvidenceKind) -> list[Evidence]:
        return [e for e in self.evidence if e.kind is kind]

    def get(self, evidence_id: str) -> Evidence | None:
        return next((e for e in self.evidence if e.id == evidence_id), None)


@dataclass(frozen=True)
class Episode:
    """Something went wrong once: an alert from first firing to resolve, a failed or
    rolled-back deploy, or an outage seen in the request logs (merged when they overlap
    on a service). ``end`` is None while it goes on."""

    id: str
    kinds: tuple[str, ...]
    start: float
    end: float | None
    services: tuple[str, ...]
    title: str
    #: sources that make it up (journal:..., monitor:..., log://...)
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kinds": list(self.kinds),
            "start": iso(self.start),
            "end": iso(self.end),
            "services": list(self.services),
            "title": self.title,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class Why:
    """One link of the causal chain: ``claim`` happened because of ``because``."""

    claim: str
    because: str
    evidence: tuple[str, ...]
    #: the rule of the rule base that made the link (for readers and tests)
    rule: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "because": self.because,
            "evidence": list(self.evidence),
            "rule": self.rule,
        }


class FactorType(StrEnum):
    TRIGGER = "trigger"
    LATENT = "latent"


@dataclass(frozen=True)
class Factor:
    type: FactorType
    text: str
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type.value, "text": self.text, "evidence": list(self.evidence)}


class ActionType(StrEnum):
    MITIGATE = "mitigate"
    PREVENT = "prevent"
    PROCESS = "process"


@dataclass(frozen=True)
class Action:
    """An action item: a concrete command or manifest change."""

    type: ActionType
    text: str
    command: str
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "text": self.text,
            "command": self.command,
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True)
class Gap:
    """Where the chain stops: the evidence that is missing and how to record it next time."""

    after: str
    missing: str
    how: str

    def to_dict(self) -> dict[str, Any]:
        return {"after": self.after, "missing": self.missing, "how": self.how}


@dataclass(frozen=True)
class TimelineEntry:
    time: float
    text: str
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"time": iso(self.time), "text": self.text, "evidence": list(self.evidence)}


@dataclass(frozen=True)
class Impact:
    """Measured from the request logs and the monitor's probes."""

    first_bad: float | None
    last_bad: float | None
    requests_total: int
    requests_failed: int
    probes_total: int
    probes_failed: int
    #: HTTP status -> count of the answers >= 500 actually served (request logs)
    statuses: dict[int, int]
    revisions: tuple[str, ...]
    evidence: tuple[str, ...]
    #: failed answers that arrived on a tag URL only (a verification, not users)
    tag_failed: int = 0

    @property
    def duration(self) -> float | None:
        if self.first_bad is None or self.last_bad is None:
            return None
        return self.last_bad - self.first_bad

    def to_dict(self) -> dict[str, Any]:
        def share(part: int, whole: int) -> float | None:
            return round(part / whole, 4) if whole else None

        return {
            "first_bad": iso(self.first_bad),
            "last_bad": iso(self.last_bad),
            "duration_seconds": None if self.duration is None else round(self.duration, 3),
            "requests": {
                "total": self.requests_total,
                "failed": self.requests_failed,
                "share": share(self.requests_failed, self.requests_total),
                "tag_failed": self.tag_failed,
            },
            "probes": {
                "total": self.probes_total,
                "failed": self.probes_failed,
                "share": share(self.probes_failed, self.probes_total),
            },
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "revisions": list(self.revisions),
            "evidence": list(self.evidence),
        }


@dataclass
class IncidentReport:
    """The report ``rollsafe why`` renders (Markdown, JSON, HTML)."""

    title: str
    env: str
    services: tuple[str, ...]
    since: float
    until: float
    episode: Episode | None
    summary: str
    impact: Impact
    timeline: list[TimelineEntry]
    whys: list[Why]
    gaps: list[Gap]
    factors: list[Factor]
    went_well: list[TimelineEntry]
    actions: list[Action]
    evidence: list[Evidence]
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    generated: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON schema (``rollsafe.incidents.schema.REPORT_SCHEMA``)."""
        return {
            "schema": "rollsafe.dev/why/v1",
            "summary": {
                "title": self.title,
                "text": self.summary,
                "env": self.env,
                "services": list(self.services),
                "since": iso(self.since),
                "until": iso(self.until),
                "episode": self.episode.to_dict() if self.episode else None,
                "generated": iso(self.generated),
            },
            "impact": self.impact.to_dict(),
            "timeline": [t.to_dict() for t in self.timeline],
            "whys": [w.to_dict() for w in self.whys],
            "gaps": [g.to_dict() for g in self.gaps],
            "factors": [f.to_dict() for f in self.factors],
            "went_well": [w.to_dict() for w in self.went_well],
            "actions": [a.to_dict() for a in self.actions],
            "evidence": [e.to_dict() for e in self.evidence],
            "unreadable": [{"what": w, "why": y} for w, y in self.unreadable],
        }
