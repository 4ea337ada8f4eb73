"""What a drift run finds: kinds, findings with three sides, the report and its API calls."""

from __future__ import annotations

import enum
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rollsafe.errors import RollsafeError
from rollsafe.findings import Finding, Severity

__all__ = [
    "ApiCalls",
    "DriftFinding",
    "DriftKind",
    "DriftReport",
    "DriftUnavailableError",
    "Fix",
]


class DriftKind(enum.StrEnum):
    """The named differences between the manifest, the secret store and the serving revision."""

    UNMAPPED_SECRET = "unmapped_secret"
    WRONG_SECRET = "wrong_secret"
    WRONG_VERSION = "wrong_version"
    MISSING_IN_STORE = "missing_in_store"
    STALE_LATEST = "stale_latest"
    UNMANAGED_ENV = "unmanaged_env"
    MISSING_ENV = "missing_env"
    VALUE_MISMATCH = "value_mismatch"
    SECRET_AS_PLAIN_VALUE = "secret_as_plain_value"
    ORPHAN_SECRET = "orphan_secret"
    WEAK_SECRET = "weak_secret"
    NOT_DEPLOYED = "not_deployed"
    ACCESS_MISMATCH = "access_mismatch"

    @property
    def severity(self) -> Severity:
        """The kind's severity (``weak_secret`` follows strictness instead; see the engine)."""
        return _SEVERITY[self]


_SEVERITY = {
    DriftKind.UNMAPPED_SECRET: Severity.ERROR,
    DriftKind.WRONG_SECRET: Severity.ERROR,
    DriftKind.MISSING_IN_STORE: Severity.ERROR,
    DriftKind.SECRET_AS_PLAIN_VALUE: Severity.ERROR,
    DriftKind.MISSING_ENV: Severity.ERROR,
    DriftKind.WEAK_SECRET: Severity.ERROR,
    DriftKind.ACCESS_MISMATCH: Severity.ERROR,
    DriftKind.WRONG_VERSION: Severity.WARNING,
    DriftKind.STALE_LATEST: Severity.WARNING,
    DriftKind.UNMANAGED_ENV: Severity.WARNING,
    DriftKind.VALUE_MISMATCH: Severity.WARNING,
    DriftKind.NOT_DEPLOYED: Severity.WARNING,
    DriftKind.ORPHAN_SECRET: Severity.INFO,
}


class DriftUnavailableError(RollsafeError):
    """The store or the platform could not be read, so drift cannot be judged (exit 2).

    ``rollsafe check`` fails closed with exit 1 on an unreachable store because the deploy it
    guards must not go on; drift answers a question instead, and "could not look" is an
    error, not a finding.
    """

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Fix:
    """How to remove a drift: the ``rollsafe`` command and, where one applies, ``gcloud``'s.

    ``rollsafe`` is None where no rollsafe command makes the change (a service's access:
    deploys never change an existing service's IAM policy).
    """

    rollsafe: str | None
    gcloud: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"rollsafe": self.rollsafe, "gcloud": self.gcloud}


#: one side of a comparison: names, version numbers, states, lengths; never a value
Side = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DriftFinding:
    """One difference, with what each of the three sides says.

    ``manifest``, ``store`` and ``deployed`` are ``None`` when that side has nothing to say
    about the key (an undeclared variable has no manifest side). They hold secret names,
    version numbers and states, and for plain values only their length: never a value.
    """

    kind: DriftKind
    service: str
    key: str
    severity: Severity
    message: str
    manifest: Side | None
    store: Side | None
    deployed: Side | None
    hint: str = ""
    fix: Fix | None = None
    source: str = ""
    line: int | None = field(default=None, compare=False)

    @property
    def is_drift(self) -> bool:
        """Info findings (``orphan_secret``) are worth knowing but are not drift."""
        return self.severity is not Severity.INFO

    def as_finding(self) -> Finding:
        """The common finding shape (``rule`` is the kind), for the shared renderers."""
        hint = self.hint
        command = (self.fix.rollsafe or self.fix.gcloud) if self.fix is not None else None
        if command:
            hint = f"{hint}; fix: {command}" if hint else f"fix: {command}"
        return Finding(
            self.service,
            self.key,
            self.kind.value,
            self.severity,
            self.message,
            hint,
            self.source,
            self.line,
        )

    def to_dict(self) -> dict[str, Any]:
        """The finding contract's fields (``rule`` = ``kind``) plus the three sides and the fix."""
        return {
            "kind": self.kind.value,
            "service": self.service,
            "key": self.key,
            "rule": self.kind.value,
            "severity": self.severity.value,
            "message": self.message,
            "manifest": self.manifest,
            "store": self.store,
            "deployed": self.deployed,
            "hint": self.hint,
            "fix": self.fix.to_dict() if self.fix else None,
            "source": self.source,
            "line": self.line,
        }


