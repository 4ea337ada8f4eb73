"""The times ``rollsafe incidents`` and ``rollsafe why`` take, and the windows they read.

A time is an RFC 3339 timestamp (``2026-12-06T09:15:00Z``, an offset instead of ``Z``, a
fraction of a second allowed) or a duration back from now: a whole or decimal number and
one unit, ``s``, ``m``, ``h``, ``d`` or ``w`` (``90s``, ``2m``, ``1.5h``, ``7d``).
"""

from __future__ import annotations

import re
from datetime import datetime

from rollsafe.errors import UsageError
from rollsafe.incidents.model import Episode

__all__ = [
    "AFTER_EPISODE",
    "BEFORE_EPISODE",
    "DEFAULT_LOOKBACK",
    "episode_window",
    "parse_time",
]

#: how far back ``rollsafe incidents`` (and ``why`` without ``--since``) look: 7 days
DEFAULT_LOOKBACK = 7 * 86400.0
#: an episode's report reads from 10 minutes before it started (the change that led to it)
BEFORE_EPISODE = 600.0
#: to 2 minutes after it ended (the recovery)
AFTER_EPISODE = 120.0

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_HINT = "give an RFC 3339 time (2026-12-06T09:15:00Z) or a duration back from now (90s, 2m, 1h, 3d)"


def _invalid(option: str, text: str, why: str) -> UsageError:
    return UsageError(f"{option} {text!r}: {why}", hint=_HINT)


def parse_time(text: str, *, now: float, option: str) -> float:
    """``text`` as ``time.time()`` seconds: an RFC 3339 time, or a duration before ``now``.

    Raises ``UsageError`` (exit 2) naming ``option`` (``--since``) for anything else, for a
    time without an offset (which zone was meant is unknown) and for a time after ``now``.
    """
    raw = text.strip()
    if not raw:
        raise _invalid(option, text, "is empty")
    match = _DURATION.fullmatch(raw.lower())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        stamp = datetime.fromisoformat(raw[:-1] + "+00:00" if raw[-1] in "zZ" else raw)
    except ValueError:
        raise _invalid(option, text, "is neither an RFC 3339 time nor a duration") from None
    if stamp.tzinfo is None:
        raise _invalid(option, text, "has no time zone (add Z for UTC, or an offset)")
    moment = stamp.timestamp()
    if moment > now + 1.0:
        raise _invalid(option, text, "is in the future")
    return moment


def episode_window(episode: Episode, now: float) -> tuple[float, float]:
    """The window a report on ``episode`` reads: 10 minutes before it started to 2 minutes
    after it ended (now, while it goes on), never past ``now``."""
    start = episode.start - BEFORE_EPISODE
    end = now if episode.end is None else min(now, episode.end + AFTER_EPISODE)
    return start, max(end, episode.start)
