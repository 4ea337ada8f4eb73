"""Is a value a stand-in ("changeme", "<your-key>", "xxxx", "${VAR}") rather than real?

Used by the ``not_placeholder`` rule (on by default for every secret) and by
``machine_secret``. The dictionary is only consulted when a short placeholder word is
found, so most values are judged without loading it.
"""

from __future__ import annotations

import re
import string

from rollsafe.rules import _wordlist

__all__ = ["is_placeholder"]

# Random base64 has at most 45% of its letters in dictionary words (100 000 samples).
WORDY_SHARE = 0.6

_NON_ALNUM_RE = re.compile(r"[^a-z0-9]+")
_COARSE_SPLIT_RE = re.compile(r"[^A-Za-z0-9]+")
_FINE_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_X_RUN_RE = re.compile(r"x{3,}")
_TEMPLATE_RE = re.compile(
    r"\$\{[\w.:-]*\}|\{\{[^{}]*\}\}|<[\w .-]+>|%\(\w+\)s|\$[A-Z_][A-Z0-9_]*|\.\.\.+|\*+"
)
_LONG_PLACEHOLDERS = tuple(t for t in _wordlist.PLACEHOLDER_TOKENS if len(t) >= 6)
_LEET_TABLE = str.maketrans(_wordlist.LEET)


def is_placeholder(value: str) -> bool:
    """True when ``value`` looks like a stand-in ("changeme", "<your-key>", "xxxx", "${X}").

    The whole value, its punctuation-separated tokens and its camelCase / digit-split
    tokens are compared with known placeholder words. Short words ("foo", "test") also turn
    up in random values, so they count only when the value reads as words, not as noise.
    """
    stripped = value.strip()
    if _TEMPLATE_RE.fullmatch(stripped):
        return True
    whole = _NON_ALNUM_RE.sub("", stripped.lower())
    if not whole or _is_placeholder_word(whole, _wordlist.PLACEHOLDER_VALUES):
        return True
    unleet = _NON_ALNUM_RE.sub("", stripped.lower().translate(_LEET_TABLE))
    for candidate in (whole, unleet):
        if candidate.startswith(_LONG_PLACEHOLDERS) or candidate.endswith(_LONG_PLACEHOLDERS):
            return True
    short_hit = False
    for coarse in _COARSE_SPLIT_RE.split(stripped):
        # Fine tokens are in natural case by construction; coarse ones must be checked.
        tokens = [coarse] if _natural_case(coarse) else []
        tokens += [t for t in _FINE_RE.findall(coarse) if len(t) >= 4]
        for token in tokens:
            if _is_placeholder_word(token.lower(), _wordlist.PLACEHOLDER_TOKENS):
                if len(token.strip(string.digits)) >= 6:
                    return True
                short_hit = True
    return short_hit and _word_share(stripped) >= WORDY_SHARE


def _natural_case(token: str) -> bool:
    letters = token.strip(string.digits)
    return letters.islower() or letters.isupper() or letters.istitle()


def _word_share(value: str) -> float:
    """The share of letters that belong to dictionary words (random values: under 0.5)."""
    ranks = _wordlist.word_ranks()
    tokens = _FINE_RE.findall(value)
    letters = sum(len(t) for t in tokens if not t.isdigit())
    if not letters:
        return 0.0
    in_words = sum(
        len(t)
        for t in tokens
        if len(t) >= 2 and (t.lower() in ranks or t.lower() in _wordlist.PLACEHOLDER_TOKENS)
    )
    return in_words / letters


def _is_placeholder_word(word: str, vocabulary: frozenset[str]) -> bool:
    # "changeme123" is still "changeme"; "839201" is not the placeholder "" or "0".
    letters = word.strip(string.digits) or word
    return word in vocabulary or letters in vocabulary or _X_RUN_RE.fullmatch(letters) is not None
