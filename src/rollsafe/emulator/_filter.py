"""The filter language of Google list APIs (AIP-160) and Cloud Logging: the subset we serve.

A filter is terms (``FIELD OP VALUE`` with ``=``, ``!=``, ``:``, ``<``, ``<=``, ``>``, ``>=``,
``=~``, ``!~``, or a bare value) combined with ``AND`` (or just whitespace), ``OR``, ``NOT``
or ``-``, and parentheses. As in both languages, ``OR`` binds tighter than ``AND``:
``a b OR c`` means ``a AND (b OR c)``.

Each API compiles the terms it knows into predicates (``compile_term``); it rejects any other
term with INVALID_ARGUMENT naming it, so a filter is never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from rollsafe.emulator._google import GoogleError, invalid_argument

__all__ = [
    "Term",
    "compile_filter",
    "ordered_test",
    "parse_time",
    "string_test",
    "unsupported",
]

T = TypeVar("T")
Predicate = Callable[[T], bool]

# longest first, so `<=` is not read as `<`
_OPS = ("<=", ">=", "!=", "=~", "!~", "=", ":", "<", ">")
_OP_CHARS = frozenset("=!<>:~")
_WORD_STOP = frozenset('()"') | _OP_CHARS
_KEYWORD = re.compile(r"(AND|OR|NOT)(?=[\s(]|$)")
_FRACTION = re.compile(r"\.(\d{6})\d+")


@dataclass(frozen=True, slots=True)
class Term:
    """One comparison: ``field`` and ``op`` are empty for a bare value (global restriction)."""

    field: str
    op: str
    value: str
    text: str  # as written, for error messages


def unsupported(term: Term, why: str = "") -> GoogleError:
    """The INVALID_ARGUMENT error for a term the emulator does not evaluate."""
    detail = f": {why}" if why else ""
    return invalid_argument(f"Unsupported filter term '{term.text}'{detail}")


def compile_filter(text: str, compile_term: Callable[[Term], Predicate[T]]) -> Predicate[T]:
    """Parse ``text`` into one predicate; an empty filter matches everything."""
    if not text.strip():
        return lambda item: True
    return _Parser(text, compile_term).parse()


def string_test(term: Term) -> Callable[[str], bool]:
    """A test of a string field: equality, ``:`` (has: case-insensitive substring; ``*`` is
    "present"), regular expressions, and lexicographic order."""
    value = term.value
    if term.op in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise unsupported(term, f"bad regular expression ({exc})") from exc
        if term.op == "=~":
            return lambda actual: pattern.search(actual) is not None
        return lambda actual: pattern.search(actual) is None
    if term.op == ":":
        if value == "*":
            return lambda actual: actual != ""
        needle = value.lower()
        return lambda actual: needle in actual.lower()
    return _compare(term.op, value, term)


def ordered_test(term: Term, parse: Callable[[str], object]) -> Callable[[object], bool]:
    """A test of an ordered field (timestamps, severities): ``parse`` turns the filter's
    value into the field's type, or raises ValueError."""
    try:
        value = parse(term.value)
    except ValueError as exc:
        raise unsupported(term, str(exc)) from exc
    op = "=" if term.op == ":" else term.op
    return _compare(op, value, term)


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp; digits past microseconds are dropped, no offset means UTC."""
    moment = datetime.fromisoformat(_FRACTION.sub(r".\1", text.strip()))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _compare(op: str, value: object, term: Term) -> Callable[[object], bool]:
    tests: dict[str, Callable[[object], bool]] = {
        "=": lambda actual: actual == value,
        "!=": lambda actual: actual != value,
        "<": lambda actual: actual < value,  # type: ignore[operator]
        "<=": lambda actual: actual <= value,  # type: ignore[operator]
        ">": lambda actual: actual > value,  # type: ignore[operator]
        ">=": lambda actual: actual >= value,  # type: ignore[operator]
    }
    if op not in tests:
        raise unsupported(term, f"operator {op} is not supported on this field")
    return tests[op]


class _Parser(Generic[T]):
    """Recursive descent over the raw text; values are read in context, so an unquoted
    timestamp (``timestamp>=2024-01-01T00:00:00Z``) keeps its colons."""

    def __init__(self, text: str, compile_term: Callable[[Term], Predicate[T]]) -> None:
        self.text = text
        self.pos = 0
        self.compile_term = compile_term

    def parse(self) -> Predicate[T]:
        predicate = self._conjunction()
        self._skip()
        if self.pos < len(self.text):
            raise self._error(f"unexpected '{self.text[self.pos]}'")
        return predicate

    def _error(self, message: str) -> GoogleError:
        return invalid_argument(
            f"Invalid filter: {message} at position {self.pos} of {self.text!r}"
        )

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _keyword(self, word: str) -> bool:
        self._skip()
        match = _KEYWORD.match(self.text, self.pos)
        if match and match.group(1) == word:
            self.pos = match.end()
            return True
        return False

    def _conjunction(self) -> Predicate[T]:
        parts = [self._disjunction()]
        while True:
            self._skip()
            if self.pos >= len(self.text) or self.text[self.pos] == ")":
                break
            self._keyword("AND")  # optional: whitespace alone also means AND
            parts.append(self._disjunction())
        if len(parts) == 1:
            return parts[0]
        return lambda item: all(part(item) for part in parts)

    def _disjunction(self) -> Predicate[T]:
        parts = [self._unary()]
        while self._keyword("OR"):
            parts.append(self._unary())
        if len(parts) == 1:
            return parts[0]
        return lambda item: any(part(item) for part in parts)

    def _unary(self) -> Predicate[T]:
        self._skip()
        if self.pos >= len(self.text):
            raise self._error("expected a term")
        negate = self._keyword("NOT")
        if not negate and self.text[self.pos] == "-":
            self.pos += 1
            negate = True
        if negate:
            inner = self._unary()
            return lambda item: not inner(item)
        if self.text[self.pos] == "(":
            self.pos += 1
            inner = self._conjunction()
            self._skip()
            if self.pos >= len(self.text) or self.text[self.pos] != ")":
                raise self._error("missing ')'")
            self.pos += 1
            return inner
        if self.text[self.pos] == ")":
            raise self._error("unexpected ')'")
        return self._comparison()

    def _comparison(self) -> Predicate[T]:
        start = self.pos
        if self.text[self.pos] == '"':
            value = self._quoted()
            return self.compile_term(Term("", "", value, self.text[start : self.pos]))
        field = self._word()
        if self.pos < len(self.text) and self.text[self.pos] == "(":
            return self._call(field, start)
        after_field = self.pos
        self._skip()
        op = next((op for op in _OPS if self.text.startswith(op, self.pos)), None)
        if op is None:
            self.pos = after_field
            return self.compile_term(Term("", "", field, field))
        self.pos += len(op)
        self._skip()
        if self.pos < len(self.text) and self.text[self.pos] == "(":
            return self._alternatives(field, op, start)
        value = self._value()
        return self.compile_term(Term(field, op, value, self.text[start : self.pos]))

    def _call(self, name: str, start: int) -> Predicate[T]:
        """``NAME("arg")``, e.g. ``LOG_ID("run.googleapis.com/stdout")``: a term with op
        ``()`` and the argument as value."""
        self.pos += 1  # the opening parenthesis
        self._skip()
        value = self._value()
        self._skip()
        if self.pos >= len(self.text) or self.text[self.pos] != ")":
            raise self._error("missing ')'")
        self.pos += 1
        return self.compile_term(Term(name, "()", value, self.text[start : self.pos]))

    def _alternatives(self, field: str, op: str, start: int) -> Predicate[T]:
        """``FIELD OP ("a" OR "b")``: any of the values (the Logging query language)."""
        self.pos += 1  # the opening parenthesis
        values: list[str] = []
        while True:
            self._skip()
            values.append(self._value())
            if not self._keyword("OR"):
                break
        self._skip()
        if self.pos >= len(self.text) or self.text[self.pos] != ")":
            raise self._error("missing ')'")
        self.pos += 1
        text = self.text[start : self.pos]
        parts = [self.compile_term(Term(field, op, value, text)) for value in values]
        return lambda item: any(part(item) for part in parts)

    def _word(self) -> str:
        start = self.pos
        while (
            self.pos < len(self.text)
            and not self.text[self.pos].isspace()
            and self.text[self.pos] not in _WORD_STOP
        ):
            self.pos += 1
        if self.pos == start:
            raise self._error(f"unexpected '{self.text[self.pos]}'")
        return self.text[start : self.pos]

    def _value(self) -> str:
        if self.pos < len(self.text) and self.text[self.pos] == '"':
            return self._quoted()
        start = self.pos
        while (
            self.pos < len(self.text)
            and not self.text[self.pos].isspace()
            and self.text[self.pos] not in "()"
        ):
            self.pos += 1
        if self.pos == start:
            raise self._error("expected a value")
        return self.text[start : self.pos]

    def _quoted(self) -> str:
        self.pos += 1  # the opening quote
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if char == '"':
                self.pos += 1
                return "".join(chars)
            chars.append(char)
            self.pos += 1
        raise self._error("unterminated string")
