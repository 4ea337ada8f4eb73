"""Word lists and fixed tables that the secret-strength analysis matches against.

The dictionary comes from the ``zxcvbn`` package (English Wikipedia, common passwords,
names, TV and film). Importing it costs about 25 ms, so it is loaded on first use only:
``import rollsafe.rules`` must stay fast because it runs inside every service at start-up.
"""

from __future__ import annotations

import functools
import operator

__all__ = [
    "KEYBOARD_SEQUENCES",
    "LEET",
    "PLACEHOLDER_TOKENS",
    "PLACEHOLDER_VALUES",
    "common_short_passwords",
    "longest_word",
    "word_prefixes",
    "word_ranks",
    "words",
]

MIN_WORD_LENGTH = 4

# Strings whose runs of 4 or more characters (either direction) a person types without
# thinking: the alphabet, the digits, the rows and columns of a qwerty keyboard.
KEYBOARD_SEQUENCES: tuple[str, ...] = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "!@#$%^&*()",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/",
)

# One letter per substitute is enough for matching: "p4ssw0rd" -> "password".
LEET: dict[str, str] = {
    "4": "a",
    "@": "a",
    "8": "b",
    "3": "e",
    "6": "g",
    "1": "i",
    "!": "i",
    "0": "o",
    "5": "s",
    "$": "s",
    "7": "t",
    "+": "t",
    "2": "z",
}

# Any token of a value equal to one of these marks it as a placeholder. Tokens come from
# splitting on punctuation, case changes and letter/digit boundaries; tokens shorter than
# four characters only count when punctuation or the ends of the value delimit them, so
# random values do not trip over "foo" or "bar" by chance.
PLACEHOLDER_TOKENS: frozenset[str] = frozenset(
    {
        "bar",
        "baz",
        "changeit",
        "changeme",
        "changethis",
        "default",
        "demo",
        "dummy",
        "example",
        "fake",
        "fixme",
        "foo",
        "foobar",
        "insert",
        "mock",
        "none",
        "null",
        "passwd",
        "password",
        "placeholder",
        "redacted",
        "replace",
        "replaceme",
        "sample",
        "secret",
        "tbd",
        "test",
        "testing",
        "todo",
        "undefined",
        "your",
        "yours",
    }
)

# Whole values (lowercased, punctuation removed) that are placeholders although their
# tokens are too common to judge alone.
PLACEHOLDER_VALUES: frozenset[str] = PLACEHOLDER_TOKENS | frozenset(
    {
        "0",
        "1",
        "abc",
        "admin",
        "empty",
        "false",
        "hunter2",
        "letmein",
        "na",
        "nil",
        "no",
        "notset",
        "qwerty",
        "secretkey",
        "temp",
        "tmp",
        "true",
        "unset",
        "value",
        "yes",
    }
)


def _frequency_lists() -> dict[str, list[str]]:
    from zxcvbn.frequency_lists import (  # type: ignore[import-untyped]  # deferred: ~25 ms
        FREQUENCY_LISTS,
    )

    lists: dict[str, list[str]] = FREQUENCY_LISTS
    return lists


@functools.cache
def word_ranks() -> dict[str, int]:
    """Map each word of the zxcvbn frequency lists (all lowercase) to its best rank.

    A word's rank stands in for how early an attacker would guess it, so ``log2(rank)``
    is the number of bits it is worth. Built with C-level dict operations: this runs once
    per process, inside the service's start-up.
    """
    ranks: dict[str, int] = {}
    for entries in _frequency_lists().values():
        # Reversed, so a word listed twice keeps its better (lower) rank.
        ranked = dict(zip(reversed(entries), range(len(entries), 0, -1), strict=True))
        better = {w: ranks[w] for w in ranks.keys() & ranked.keys() if ranks[w] < ranked[w]}
        ranks.update(ranked)
        ranks.update(better)
    return ranks


@functools.cache
def words() -> frozenset[str]:
    """All words of the zxcvbn lists of length 4 or more, lowercase."""
    return frozenset(w for w in word_ranks() if len(w) >= MIN_WORD_LENGTH)


@functools.cache
def common_short_passwords() -> frozenset[str]:
    """Four-character entries of the top 1000 common passwords ("love", "asdf", "1234")."""
    return frozenset(p for p in _frequency_lists()["passwords"][:1000] if len(p) == 4)


@functools.cache
def word_prefixes() -> frozenset[str]:
    """The first four letters of every word: most positions of a random value fail here.

    Shorter words add shorter strings, which never equal a four-letter slice.
    """
    return frozenset(map(operator.itemgetter(slice(0, MIN_WORD_LENGTH)), word_ranks()))


@functools.cache
def longest_word() -> int:
    """Length of the longest dictionary word, to bound substring look-ups."""
    return max(map(len, word_ranks()))
