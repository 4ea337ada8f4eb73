"""What a start-up run found: problems, one result per check, and the report of the run.

Every message here is written without values: the config phase describes a secret by its
length and character classes only, and the guard redacts the process's secret values from
any message a user check produces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollsafe.errors import RollsafeError
from rollsafe.findings import Severity

__all__ = [
    "CheckResult",
    "DeterministicStartupError",
    "StartupCheckError",
    "StartupProblem",
    "StartupReport",
]


@dataclass(frozen=True, slots=True)
class StartupProblem:
    """One thing a start-up check found wrong.

    ``key`` is the environment variable concerned (``None`` for a check about no single
    key, such as a dependency); ``rule`` is the manifest rule that failed, or ``timeout`` /
    ``exception`` / ``check`` for user checks. ``severity`` ``error`` fails the phase;
    ``warning`` (a failing rule in a non-strict environment) is reported and lets it pass.
    ``phase`` and ``check`` are filled in by the sequence.
    """

    message: str
    key: str | None = None
    rule: str = "check"
    severity: Severity = Severity.ERROR
    hint: str = ""
    source: str = ""
    phase: str = ""
    check: str = ""

    @property
    def blocks(self) -> bool:
        return self.severity is Severity.ERROR

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "check": self.check,
            "key": self.key,
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
            "hint": self.hint,
            "source": self.source,
        }

    def describe(self) -> str:
        """``KEY rule: message``, or ``check rule: message`` when no key is concerned."""
        who = self.key or self.check
        rule = "" if self.rule == "check" else f" {self.rule}"
        return f"{who}{rule}: {self.message}"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """How one check went: ``ok`` is false when it found at least one error."""

    phase: str
    check: str
    ok: bool
    message: str
    duration: float
    problems: tuple[StartupProblem, ...] = ()
    #: facts a check returned as a mapping (a version, a fingerprint); never secret values
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self, *, timing: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "phase": self.phase,
            "check": self.check,
            "ok": self.ok,
            "message": self.message,
            "problems": [p.to_dict() for p in self.problems],
        }
        if self.details:
            data["details"] = dict(self.details)
        if timing:
            data["duration_ms"] = round(self.duration * 1000, 3)
        return data


@dataclass(frozen=True, slots=True)
class StartupReport:
    """The outcome of a start-up sequence, in phase order.

    ``failed_phase`` is the first phase with an error (``None`` when all passed); the phases
    after it are in ``skipped`` and did not run. ``source`` says where the rules came from
    (``ROLLSAFE_CONTRACT`` or the manifest path) and is informational only.
    """

    phases: tuple[str, ...]
    results: tuple[CheckResult, ...]
    failed_phase: str | None = None
    skipped: tuple[str, ...] = ()
    duration: float = 0.0
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failed_phase is None

    @property
    def problems(self) -> tuple[StartupProblem, ...]:
        return tuple(p for r in self.results for p in r.problems)

    @property
    def failures(self) -> tuple[StartupProblem, ...]:
        """The errors: what made ``failed_phase`` fail."""
        return tuple(p for p in self.problems if p.blocks)

    @property
    def warnings(self) -> tuple[StartupProblem, ...]:
        return tuple(p for p in self.problems if not p.blocks)

    def result(self, phase: str, check: str) -> CheckResult | None:
        """The result of one check, or ``None`` if it did not run."""
        for item in self.results:
            if item.phase == phase and item.check == check:
                return item
        return None

    def summary(self) -> str:
        """One line: ``start-up passed`` or ``start-up failed in phase P: KEY rule: ...``."""
        if self.ok:
            extra = f" with {len(self.warnings)} warning(s)" if self.warnings else ""
            return f"start-up checks passed{extra} ({', '.join(self.phases) or 'no phases'})"
        details = "; ".join(p.describe() for p in self.failures)
        return f"start-up failed in phase {self.failed_phase}: {details}"

    def to_dict(self, *, timing: bool = True) -> dict[str, Any]:
        """The JSON shape; ``timing=False`` leaves out durations (to compare two runs)."""
        data: dict[str, Any] = {
            "ok": self.ok,
            "phases": list(self.phases),
            "failed_phase": self.failed_phase,
            "skipped": list(self.skipped),
            "failures": [p.to_dict() for p in self.failures],
            "warnings": [p.to_dict() for p in self.warnings],
            "results": [r.to_dict(timing=timing) for r in self.results],
        }
        if timing:
            data["duration_ms"] = round(self.duration * 1000, 3)
        return data


class StartupCheckError(Exception):
    """Raise from a start-up check to fail it with a clear message (never a value).

    ``key``, ``rule`` and ``hint`` end up in the report and in the CRITICAL log line.
    """

    def __init__(
        self, message: str, *, key: str | None = None, rule: str = "check", hint: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.rule = rule
        self.hint = hint


class DeterministicStartupError(RollsafeError):
    """Start-up checks failed in ``fail_fast`` mode: the process must not serve.

    Lists every failure of the failed phase (phase, key, rule, message; never a value). The
    process exits with ``exit_code`` 3, which keeps a Cloud Run revision from becoming Ready.
    """

    exit_code = 3

    def __init__(self, report: StartupReport) -> None:
        hint = next((p.hint for p in report.failures if p.hint), None)
        super().__init__(report.summary(), hint=hint)
        self.report = report

    @property
    def failures(self) -> tuple[StartupProblem, ...]:
        return self.report.failures
