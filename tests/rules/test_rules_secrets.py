"""machine_secret, jwt_hmac, char_classes and not_placeholder."""

from __future__ import annotations

from typing import Any

import pytest

from rollsafe.rules import RuleContext, RuleFailure, RuleSyntaxError, parse_rule, run_rules
from rollsafe.rules.secrets import EXAMPLE_KEY

SECRET = RuleContext(env="staging", strict=True, key="SERVICE_SECRET", is_secret=True)


def judge(rule: object, value: str, ctx: RuleContext = SECRET) -> list[RuleFailure]:
    return run_rules(value, [parse_rule(rule)], ctx)


def messages(rule: object, value: str) -> list[str]:
    return [f.message for f in judge(rule, value)]


# --- machine_secret ----------------------------------------------------------------------


def test_machine_secret_passes_a_random_key() -> None:
    assert judge("machine_secret", EXAMPLE_KEY) == []


def test_machine_secret_reports_every_reason_separately() -> None:
    found = messages("machine_secret", "aaaaaaaaaaaaaaaaaaaaaaaaBBBBBBBBBBBBBBBB1234")
    assert found[0].startswith("estimated ")
    assert found[0].endswith(" needs 128")
    assert "a repeated pattern" in found
    assert "highly compressible" in found
    assert any(m.startswith("low character entropy") for m in found)


def test_machine_secret_hint_describes_the_value_without_showing_it() -> None:
    [first, *_] = judge("machine_secret", "Password123!")
    assert first.hint.startswith("the value has 12 characters (lowercase, uppercase, digits, ")
    assert "secrets.token_urlsafe(32)" in first.hint
    assert "Password" not in first.hint + first.message


@pytest.mark.parametrize(
    ("rule", "value", "passes"),
    [
        ({"machine_secret": {"min_bits": 192}}, EXAMPLE_KEY, True),
        ({"machine_secret": {"min_bits": 256}}, EXAMPLE_KEY, True),
        ({"machine_secret": {"min_bits": 512}}, EXAMPLE_KEY, False),
        ({"machine_secret": 64}, EXAMPLE_KEY[:12], True),
        ({"machine_secret": {}}, EXAMPLE_KEY[:20], False),
    ],
    ids=["192", "256", "512", "shorthand-64", "empty-options-default-128"],
)
def test_machine_secret_min_bits(rule: Any, value: str, passes: bool) -> None:
    assert (judge(rule, value) == []) is passes


def test_machine_secret_hint_scales_with_min_bits() -> None:
    [failure] = judge({"machine_secret": {"min_bits": 512}}, EXAMPLE_KEY)
    assert failure.message == "estimated 258 bits of randomness, needs 512"
    assert "token_urlsafe(64)" in failure.hint


def test_machine_secret_leaves_empty_values_to_required() -> None:
    assert judge("machine_secret", "") == []


@pytest.mark.parametrize(
    "raw",
    [
        {"machine_secret": {"min_bits": "lots"}},
        {"machine_secret": {"min_bits": 0}},
        {"machine_secret": {"min_bits": True}},
        {"machine_secret": {"bits": 128}},
        {"machine_secret": "strong"},
    ],
    ids=["text", "zero", "bool", "unknown-option", "string"],
)
def test_machine_secret_bad_arguments(raw: object) -> None:
    with pytest.raises(RuleSyntaxError) as err:
        parse_rule(raw)
    assert "machine_secret" in str(err.value)
    assert "min_bits" in err.value.hint


def test_machine_secret_argument_round_trips() -> None:
    ref = parse_rule({"machine_secret": {"min_bits": 192}})
    assert parse_rule(ref.to_json()) == ref
    assert parse_rule("machine_secret").to_json() == "machine_secret"
    assert hash(ref) == hash(parse_rule({"machine_secret": 192}))


# --- jwt_hmac ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "value", "expected"),
    [
        ("HS256", EXAMPLE_KEY, []),
        ("hs256", EXAMPLE_KEY, []),
        ("HS256", EXAMPLE_KEY[:24], ["is 24 bytes; HS256 needs at least 32 (RFC 7518 3.2)"]),
        ("HS384", EXAMPLE_KEY, ["is 43 bytes; HS384 needs at least 48 (RFC 7518 3.2)"]),
        ("HS512", EXAMPLE_KEY, ["is 43 bytes; HS512 needs at least 64 (RFC 7518 3.2)"]),
        ("HS512", EXAMPLE_KEY + EXAMPLE_KEY[::-1], []),
    ],
    ids=["hs256", "lowercase-alg", "short", "hs384-short", "hs512-short", "hs512"],
)
def test_jwt_hmac_key_size(alg: str, value: str, expected: list[str]) -> None:
    assert messages({"jwt_hmac": alg}, value) == expected


