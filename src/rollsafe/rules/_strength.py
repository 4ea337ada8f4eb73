"""Estimate how random a secret is, fast, and describe it without revealing it.

zxcvbn's idea (a value is as strong as its cheapest description) with a much smaller
matcher: this runs in every service at start-up, where 20 secrets must take well under
5 ms, and ``zxcvbn.zxcvbn()`` takes about 4 ms for one. Literal characters are worth
``log2(alphabet)`` bits each; patterns (dictionary words, runs and repeated blocks,
keyboard and alphabet sequences, years) only the few bits needed to name them. Dynamic
programming over positions picks the cheapest split. Random values hold short patterns by
chance, so savings under ``CHANCE_BITS`` are put down to chance and the literal estimate
stands. Beside the estimate: Shannon entropy per character against what a random value of
the same length and alphabet shows, zlib compressibility, and placeholders.
"""

from __future__ import annotations

import functools
import math
import re
import string
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from rollsafe.rules import _wordlist
from rollsafe.rules._placeholders import is_placeholder

__all__ = ["SecretStrength", "character_classes", "estimate_secret_strength"]

# Chance savings measured on 100 000 random values of each format, 99.99th percentile and
# maximum: token_hex(16) 19 / 26 bits, token_urlsafe(16) 26 / 31, token_urlsafe(32) 33 / 43.
# Only values near min_bits are at risk (a 43-character token has 258 bits to spare), and
# those are the short ones. Hand-made values save 60 bits and more.
CHANCE_BITS = 32.0
# detect-secrets flags hex at 3.0 and base64 at 4.5 bits/char, 75% of the maximum. A short
# value cannot reach the maximum (22 characters carry at most log2(22) = 4.46), so the
# threshold is a share of what a random value of the same length and alphabet shows on
# average. 200 000 random values of 32 hex characters went as low as 75% of it, hence 70%.
ENTROPY_RATIO = 0.70
COMPRESSION_FLOOR = 0.5
# Under 16 characters no alphabet reaches 128 bits, and the statistics are too noisy.
MIN_STATS_LENGTH = 16
PATTERN_SHARE = 0.5
KIND_SHARE = 0.2
SEPARATOR_BITS = 2.0
MAX_BLOCK = 16

_DIGITS = frozenset(string.digits)
_HEX_LOWER = frozenset(string.digits + "abcdef")
_HEX_UPPER = frozenset(string.digits + "ABCDEF")
_LOWER = frozenset(string.ascii_lowercase)
_UPPER = frozenset(string.ascii_uppercase)
_ALNUM = frozenset(string.ascii_letters + string.digits)
_B64URL = _ALNUM | frozenset("-_")
_B64STD = _ALNUM | frozenset("+/")
CLASS_SIZES = {"lower": 26, "upper": 26, "digit": 10, "symbol": 33}
CLASS_NAMES = {"lower": "lowercase", "upper": "uppercase", "digit": "digits", "symbol": "symbols"}

REASON_WORDS = "made of dictionary words"
REASON_REPEAT = "a repeated pattern"
REASON_SEQUENCE = "a keyboard or numeric sequence"
REASON_COMPRESSIBLE = "highly compressible"
REASON_PLACEHOLDER = "looks like a placeholder"
_KIND_REASONS = {"word": REASON_WORDS, "repeat": REASON_REPEAT, "sequence": REASON_SEQUENCE}

_REPEAT_RE = re.compile(rf"(.{{1,{MAX_BLOCK}}}?)\1+", re.S)
_LETTERS_RE = re.compile(r"[a-z]{4,}")
# Tokens split at case changes and letter/digit boundaries, as "IsMyKey2" -> Is My Key 2.
_TOKEN_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_YEAR_RE = re.compile(r"(?<![0-9])(?:19[5-9][0-9]|20[0-4][0-9])(?![0-9])")
_SEQ_TEXT = "\n".join(
    _wordlist.KEYBOARD_SEQUENCES + tuple(s[::-1] for s in _wordlist.KEYBOARD_SEQUENCES)
)
_SEQ_GRAMS = frozenset(
    line[i : i + 4] for line in _SEQ_TEXT.split("\n") for i in range(len(line) - 3)
)
_SEQ_START_BITS = math.log2(len(_SEQ_TEXT))
_LEET_TABLE = str.maketrans(_wordlist.LEET)
_LEET_CHARS = frozenset(_wordlist.LEET)


