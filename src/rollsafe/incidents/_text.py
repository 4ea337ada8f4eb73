"""Small wording helpers shared by the rule base, the factors and the report.

Every sentence the report writes goes through these: times as RFC 3339, durations in
words a reader takes in at a glance, quotes of recorded text as code spans, and the list
of hindsight phrases the report never writes (Allspaw, "The Infinite Hows"; Leveson, CAST).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rollsafe.incidents.model import Evidence, iso

#: phrases that judge with hindsight; none appears in anything the report writes
HINDSIGHT = (
    "should have",
    "should not have",
    "shouldn't have",
    "failed to",
    "if only",
    "could have",
    "would have",
    "human error",
    "root cause was human",
    "careless",
    "negligen",
)

_ID = re.compile(r"^E(\d+)$")
_CODE_SPAN = re.compile(r"`[^`]*`")


def hindsight(text: str) -> list[str]:
    """The hindsight phrases ``text`` uses outside code spans (quotes of recorded text)."""
    plain = _CODE_SPAN.sub(" ", text).lower()
    return [phrase for phrase in HINDSIGHT if phrase in plain]


def quote(text: str | None, limit: int = 120) -> str | None:
    """``text`` as a code span (a quote of what was recorded), shortened to ``limit``.

    None when there is nothing to quote or when the recorded text itself uses a hindsight
    phrase: the report then cites the evidence id instead of repeating the words.
    """
    if not text:
        return None
    line = " ".join(str(text).split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    line = line.replace("`", "'")
    if any(phrase in line.lower() for phrase in HINDSIGHT):
        return None
    return f"`{line}`"


def when(moment: float | None) -> str:
    """A moment as RFC 3339 UTC with milliseconds, or "an unknown time"."""
    return iso(moment) or "an unknown time"


def seconds(value: float | None) -> str:
    """A duration in words: ``0.06 s``, ``42 s``, ``3 min 12 s``, ``1 h 4 min``."""
    if value is None:
        return "an unknown time"
    if value < 10:
        return f"{value:.2f} s".replace(".00 s", " s")
    if value < 60:
        return f"{value:.0f} s"
    whole = round(value)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 request``, ``3 requests``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def id_key(evidence_id: str) -> tuple[int, str]:
    """Sort key of evidence ids: E2 before E10."""
    found = _ID.match(evidence_id)
    return (int(found.group(1)) if found else 1 << 30, evidence_id)


def ids(*groups: Iterable[str | Evidence | None]) -> tuple[str, ...]:
    """Evidence ids from ``groups``, each once, in evidence order."""
    seen: set[str] = set()
    for group in groups:
        for item in group:
            if item is None:
                continue
            seen.add(item.id if isinstance(item, Evidence) else item)
    return tuple(sorted(seen, key=id_key))


def num(value: Any) -> float | None:
    """A recorded number, or None when it is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def statuses_text(statuses: dict[Any, int]) -> str:
    """``503 (12), 500 (2)`` (status exactly as recorded, most frequent first)."""
    items = sorted(statuses.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return ", ".join(f"{status} ({count})" for status, count in items)


def relative(moment: float, first: float | None, what: str = "the first bad answer") -> str:
    """``, 1.2 s after the first bad answer`` (or before), or "" when ``first`` is unknown."""
    if first is None:
        return ""
    if moment >= first:
        return f", {seconds(moment - first)} after {what}"
    return f", {seconds(first - moment)} before {what}"


def fired_at(item: Evidence) -> float | None:
    """When an alert's firing event happened (its evidence time), else when it began."""
    return item.time if item.time is not None else num(item.data.get("starts_at"))
