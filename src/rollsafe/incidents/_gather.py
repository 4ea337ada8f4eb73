"""What the evidence readers share: the pile they add to, the scrubber, small formatters.

Each ``_*_evidence`` module reads one source and adds ``Evidence`` without ids to a
``Pile``; ``EvidenceCollector`` sorts the pile and numbers it. A source that cannot be read
is noted in ``Pile.unreadable`` and the others go on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from rollsafe.errors import RollsafeError
from rollsafe.incidents.model import Evidence, EvidenceKind, iso

__all__ = [
    "MAX_EXCERPT",
    "Pile",
    "Scrubber",
    "clip",
    "read_errors",
    "reading",
    "seconds",
    "when",
]

#: excerpts are short quotes
MAX_EXCERPT = 300
#: values shorter than this are not scrubbed from text: they would mangle ordinary words
#: (a secret that short is reported weak anyway, by its length)
_MIN_SCRUB = 4
SCRUBBED = "***"


def clip(text: str, limit: int = MAX_EXCERPT) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def seconds(stamp: datetime | None) -> float | None:
    return stamp.timestamp() if stamp is not None else None


def when(moment: float | None) -> str:
    """A time for an excerpt: RFC 3339 UTC, or ``?``."""
    return iso(moment) or "?"


class Scrubber:
    """Replaces every secret value read so far by ``***`` in text it is given.

    It holds the values only for the collection it was made for (a local of ``collect``);
    its ``repr`` shows how many, never which.
    """

    __slots__ = ("_pattern", "_values")

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def __repr__(self) -> str:
        return f"Scrubber(<{len(self._values)} values>)"

    def add(self, value: str) -> None:
        if len(value) >= _MIN_SCRUB and value not in self._values:
            self._values.add(value)
            self._pattern = None

    def text(self, text: str) -> str:
        if not self._values or not text:
            return text
        if self._pattern is None:
            # longest first: a value that contains another is replaced whole
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
        return self._pattern.sub(SCRUBBED, text)

    def value(self, raw: Any) -> Any:
        """``raw`` with every string in it (keys too) scrubbed."""
        if isinstance(raw, str):
            return self.text(raw)
        if isinstance(raw, dict):
            return {self.value(k): self.value(v) for k, v in raw.items()}
        if isinstance(raw, list | tuple):
            return type(raw)(self.value(v) for v in raw)
        return raw

    def evidence(self, piece: Evidence) -> Evidence:
        return replace(
            piece,
            source=self.text(piece.source),
            excerpt=self.text(piece.excerpt),
            data=self.value(piece.data),
        )

    def clear(self) -> None:
        self._values.clear()
        self._pattern = None


@dataclass
class Pile:
    """Evidence gathered for one window, before it is numbered."""

    since: float
    until: float
    #: the collector's clock when it began: the end of what has not ended
    now: float
    pieces: list[Evidence] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: revisions other evidence names, per service: their ``revision`` evidence is added
    revisions: dict[str, set[str]] = field(default_factory=dict)

    def add(
        self,
        kind: EvidenceKind,
        time: float | None,
        source: str,
        excerpt: str,
        data: dict[str, Any],
    ) -> None:
        self.pieces.append(Evidence("", kind, time, source, clip(excerpt), data))

    def cannot_read(self, what: str, why: str) -> None:
        self.unreadable.append((what, clip(why, 500)))

    def mention(self, service: str, revision: str | None) -> None:
        """``revision`` of ``service`` takes part: the report shows its conditions."""
        if revision:
            self.revisions.setdefault(service, set()).add(revision)


def read_errors() -> tuple[type[BaseException], ...]:
    """What reading a source may raise besides our own errors: no Google credentials
    (raised by google.auth at a token refresh), a connection lost."""
    found: list[type[BaseException]] = [RollsafeError, OSError]
    try:
        from google.auth.exceptions import GoogleAuthError
    except ImportError:  # pragma: no cover - the google extras are installed with rollsafe
        pass
    else:
        found.append(GoogleAuthError)
    return tuple(found)


@contextmanager
def reading(pile: Pile, what: str) -> Iterator[None]:
    """Run a source's reads; an error becomes ``unreadable`` (what, why) and is swallowed."""
    try:
        yield
    except read_errors() as exc:
        message = exc.message if isinstance(exc, RollsafeError) else str(exc)
        pile.cannot_read(what, message or type(exc).__name__)