@dataclass(frozen=True, slots=True)
class SecretStrength:
    """What may be said about a secret: never the value, only its shape.

    ``bits`` is the estimated randomness; ``reasons`` are the weaknesses found that do not
    depend on a bit threshold (see :meth:`failures` for those that do).
    """

    length: int
    classes: tuple[str, ...]
    alphabet: int
    alphabet_name: str
    bits: float
    shannon: float
    shannon_needed: float
    compression: float | None
    placeholder: bool
    reasons: tuple[str, ...]

    def describe(self) -> str:
        """A one-line, value-free description: length, classes and estimated bits."""
        names = ", ".join(CLASS_NAMES[c] for c in self.classes) or "no characters"
        return f"{self.length} characters ({names}), about {self.bits:.0f} bits"

    def failures(self, min_bits: int) -> tuple[str, ...]:
        """Every weakness as a message: the bit estimate against ``min_bits``, then reasons."""
        found: list[str] = []
        if self.bits < min_bits:
            found.append(f"estimated {self.bits:.0f} bits of randomness, needs {min_bits}")
        return (*found, *self.reasons)


class _Match(NamedTuple):
    # A NamedTuple, not a dataclass: cheaper to define at import and to create per match.
    start: int
    end: int
    cost: float
    kind: str


def estimate_secret_strength(value: str) -> SecretStrength:
    """Estimate the randomness of ``value`` and find the weaknesses of hand-made secrets.

    Fast (about 50 microseconds for 64 characters once the word list is loaded) and
    deterministic. The result holds no part of the value, so it may be logged.
    """
    core = _strip_padding(value)
    n = len(core)
    chars = frozenset(core)
    classes = _classes(chars)
    alphabet, alphabet_name = _alphabet(chars, classes)
    per_char = math.log2(alphabet) if alphabet > 1 else 0.0
    literal = n * per_char
    placeholder = is_placeholder(value)

    reasons: list[str] = []
    if placeholder:
        reasons.append(REASON_PLACEHOLDER)

    bits = literal
    if n >= 4:
        raw, chosen = _describe(core, per_char, depth=0)
        # Short values (which fail anyway) show their patterned estimate: chance seldom
        # saves half the literal bits.
        if literal - raw >= min(CHANCE_BITS, literal / 2):
            bits = raw
            reasons.extend(_pattern_reasons(chosen, n))

    shannon = _shannon(core)
    needed = ENTROPY_RATIO * _expected_shannon(n, alphabet) if n >= MIN_STATS_LENGTH else 0.0
    if shannon < needed:
        reasons.append(
            f"low character entropy ({shannon:.1f} bits/char, "
            f"needs {needed:.1f} for {alphabet_name})"
        )

    compression: float | None = None
    if n >= MIN_STATS_LENGTH and literal > 0:
        compressed_bits = 8 * len(zlib.compress(core.encode(), 9, wbits=-15))
        compression = compressed_bits / literal
        if compression < COMPRESSION_FLOOR:
            reasons.append(REASON_COMPRESSIBLE)

    return SecretStrength(
        length=len(value),
        classes=classes,
        alphabet=alphabet,
        alphabet_name=alphabet_name,
        bits=bits,
        shannon=shannon,
        shannon_needed=needed,
        compression=compression,
        placeholder=placeholder,
        reasons=tuple(reasons),
    )


def character_classes(value: str) -> tuple[str, ...]:
    """The classes present, in order: lower, upper, digit (ASCII), symbol (anything else)."""
    return _classes(frozenset(value))


def _strip_padding(value: str) -> str:
    core = value.rstrip("=")
    if 0 < len(value) - len(core) <= 2 and core and (set(core) <= _B64STD or set(core) <= _B64URL):
        return core
    return value


