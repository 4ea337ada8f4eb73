"""The registry as a whole: examples, docs, argument round trips and values never leaking."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from rollsafe.rules import (
    RULES,
    RuleContext,
    RuleRef,
    RuleSpec,
    RuleSyntaxError,
    parse_rule,
    run_rules,
)
from rollsafe.rules.values import value_digest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
CONTRACT = {
    "required",
    "min_length",
    "machine_secret",
    "char_classes",
    "jwt_hmac",
    "url",
    "same_origin",
    "regex",
    "one_of",
    "differs_from",
    "not_placeholder",
}
SPECS = sorted(RULES.values(), key=lambda s: s.name)
IDS = [s.name for s in SPECS]


def _examples(kind: str) -> list[tuple[RuleSpec, Any, str]]:
    return [(s, raw, value) for s in SPECS for raw, value in getattr(s, kind)]


def test_every_contract_rule_is_registered() -> None:
    assert set(RULES) == CONTRACT


def test_refers_to() -> None:
    assert {n: s.refers_to for n, s in RULES.items() if s.refers_to} == {
        "same_origin": "var",
        "differs_from": "env",
    }


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_rule_has_examples_both_ways(spec: RuleSpec) -> None:
    assert spec.passing, f"{spec.name} has no passing example"
    assert spec.failing, f"{spec.name} has no failing example"
    assert spec.summary
    assert spec.func.__doc__


PASSING = _examples("passing")
FAILING = _examples("failing")


@pytest.mark.parametrize(
    ("spec", "raw", "value"), PASSING, ids=[f"{s.name}-{i}" for i, (s, _, _) in enumerate(PASSING)]
)
def test_passing_examples_pass(spec: RuleSpec, raw: Any, value: str) -> None:
    ref = RuleRef(spec.name, spec.parse_arg(raw))
    assert run_rules(value, [ref], spec.example_context) == []


@pytest.mark.parametrize(
    ("spec", "raw", "value"), FAILING, ids=[f"{s.name}-{i}" for i, (s, _, _) in enumerate(FAILING)]
)
def test_failing_examples_fail(spec: RuleSpec, raw: Any, value: str) -> None:
    ref = RuleRef(spec.name, spec.parse_arg(raw))
    failures = run_rules(value, [ref], spec.example_context)
    assert failures
    assert {f.rule for f in failures} == {spec.name}
    assert all(f.message and f.hint for f in failures)


def _doc_sections() -> dict[str, str]:
    text = DOCS.read_text(encoding="utf-8")
    parts = re.split(r"^## (\w+)\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_docs_show_every_example_with_its_messages(spec: RuleSpec) -> None:
    section = _doc_sections()[spec.name].replace("&lt;", "<").replace("&gt;", ">")
    for raw, value in spec.passing + spec.failing:
        if value.strip():
            assert f"`{value}`" in section, f"example {value!r} missing from docs/rules.md"
        ref = RuleRef(spec.name, spec.parse_arg(raw))
        for failure in run_rules(value, [ref], spec.example_context):
            assert f"fails: {failure.message}" in section, failure.message


@pytest.mark.parametrize(("spec", "raw", "value"), PASSING + FAILING)
def test_parsed_arguments_round_trip_and_hash(spec: RuleSpec, raw: Any, value: str) -> None:
    ref = parse_rule(spec.name if raw is None else {spec.name: raw})
    assert parse_rule(ref.to_json()) == ref
    hash(ref)  # the check caches results by rule references


@pytest.mark.parametrize(
    "raw",
    [
        {"min_length": "abc"},
        {"jwt_hmac": "HS999"},
        {"regex": "("},
        {"one_of": 5},
        {"char_classes": ["lower", "purple"]},
        "same_origin",
        "differs_from",
    ],
    ids=[
        "min_length",
        "jwt_hmac",
        "regex",
        "one_of",
        "char_classes",
        "same_origin",
        "differs_from",
    ],
)
def test_bad_arguments_explain_themselves(raw: object) -> None:
    with pytest.raises(RuleSyntaxError) as err:
        parse_rule(raw)
    assert str(err.value)
    assert err.value.hint


# Values no message may contain. Weak ones make every rule fail; strong ones reach the
# checks that only run on good-looking values.
CANARIES = [
    "Zx9-CANARY-weak-changeme-7731",
    "canary-password-2024",
    "CanaryCanaryCanaryCanary",
    "qwerty-canary-123456",
    "Cq7nXr2Vb9mKp4Lw8sTz3hFd6jYg1eUa5cNo0kWq",
    "cAnArY0123456789abcdef",
    "https://canary-host.example.invalid/path",
]

LEAK_RULES = [
    "required",
    {"min_length": 500},
    {"machine_secret": {"min_bits": 1024}},
    {"jwt_hmac": "HS512"},
    {"char_classes": ["lower", "upper", "digit", "symbol"]},
    "not_placeholder",
    "url",
    {"same_origin": "FRONTEND_URL"},
    {"regex": "[0-9]+"},
    {"one_of": ["alpha", "beta"]},
    {"differs_from": "production"},
    {"differs_from": "dev"},
]


def _leaks(value: str, text: str) -> bool:
    if value in text:
        return True
    windows = {value[i : i + 10] for i in range(max(0, len(value) - 9))}
    return any(w in text for w in windows)


@pytest.mark.parametrize("value", CANARIES)
@pytest.mark.parametrize("is_secret", [True, False], ids=["secret", "plain"])
def test_no_message_or_hint_contains_the_value(value: str, is_secret: bool) -> None:
    ctx = RuleContext(
        env="staging",
        strict=True,
        key="SERVICE_SECRET",
        is_secret=is_secret,
        values={"FRONTEND_URL": "https://app.staging.example.com"},
        # The same value in production: the "same value" message must not show it either.
        other_env_hashes={"production": value_digest(value), "dev": None},
    )
    rules = [parse_rule(r) for r in LEAK_RULES]
    if not is_secret:
        # Origins of plain values are printed on purpose (they are not secret).
        rules = [r for r in rules if r.name != "same_origin"]
    failures = run_rules(value, rules, ctx)
    assert failures
    for failure in failures:
        assert not _leaks(value, failure.message), (failure.rule, failure.message)
        assert not _leaks(value, failure.hint), (failure.rule, failure.hint)