def test_jwt_hmac_counts_utf8_bytes() -> None:
    # 16 characters, 32 bytes: long enough for HS256 by the RFC's measure.
    found = messages({"jwt_hmac": "HS256"}, "é" * 16)
    assert not any("bytes" in m for m in found)


def test_jwt_hmac_also_requires_randomness() -> None:
    failures = judge({"jwt_hmac": "HS256"}, "my-super-secret-jwt-key-for-staging-2024")
    assert {f.rule for f in failures} == {"jwt_hmac"}
    assert "made of dictionary words" in [f.message for f in failures]
    assert not any("bytes" in f.message for f in failures)


@pytest.mark.parametrize(
    ("raw", "hint_part"),
    [
        ({"jwt_hmac": "HS999"}, "HS256, HS384, HS512"),
        ({"jwt_hmac": "RS256"}, "key pairs"),
        ("jwt_hmac", "{jwt_hmac: HS256}"),
    ],
    ids=["unknown", "asymmetric", "bare"],
)
def test_jwt_hmac_bad_arguments(raw: object, hint_part: str) -> None:
    with pytest.raises(RuleSyntaxError) as err:
        parse_rule(raw)
    assert hint_part in err.value.hint


# --- char_classes ------------------------------------------------------------------------

LEGACY = ["lower", "upper", "digit"]


@pytest.mark.parametrize(
    ("classes", "value", "expected"),
    [
        (LEGACY, "Deploy2Staging", []),
        (
            LEGACY,
            "deploy-to-staging",
            [
                "insufficient entropy: needs mixed case and digits (missing uppercase letters, digits)"
            ],
        ),
        (
            LEGACY,
            "DEPLOY2STAGING",
            ["insufficient entropy: needs mixed case and digits (missing lowercase letters)"],
        ),
        (
            ["lower", "upper", "digit", "symbol"],
            "Deploy2Staging",
            ["insufficient entropy: needs mixed case, digits and symbols (missing symbols)"],
        ),
        (["digit"], "no-digits-here", ["insufficient entropy: needs digits (missing digits)"]),
        (["symbols", "Digits"], "Deploy-2", []),
    ],
    ids=["legacy-pass", "legacy-two-missing", "legacy-no-lower", "all-four", "digit", "aliases"],
)
def test_char_classes(classes: list[str], value: str, expected: list[str]) -> None:
    assert messages({"char_classes": classes}, value) == expected


@pytest.mark.parametrize(
    "raw",
    [
        {"char_classes": ["lower", "purple"]},
        {"char_classes": []},
        {"char_classes": 5},
        {"char_classes": [1]},
        "char_classes",
    ],
    ids=["unknown-class", "empty", "number", "number-item", "bare"],
)
def test_char_classes_bad_arguments(raw: object) -> None:
    with pytest.raises(RuleSyntaxError) as err:
        parse_rule(raw)
    assert "lower, upper, digit, symbol" in err.value.hint


def test_char_classes_argument_is_normalised() -> None:
    ref = parse_rule({"char_classes": ["digits", "lower", "lower"]})
    assert ref.arg == ("lower", "digit")
    assert parse_rule(ref.to_json()) == ref


# --- not_placeholder ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fails"),
    [
        ("changeme", True),
        ("<your-api-key>", True),
        ("XXXX-XXXX-XXXX", True),
        ("${JWT_SECRET}", True),
        (EXAMPLE_KEY, False),
        ("Deploy2Staging", False),
        ("", False),
    ],
    ids=["changeme", "angle", "x-groups", "template", "random", "words", "empty"],
)
def test_not_placeholder(value: str, fails: bool) -> None:
    found = judge("not_placeholder", value)
    assert bool(found) is fails
    if fails:
        assert found[0].message == "looks like a placeholder"


def test_not_placeholder_can_be_switched_off() -> None:
    assert parse_rule({"not_placeholder": False}).arg is False
    assert judge({"not_placeholder": False}, "changeme") == []
    with pytest.raises(RuleSyntaxError):
        parse_rule({"not_placeholder": "yes please"})
