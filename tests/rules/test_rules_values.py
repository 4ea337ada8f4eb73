"""required, min_length, regex, one_of and differs_from."""

from __future__ import annotations

import hashlib

import pytest

from rollsafe.rules import RuleContext, RuleFailure, RuleSyntaxError, parse_rule, run_rules
from rollsafe.rules.values import value_digest

PLAIN = RuleContext(env="staging", strict=True, key="LOG_LEVEL")
SECRET = RuleContext(env="staging", strict=True, key="API_TOKEN", is_secret=True)


def judge(rule: object, value: str, ctx: RuleContext = PLAIN) -> list[RuleFailure]:
    return run_rules(value, [parse_rule(rule)], ctx)


def messages(rule: object, value: str, ctx: RuleContext = PLAIN) -> list[str]:
    return [f.message for f in judge(rule, value, ctx)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("info", []), ("", ["is empty"]), (" \t", ["is blank (only whitespace)"])],
    ids=["set", "empty", "blank"],
)
def test_required(value: str, expected: list[str]) -> None:
    assert messages("required", value) == expected


@pytest.mark.parametrize(
    ("length", "value", "expected"),
    [
        (12, "twelve-chars", []),
        (32, "too-short-value", ["is 15 characters; needs at least 32"]),
        (32, "", []),
    ],
    ids=["enough", "short", "empty-left-to-required"],
)
def test_min_length(length: int, value: str, expected: list[str]) -> None:
    assert messages({"min_length": length}, value) == expected


@pytest.mark.parametrize(
    "raw",
    [{"min_length": "abc"}, {"min_length": 0}, {"min_length": True}, "min_length"],
    ids=["text", "zero", "bool", "bare"],
)
def test_min_length_bad_arguments(raw: object) -> None:
    with pytest.raises(RuleSyntaxError, match="min_length needs a whole number"):
        parse_rule(raw)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("[a-z]+-[0-9]+", "backend-42", []),
        ("[a-z]+-[0-9]+", "backend-42-extra", ["does not match the pattern [a-z]+-[0-9]+"]),
        ("[a-z]+", "Backend", ["does not match the pattern [a-z]+"]),
        ("v[0-9]+", "v1", []),
    ],
    ids=["match", "prefix-only", "case", "short"],
)
def test_regex_is_anchored(pattern: str, value: str, expected: list[str]) -> None:
    assert messages({"regex": pattern}, value) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"regex": "("}, "regex: invalid pattern '(': missing ), unterminated subpattern"),
        ({"regex": ""}, "regex needs a pattern"),
        ({"regex": 5}, "regex needs a pattern"),
        ("regex", "regex needs a pattern"),
    ],
    ids=["unbalanced", "empty", "number", "bare"],
)
def test_regex_bad_arguments(raw: object, message: str) -> None:
    with pytest.raises(RuleSyntaxError, match="regex") as err:
        parse_rule(raw)
    assert str(err.value).startswith(message)


def test_one_of_lists_choices_for_plain_values() -> None:
    assert messages({"one_of": ["debug", "info", "warning"]}, "verbose") == [
        "is not one of: debug, info, warning"
    ]
    assert messages({"one_of": ["debug", "info"]}, "info") == []
    assert messages({"one_of": ["debug", "info"]}, "INFO") == ["is not one of: debug, info"]


def test_one_of_keeps_secret_choices_to_itself() -> None:
    found = judge({"one_of": ["alpha-token", "beta-token"]}, "gamma-token", SECRET)
    assert [f.message for f in found] == ["is not one of the 2 allowed values"]
    assert "alpha" not in found[0].hint


def test_one_of_accepts_numbers_as_strings() -> None:
    ref = parse_rule({"one_of": [1, "2", 1]})
    assert ref.arg == ("1", "2")
    assert messages(ref.to_json(), "2") == []


@pytest.mark.parametrize(
    "raw",
    [{"one_of": 5}, {"one_of": []}, {"one_of": [True]}, {"one_of": [["a"]]}, "one_of"],
    ids=["number", "empty", "bool", "nested", "bare"],
)
def test_one_of_bad_arguments(raw: object) -> None:
    with pytest.raises(RuleSyntaxError, match="one_of"):
        parse_rule(raw)


def _ctx(hashes: dict[str, str | None], env: str = "staging") -> RuleContext:
    return RuleContext(
        env=env, strict=True, key="SESSION_SECRET", is_secret=True, other_env_hashes=hashes
    )


@pytest.mark.parametrize(
    ("hashes", "env", "expected"),
    [
        ({"production": value_digest("other")}, "staging", []),
        (
            {"production": value_digest("shared")},
            "staging",
            ["has the same value as in production"],
        ),
        (
            {"production": value_digest("shared").upper()},
            "staging",
            ["has the same value as in production"],
        ),
        (
            {"production": None},
            "staging",
            ["could not compare with production: its value is not available"],
        ),
        ({}, "staging", ["could not compare with production: its value is not available"]),
        ({}, "production", []),
    ],
    ids=["differs", "same", "same-uppercase-digest", "unreadable", "missing", "own-environment"],
)
def test_differs_from(hashes: dict[str, str | None], env: str, expected: list[str]) -> None:
    assert messages({"differs_from": "production"}, "shared", _ctx(hashes, env)) == expected


def test_differs_from_uses_sha256_of_utf8() -> None:
    assert value_digest("ünïcode") == hashlib.sha256("ünïcode".encode()).hexdigest()


@pytest.mark.parametrize(
    "raw",
    ["differs_from", {"differs_from": ""}, {"differs_from": 3}],
    ids=["bare", "empty", "number"],
)
def test_differs_from_bad_arguments(raw: object) -> None:
    with pytest.raises(RuleSyntaxError, match="differs_from needs"):
        parse_rule(raw)


@pytest.mark.parametrize("raw", [{"required": True}, {"url": "https"}], ids=["required", "url"])
def test_rules_without_arguments_refuse_one(raw: object) -> None:
    with pytest.raises(RuleSyntaxError, match="takes no argument"):
        parse_rule(raw)
