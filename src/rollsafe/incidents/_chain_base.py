"""The rule base's ground: indexes over the evidence, and writing links, gaps and causes."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rollsafe.incidents._text import id_key, ids, num
from rollsafe.incidents.model import Evidence, EvidenceKind, EvidenceSet, Gap, Why

K = EvidenceKind
_GENERIC_WORDS = {"key", "secret", "secrets", "value", "url", "uri", "env", "var"}
STATUS = re.compile(r"\b([1-5]\d\d)\b")
HTTP_STATUS = re.compile(r"(?:HTTP|answered|status)\W{0,3}([1-5]\d\d)\b", re.I)


@dataclass(frozen=True)
class Symptom:
    """Where a chain starts: what was seen to go wrong, measured."""

    kind: str  # requests | probes | alert | verify | log
    service: str
    revision: str | None
    status: int | None
    count: int
    first: float | None
    last: float | None
    tag: bool
    text: str
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Cause:
    """A cause a chain reached, for the factors and the action items."""

    kind: str
    service: str
    subject: str
    text: str
    evidence: tuple[str, ...]
    data: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class Chains:
    """The whys (chains one after the other), the gaps, and what they reached."""

    whys: list[Why] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    symptoms: list[Symptom] = field(default_factory=list)
    causes: list[Cause] = field(default_factory=list)


def d_(item: Evidence, key: str) -> Any:
    return item.data.get(key)


def start_(item: Evidence) -> float:
    moment = num(d_(item, "first"))
    if moment is None:
        moment = item.time
    return moment if moment is not None else float("inf")


def key_words(key: str) -> list[str]:
    words = [w for w in key.lower().split("_") if w and w not in _GENERIC_WORDS]
    return words or [key.lower()]


def mentions(texts: Iterable[str], key: str) -> bool:
    words = key_words(key)
    for text in texts:
        lower = text.lower()
        if key.lower() in lower or all(w in lower for w in words):
            return True
    return False


def version_number(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def ordered(ev: EvidenceSet) -> EvidenceSet:
    """``ev`` with its evidence in id order, so nothing depends on the list's order."""
    if [e.id for e in ev.evidence] == sorted((e.id for e in ev.evidence), key=id_key):
        return ev
    return dataclasses.replace(ev, evidence=sorted(ev.evidence, key=lambda e: id_key(e.id)))


class RulesBase:
    """Indexes over one evidence set and the chains being written."""

    def __init__(self, ev: EvidenceSet) -> None:
        self.ev = ev
        self.out = Chains()
        self.revisions: dict[str, Evidence] = {}
        for item in ev.by_kind(K.REVISION):
            self.revisions.setdefault(str(d_(item, "revision")), item)
        self.logs = sorted(ev.by_kind(K.LOG), key=lambda e: (start_(e), e.id))
        self.versions: dict[str, list[Evidence]] = {}
        for item in ev.by_kind(K.SECRET_VERSION):
            self.versions.setdefault(str(d_(item, "secret")), []).append(item)
        for items in self.versions.values():
            items.sort(key=lambda e: (version_number(d_(e, "version")) or 0, e.id))
        self.deploys = {str(d_(d, "deploy_id")): d for d in ev.by_kind(K.DEPLOY)}
        self.stages: dict[str, list[Evidence]] = {}
        for item in ev.by_kind(K.STAGE):
            self.stages.setdefault(str(d_(item, "deploy_id")), []).append(item)
        for items in self.stages.values():
            items.sort(key=lambda e: (num(d_(e, "started")) or 0.0, e.id))
        self.requests = sorted(ev.by_kind(K.REQUEST), key=lambda e: (start_(e), e.id))
        self._expanded: set[tuple[str, str]] = set()

    # -- writing ------------------------------------------------------------------------

    def link(self, rule: str, claim: str, because: str, *groups: Iterable[Any]) -> bool:
        cited = ids(*groups)
        if not cited:
            return False
        self.out.whys.append(Why(claim=claim, because=because, evidence=cited, rule=rule))
        return True

    def gap(self, after: str, missing: str, how: str) -> None:
        gap = Gap(after=after, missing=missing, how=how)
        if gap not in self.out.gaps:
            self.out.gaps.append(gap)

    def cause(
        self, kind: str, service: str, subject: str, text: str, *groups: Any, **data: Any
    ) -> None:
        cause = Cause(kind, service, subject, text, ids(*groups), data)
        if not any(
            (c.kind, c.service, c.subject) == (kind, service, subject) for c in self.out.causes
        ):
            self.out.causes.append(cause)

    def once(self, revision: str, what: str) -> bool:
        """True the first time ``what`` is explained for ``revision`` (no repeated sub-chains)."""
        if (revision, what) in self._expanded:
            return False
        self._expanded.add((revision, what))
        return True

    # -- finding ------------------------------------------------------------------------

    def services(self) -> list[str]:
        seen = set(self.ev.services)
        for item in self.ev.evidence:
            service = d_(item, "service")
            if isinstance(service, str) and service:
                seen.add(service)
        return sorted(seen)

    def of(self, kind: EvidenceKind, /, **match: Any) -> list[Evidence]:
        return [e for e in self.ev.by_kind(kind) if all(d_(e, k) == v for k, v in match.items())]

    def manifest_of(self, key: str, service: str) -> list[Evidence]:
        """The manifest's setting ``key`` for ``service`` (evidence without a service: any)."""
        return [e for e in self.of(K.MANIFEST, key=key) if d_(e, "service") in (service, None)]

    def logs_of(self, revision: str) -> list[Evidence]:
        return [e for e in self.logs if d_(e, "revision") == revision]

    def guess_revision(self, service: str, first: float | None, last: float | None) -> str | None:
        lo = (first if first is not None else float("-inf")) - 60
        hi = (last if last is not None else float("inf")) + 60
        for item in self.logs:
            if d_(item, "service") != service or d_(item, "exit_code") is None:
                continue
            start, end = start_(item), num(d_(item, "last")) or start_(item)
            if start <= hi and end >= lo and d_(item, "revision"):
                return str(d_(item, "revision"))
        serving = [r for r in self.of(K.REVISION, service=service) if d_(r, "serving")]
        return str(d_(serving[0], "revision")) if len(serving) == 1 else None