_APIS = (
    ("secretmanager", "list_secrets"),
    ("secretmanager", "list_versions"),
    ("secretmanager", "access"),
    ("run", "get_service"),
    ("run", "list_revisions"),
    ("run", "get_iam_policy"),
)


class ApiCalls:
    """How many calls a drift run made, per API and method (thread-safe).

    A call is one method of the adapter; a listing that spans several pages is one call
    here (the benchmark counts HTTP requests as well).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, api: str, method: str, n: int = 1) -> None:
        with self._lock:
            self._counts[(api, method)] += n

    def get(self, api: str, method: str) -> int:
        with self._lock:
            return self._counts[(api, method)]

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def to_dict(self) -> dict[str, dict[str, int]]:
        """``{"secretmanager": {"list_secrets": 1, ...}, "run": {...}}``, every method listed."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for api, method in _APIS:
                out.setdefault(api, {})[method] = self._counts[(api, method)]
        return out

    @property
    def store_reads(self) -> int:
        """Read requests in Secret Manager's sense: listings (accesses are counted apart)."""
        return self.get("secretmanager", "list_secrets") + self.get(
            "secretmanager", "list_versions"
        )

    def describe(self) -> str:
        """One line for ``--verbose``."""
        parts = []
        for api, methods in self.to_dict().items():
            inner = " ".join(f"{m}={n}" for m, n in methods.items())
            parts.append(f"{api}: {inner}")
        return f"API calls: {self.total} ({'; '.join(parts)})"


@dataclass
class DriftReport:
    """Every finding of one drift run, sorted by service, severity, key and kind.

    ``serving`` maps each compared service to its serving revisions and their percent.
    """

    env: str
    project: str
    region: str
    platform: str
    strict: bool
    services: list[str]
    findings: list[DriftFinding] = field(default_factory=list)
    serving: dict[str, dict[str, int]] = field(default_factory=dict)
    calls: ApiCalls = field(default_factory=ApiCalls)
    #: the store's read requests allowed a minute (``None``: no limit), and time spent waiting
    read_budget: int | None = None
    paced_seconds: float = 0.0

    @property
    def drift(self) -> bool:
        """True when any finding is drift (info findings alone are not)."""
        return any(f.is_drift for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.drift else 0

    def counts(self) -> dict[str, int]:
        counted = Counter(f.severity.value for f in self.findings)
        return {s.value: counted.get(s.value, 0) for s in Severity}

    def kinds(self) -> dict[str, int]:
        """How many findings of each kind (only kinds that occur)."""
        return dict(sorted(Counter(f.kind.value for f in self.findings).items()))

    def of_kind(self, kind: DriftKind | str) -> list[DriftFinding]:
        return [f for f in self.findings if f.kind == kind]

    def sort(self) -> None:
        order = {name: i for i, name in enumerate(self.services)}
        self.findings.sort(
            key=lambda f: (order.get(f.service, len(order)), f.severity.rank, f.key, f.kind)
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: ``drift``, ``env``, ``findings`` (plus summaries and API calls)."""
        return {
            "drift": self.drift,
            "ok": not self.drift,
            "env": self.env,
            "project": self.project,
            "region": self.region,
            "platform": self.platform,
            "strict": self.strict,
            "services": self.services,
            "serving": self.serving,
            "summary": self.counts(),
            "kinds": self.kinds(),
            "api_calls": {
                **self.calls.to_dict(),
                "total": self.calls.total,
                "reads_per_minute": self.read_budget,
                "paced_seconds": round(self.paced_seconds, 3),
            },
            "findings": [f.to_dict() for f in self.findings],
        }
