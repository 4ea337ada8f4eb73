"""parse_time: RFC 3339 times and durations back from now; episode windows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rollsafe.errors import UsageError
from rollsafe.incidents.model import Episode
from rollsafe.incidents.window import (
    AFTER_EPISODE,
    BEFORE_EPISODE,
    episode_window,
    parse_time,
)

NOW = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("90s", 90),
        ("2m", 120),
        ("1h", 3600),
        ("1.5h", 5400),
        ("3d", 3 * 86400),
        ("1w", 7 * 86400),
        (" 10M ", 600),
        ("0s", 0),
    ],
    ids=["seconds", "minutes", "hours", "decimal", "days", "weeks", "case-and-space", "zero"],
)
def test_durations_count_back_from_now(text: str, back: float) -> None:
    assert parse_time(text, now=NOW, option="--since") == NOW - back


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-06T09:15:00Z", datetime(2026, 12, 6, 9, 15, tzinfo=UTC)),
        ("2026-12-06T09:15:00.250z", datetime(2026, 12, 6, 9, 15, 0, 250000, tzinfo=UTC)),
        ("2026-12-06T10:15:00+01:00", datetime(2026, 12, 6, 9, 15, tzinfo=UTC)),
        ("2026-12-06 09:15:00+00:00", datetime(2026, 12, 6, 9, 15, tzinfo=UTC)),
    ],
    ids=["utc", "fraction-lower-z", "offset", "space-separator"],
)
def test_rfc3339_times(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW, option="--since") == expected.timestamp()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "is empty"),
        ("yesterday", "neither an RFC 3339 time nor a duration"),
        ("10", "neither"),
        ("-5m", "neither"),
        ("5 minutes", "neither"),
        ("2026-12-06T09:15:00", "no time zone"),
        ("2026-12-07T09:15:00Z", "in the future"),
        ("2026-13-06T09:15:00Z", "neither"),
    ],
    ids=["empty", "word", "no-unit", "negative", "long-unit", "naive", "future", "bad-month"],
)
def test_bad_times_are_usage_errors_naming_the_option(text: str, why: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_time(text, now=NOW, option="--until")
    assert caught.value.exit_code == 2
    assert caught.value.message.startswith(f"--until {text!r}: ")
    assert why in caught.value.message
    assert caught.value.hint is not None
    assert "2m" in caught.value.hint


def _episode(start: float, end: float | None) -> Episode:
    return Episode("INC-x", ("alert",), start, end, ("web",), "web: ServiceDown alert")


@pytest.mark.parametrize(
    ("end", "expected_end"),
    [
        (NOW - 1000, NOW - 1000 + AFTER_EPISODE),
        (NOW - 30, NOW),
        (None, NOW),
    ],
    ids=["ended", "ended-just-now", "going-on"],
)
def test_episode_window(end: float | None, expected_end: float) -> None:
    start = NOW - 2000
    assert episode_window(_episode(start, end), NOW) == (start - BEFORE_EPISODE, expected_end)