def _classes(chars: frozenset[str]) -> tuple[str, ...]:
    found: list[str] = []
    if not chars.isdisjoint(_LOWER):
        found.append("lower")
    if not chars.isdisjoint(_UPPER):
        found.append("upper")
    if not chars.isdisjoint(_DIGITS):
        found.append("digit")
    if not chars <= _ALNUM:
        found.append("symbol")
    return tuple(found)


def _alphabet(chars: frozenset[str], classes: tuple[str, ...]) -> tuple[int, str]:
    """The alphabet the value was most plausibly drawn from, and its name for messages."""
    if not chars:
        return 0, "an empty value"
    if chars <= _DIGITS:
        return 10, "digits"
    if chars <= _HEX_LOWER or chars <= _HEX_UPPER:
        return 16, "hex"
    if chars <= _B64URL or chars <= _B64STD:
        # An encoder's output uses both cases; only then assume all 64 symbols.
        if "lower" in classes and "upper" in classes:
            return 64, "base64"
        size = sum(2 if c == "symbol" else CLASS_SIZES[c] for c in classes)
        return size, f"a {size}-symbol alphabet"
    size = sum(CLASS_SIZES[c] for c in classes)
    return size, f"a {size}-symbol alphabet"


def _shannon(text: str) -> float:
    n = len(text)
    if n < 2:
        return 0.0
    return math.log2(n) - sum(c * math.log2(c) for c in Counter(text).values()) / n


@functools.lru_cache(maxsize=512)
def _expected_shannon(n: int, alphabet: int) -> float:
    """Mean per-character Shannon entropy of ``n`` characters drawn uniformly at random.

    Exact for ``n <= 512`` (each symbol's count is binomial), Miller-Madow beyond.
    """
    if alphabet < 2 or n < 2:
        return 0.0
    if n > 512:
        return math.log2(alphabet) - (alphabet - 1) / (2 * n * math.log(2))
    p = 1 / alphabet
    pmf = (1 - p) ** n
    expected_c_log_c = 0.0
    for j in range(1, n + 1):
        pmf *= (n - j + 1) / j * p / (1 - p)
        expected_c_log_c += pmf * j * math.log2(j)
    return math.log2(n) - alphabet * expected_c_log_c / n


def _pattern_reasons(chosen: list[_Match], n: int) -> list[str]:
    """Name the kinds of pattern that make up a large part of the value."""
    covered: dict[str, int] = {}
    for m in chosen:
        covered[m.kind] = covered.get(m.kind, 0) + m.end - m.start
    if sum(covered.values()) < PATTERN_SHARE * n:
        return []
    return [
        reason for kind, reason in _KIND_REASONS.items() if covered.get(kind, 0) >= KIND_SHARE * n
    ]


def _describe(text: str, per_char: float, depth: int) -> tuple[float, list[_Match]]:
    """The cheapest description of ``text`` in bits, and the patterns it uses."""
    n = len(text)
    low = text.lower()
    matches = _repeats(text, per_char, depth) + _sequences(text, low)
    matches += _words(text, low) + _years(text)
    matches = [m for m in matches if m.cost < (m.end - m.start) * per_char]
    if not matches:
        return n * per_char, []

    ends: dict[int, list[_Match]] = {}
    starts = set()
    for m in matches:
        ends.setdefault(m.end, []).append(m)
        starts.add(m.start)
    best = [0.0] * (n + 1)
    back: list[_Match | None] = [None] * (n + 1)
    for i in range(1, n + 1):
        char_bits = per_char
        # A separator between two patterns ("super-secret") says little.
        if i - 1 in ends and i in starts and not text[i - 1].isalnum():
            char_bits = min(per_char, SEPARATOR_BITS)
        best[i] = best[i - 1] + char_bits
        for m in ends.get(i, ()):
            if best[m.start] + m.cost < best[i]:
                best[i] = best[m.start] + m.cost
                back[i] = m
    chosen: list[_Match] = []
    i = n
    while i > 0:
        step = back[i]
        if step is None:
            i -= 1
        else:
            chosen.append(step)
            i = step.start
    return best[n], chosen


