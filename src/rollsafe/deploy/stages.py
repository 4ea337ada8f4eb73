"""The stages of a deploy, how it ends, and the compensation that undoes what it changed.

Every stage that changes the platform first writes its compensation to the journal, then
acts. One function, ``run_compensation``, undoes a deploy: after a failed verification,
on a cancellation, for a crash found by reconcile, and for ``rollsafe rollback``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rollsafe.platforms import Platform

__all__ = [
    "CANDIDATE_TAG",
    "Compensation",
    "CompensationKind",
    "Outcome",
    "Stage",
    "run_compensation",
]

#: the traffic tag of the revision under verification; removed when the deploy ends
CANDIDATE_TAG = "candidate"


class Stage(StrEnum):
    """A deploy's stages in order; the values are what the journal's ``stage`` holds."""

    PLAN = "plan"
    PREFLIGHT = "preflight"
    CURRENT_HEALTH = "current-health"
    CREATE = "create"
    VERIFY = "verify"
    SHIFT = "shift"
    WATCH = "watch"
    DONE = "done"
    #: the compensation runs (a deploy's own, or the one ``rollsafe rollback`` puts back)
    ROLLBACK = "rollback"
    RECONCILE = "reconcile"


class Outcome(StrEnum):
    """How an attempt ended; the values are what older journals already hold."""

    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled-back"
    REFUSED = "refused"
    #: the revision never started; traffic stayed where it was
    FAILED = "failed"
    CANCELLED = "cancelled"
    ROLLBACK_FAILED = "rollback-failed"
    #: killed (SIGKILL, a crash) and closed by reconcile
    INTERRUPTED = "interrupted"
    #: a failed first deploy whose service ``--keep-failed`` kept for debugging
    KEPT_FAILED = "kept-failed"
    DRY_RUN = "dry-run"


class CompensationKind(StrEnum):
    RESTORE = "restore"
    DELETE = "delete"


@dataclass(frozen=True)
class Compensation:
    """What puts the platform back: a split and tags (``restore``), or ``delete`` the
    service this deploy created."""

    kind: CompensationKind
    split: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def restore(cls, split: dict[str, int], tags: dict[str, str]) -> Compensation:
        # the candidate tag is never put back: it marks an unverified revision
        kept = {t: r for t, r in tags.items() if t != CANDIDATE_TAG}
        return cls(CompensationKind.RESTORE, dict(split), kept)

    @classmethod
    def delete(cls) -> Compensation:
        return cls(CompensationKind.DELETE)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "split": self.split, "tags": self.tags}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Compensation:
        return cls(
            CompensationKind(data["kind"]),
            {str(k): int(v) for k, v in (data.get("split") or {}).items()},
            {str(k): str(v) for k, v in (data.get("tags") or {}).items()},
        )

    def describe(self) -> str:
        if self.kind is CompensationKind.DELETE:
            return "the service this deploy created is deleted"
        split = ", ".join(f"{r} {p}%" for r, p in self.split.items()) or "nothing"
        tags = ", ".join(f"{t}={r}" for t, r in self.tags.items())
        return f"traffic back on {split}" + (f" (tags {tags})" if tags else "")


def run_compensation(platform: Platform, service: str, compensation: Compensation) -> bool:
    """Put ``service`` back as ``compensation`` says. Returns whether anything was changed.

    Idempotent: run twice (a crash during it, then reconcile), it ends in the same state.
    Raises ``PlatformError`` when the platform refuses.
    """
    current = platform.get_service(service)
    if current is None:
        return False  # nothing was created, or the deletion already happened
    if compensation.kind is CompensationKind.DELETE:
        platform.delete_service(service)
        return True
    if not compensation.split:
        return False  # nothing served before and the service existed: keep what is there
    if current.split() == compensation.split and current.tags() == compensation.tags:
        return False
    platform.set_traffic(service, compensation.split, compensation.tags)
    return True
