"""The result of a check: findings plus what was resolved on the way."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rollsafe.findings import Finding, Severity

__all__ = ["CheckReport", "CheckStats"]


@dataclass
class CheckStats:
    """How much work the check did against the store (for --verbose and benchmarks)."""

    secrets_listed: int = 0
    versions_listed: int = 0
    values_accessed: int = 0
    references: int = 0
    rules_run: int = 0


@dataclass
class CheckReport:
    """Every finding of one check run, sorted by service, severity and key.

    ``pinned`` maps ``(secret, version as declared)`` to the version number ``latest``
    resolved to (``None`` when it could not be resolved).
    """

    env: str
    strict: bool
    services: list[str]
    findings: list[Finding] = field(default_factory=list)
    pinned: dict[tuple[str, str], int | None] = field(default_factory=dict)
    stats: CheckStats = field(default_factory=CheckStats)

    @property
    def ok(self) -> bool:
        """True when no finding blocks."""
        return not any(f.blocks for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def counts(self) -> dict[str, int]:
        counted = Counter(f.severity.value for f in self.findings)
        return {s.value: counted.get(s.value, 0) for s in Severity}

    def sort(self) -> None:
        order = {name: i for i, name in enumerate(self.services)}
        self.findings.sort(key=lambda f: (order.get(f.service, 0), f.severity.rank, f.key, f.rule))

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: ``ok``, ``env``, ``findings`` (plus ``strict``, ``summary``)."""
        return {
            "ok": self.ok,
            "env": self.env,
            "strict": self.strict,
            "services": self.services,
            "summary": self.counts(),
            "findings": [f.to_dict() for f in self.findings],
        }
