"""The Logging query language over stored entries: which fields a term may name, and how
each field compares.

Fields: ``LOG_ID("ID")``, ``logName`` (the log ID encoded or not), ``resource.type``,
``resource.labels.KEY``, ``labels.KEY``, ``severity`` (names or numbers), ``timestamp``
and ``receiveTimestamp`` (RFC 3339), ``insertId``, ``trace``, ``spanId``, ``textPayload``,
``jsonPayload.PATH``, ``httpRequest.FIELD``, ``operation.FIELD``, ``sourceLocation.FIELD``
and bare values (searched in the payload). Numbers in ``jsonPayload`` and
``httpRequest`` compare as numbers when the filter's value is a number
(``httpRequest.status>=500``), durations as seconds (``httpRequest.latency>"0.5s"``),
booleans as ``true``/``false``. A field the entry lacks matches no comparison, so
``NOT field=x`` finds it; ``field:*`` tests presence. Any other field is INVALID_ARGUMENT
naming the term, so a filter is never silently ignored.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Callable
from typing import Any

from rollsafe.emulator._filter import (
    Term,
    compile_filter,
    ordered_test,
    parse_time,
    string_test,
    unsupported,
)
from rollsafe.emulator.logs import SEVERITIES, StoredEntry, rfc3339

__all__ = ["compile_entry_filter", "parse_severity"]

_MISSING = object()
_NUMERIC_OPS = frozenset(("=", "!=", "<", "<=", ">", ">=", ":"))
_SUPPORTED = (
    "the emulator filters on logName, resource.type, resource.labels.*, labels.*, severity,"
    " timestamp, receiveTimestamp, insertId, trace, spanId, textPayload, jsonPayload.*,"
    " httpRequest.*, operation.*, sourceLocation.* and bare values"
)


def compile_entry_filter(text: str) -> Callable[[StoredEntry], bool]:
    """A predicate over stored entries."""
    return compile_filter(text, _entry_term)


def parse_severity(value: str) -> int:
    """``ERROR``, ``error`` or ``500`` -> 500; anything else raises ValueError."""
    name = value.strip().upper()
    if name in SEVERITIES:
        return SEVERITIES[name]
    if name.isdigit():
        return int(name)
    raise ValueError(f"unknown severity {value!r}")


def _entry_term(term: Term) -> Callable[[StoredEntry], bool]:
    field = term.field
    if term.op == "()":
        if field.lower() != "log_id":
            raise unsupported(term, "the only function the emulator evaluates is LOG_ID")
        wanted = _decoded(term.value)
        return lambda entry: _decoded(entry.log_name).split("/", 3)[-1] == wanted
    if not field:
        needle = term.value.lower()
        return lambda entry: needle in _payload_text(entry).lower()
    if field == "severity":
        level = ordered_test(term, parse_severity)
        return lambda entry: level(entry.severity)
    if field in ("timestamp", "receiveTimestamp"):
        # stored timestamps are fixed-width RFC 3339 in UTC: they compare as text
        timed = ordered_test(term, lambda value: rfc3339(parse_time(value)))
        if field == "timestamp":
            return lambda entry: timed(entry.timestamp)
        return lambda entry: timed(entry.receive_timestamp)
    if field == "logName":
        # log names are written with the slash of the log id encoded (%2F); accept both
        test = string_test(Term(field, term.op, _decoded(term.value), term.text))
        return lambda entry: test(_decoded(entry.log_name))
    getter = _getter(term, field)
    test = _value_test(term)
    return lambda entry: test(getter(entry))


def _getter(term: Term, field: str) -> Callable[[StoredEntry], Any]:
    head, _, rest = field.partition(".")
    path = rest.split(".") if rest else []
    simple: dict[str, Callable[[StoredEntry], Any]] = {
        "resource.type": lambda r: r.resource_type,
        "insertId": lambda r: r.insert_id,
        "trace": lambda r: r.trace if r.trace else _MISSING,
        "spanId": lambda r: r.extra.get("spanId", _MISSING),
        "textPayload": lambda r: r.text_payload if r.text_payload is not None else _MISSING,
    }
    if field in simple:
        return simple[field]
    if field.startswith("resource.labels.") and len(path) == 2:
        key = path[1]
        return lambda r: r.resource_labels.get(key, _MISSING)
    if head == "labels" and rest:
        return lambda r: r.labels.get(rest, _MISSING)
    if head == "jsonPayload" and path:
        return lambda r: _walk(r.json_payload, path)
    if head == "httpRequest" and path:
        return lambda r: _walk(r.http_request, path)
    if head in ("operation", "sourceLocation") and path:
        return lambda r: _walk(r.extra.get(head), path)
    raise unsupported(term, _SUPPORTED)


def _walk(value: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _value_test(term: Term) -> Callable[[Any], bool]:
    """Compare a field's JSON value: strings as strings, numbers as numbers, durations as
    seconds, booleans as ``true``/``false``; a missing field matches nothing."""
    as_string = string_test(term)
    number = _number(term.value)
    seconds = _duration(term.value)
    ordered = term.op in _NUMERIC_OPS and term.op != ":"

    def test(actual: Any) -> bool:
        if actual is _MISSING or actual is None:
            return False
        if isinstance(actual, bool):
            return as_string("true" if actual else "false")
        if isinstance(actual, int | float) and number is not None and ordered:
            return _numeric(term.op, float(actual), number)
        if isinstance(actual, str) and ordered:
            if seconds is not None and (mine := _duration(actual)) is not None:
                return _numeric(term.op, mine, seconds)
            if number is not None and (mine := _number(actual)) is not None:
                return _numeric(term.op, mine, number)
        if isinstance(actual, dict | list):
            return as_string(json.dumps(actual, sort_keys=True))
        if isinstance(actual, float) and actual.is_integer():
            actual = int(actual)
        return as_string(str(actual))

    return test


def _numeric(op: str, actual: float, value: float) -> bool:
    return {
        "=": actual == value,
        "!=": actual != value,
        "<": actual < value,
        "<=": actual <= value,
        ">": actual > value,
        ">=": actual >= value,
    }[op]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _duration(text: str) -> float | None:
    """``"0.25s"`` (google.protobuf.Duration JSON) -> 0.25."""
    if not text.endswith("s"):
        return None
    return _number(text[:-1])


def _payload_text(record: StoredEntry) -> str:
    if record.json_payload is not None:
        return json.dumps(record.json_payload, sort_keys=True)
    return record.text_payload or ""


def _decoded(name: str) -> str:
    return urllib.parse.unquote(name)