def _repeats(text: str, per_char: float, depth: int) -> list[_Match]:
    """Runs of one character and blocks repeated back to back."""
    found: list[_Match] = []
    for m in _REPEAT_RE.finditer(text):
        block, length = m.group(1), m.end() - m.start()
        k = len(block)
        if k == 1:
            if length >= 4:
                found.append(_Match(m.start(), m.end(), per_char + math.log2(length) + 1, "repeat"))
        elif length >= max(6, 2 * k) and depth < 2:
            block_bits = _describe(block, per_char, depth + 1)[0]
            cost = block_bits + math.log2(length / k) + 1
            found.append(_Match(m.start(), m.end(), cost, "repeat"))
    n = len(text)
    if depth < 2:
        for k in range(MAX_BLOCK + 1, n // 2 + 1):
            if text[k:] == text[:-k]:
                block_bits = _describe(text[:k], per_char, depth + 1)[0]
                found.append(_Match(0, n, block_bits + math.log2(n / k) + 1, "repeat"))
                break
    return found


def _sequences(text: str, low: str) -> list[_Match]:
    """Alphabet, digit and keyboard sequences of 4 or more, either direction."""
    found: list[_Match] = []
    last_end = 0
    for i in range(len(low) - 3):
        if i < last_end or low[i : i + 4] not in _SEQ_GRAMS:
            continue
        j = i + 4
        while j < len(low) and low[i : j + 1] in _SEQ_TEXT:
            j += 1
        case_bits = 0.0 if text[i:j] == low[i:j] else 1.0
        found.append(_Match(i, j, _SEQ_START_BITS + math.log2(j - i) + case_bits + 1, "sequence"))
        last_end = j
    return found


def _words(text: str, low: str) -> list[_Match]:
    """Dictionary words, also spelt with digits or symbols for letters ("p4ssw0rd")."""
    ranks = _wordlist.word_ranks()
    found = _dictionary_matches(text, low, low, ranks, leet=False)
    if not _LEET_CHARS.isdisjoint(low):
        found += _dictionary_matches(text, low.translate(_LEET_TABLE), low, ranks, leet=True)
    # Short words inside longer letter runs are too common to count, but as a token of
    # their own ("my-key", "IsMyKey") they are words.
    for m in _TOKEN_RE.finditer(text):
        token = m.group()
        rank = ranks.get(token.lower()) if 2 <= len(token) <= 4 else None
        if rank is not None:
            found.append(
                _Match(m.start(), m.end(), math.log2(rank) + _case_bits(token) + 1, "word")
            )
    return found


def _dictionary_matches(
    text: str, letters: str, low: str, ranks: dict[str, int], *, leet: bool
) -> list[_Match]:
    """Every dictionary word inside each run of letters (the search picks among them).

    With ``leet``, ``letters`` is the value with digits and symbols read as letters, and
    only words that needed such a substitution are kept (the plain pass found the rest).
    """
    found: list[_Match] = []
    short = _wordlist.common_short_passwords()
    longest = _wordlist.longest_word()
    prefixes = _wordlist.word_prefixes()
    for run in _LETTERS_RE.finditer(letters):
        run_start, run_end = run.span()
        for i in range(run_start, run_end - 3):
            if letters[i : i + 4] not in prefixes:
                continue
            for j in range(min(run_end, i + longest), i + 3, -1):
                word = letters[i:j]
                rank = ranks.get(word)
                if rank is None or (j - i == 4 and word not in short):
                    continue
                subs = sum(1 for a, b in zip(word, low[i:j], strict=True) if a != b) if leet else 0
                if leet and not subs:
                    continue
                cost = math.log2(rank) + _case_bits(text[i:j]) + subs + 1
                # "qwerty" is a common password because it is a keyboard sequence.
                kind = "sequence" if word in _SEQ_TEXT else "word"
                found.append(_Match(i, j, cost, kind))
    return found


def _case_bits(word: str) -> float:
    if word.islower() or not any(c.isalpha() for c in word):
        return 0.0
    if word.isupper() or (word[0].isupper() and word[1:].islower()):
        return 1.0
    return float(len(word))


def _years(text: str) -> list[_Match]:
    # 1950-2049: the years people put in passwords; counted with the words.
    return [_Match(m.start(), m.end(), math.log2(100) + 1, "word") for m in _YEAR_RE.finditer(text)]
