"""Random values for `rollsafe secret rotate`, judged by the same rules as `rollsafe check`."""

from __future__ import annotations

import re

import pytest

from rollsafe.rules import RuleContext, RuleRef, parse_rule, run_rules
from rollsafe.rules._strength import character_classes
from rollsafe.secrets import GenerationError, RuleUse, generate_value

STRICT = RuleContext(env="staging", strict=True, key="K", is_secret=True)


def _uses(*rule_lists: list[object]) -> list[RuleUse]:
    return [
        RuleUse("svc", f"K{i}", tuple(parse_rule(r) for r in [*rules, "not_placeholder"]), STRICT)
        for i, rules in enumerate(rule_lists)
    ]


@pytest.mark.parametrize(
    ("rule_lists", "length", "classes"),
    [
        ([[]], 43, {"lower", "upper", "digit"}),
        ([["machine_secret"]], 43, {"lower", "upper", "digit"}),
        ([[{"machine_secret": {"min_bits": 512}}]], 172, {"lower", "upper", "digit"}),
        ([[{"jwt_hmac": "HS256"}]], 43, {"lower", "upper", "digit"}),
        ([[{"jwt_hmac": "HS512"}]], 64, {"lower", "upper", "digit"}),
        ([[{"min_length": 100}], [{"jwt_hmac": "HS384"}]], 100, {"lower", "upper", "digit"}),
        ([[{"char_classes": ["lower", "upper", "digit", "symbol"]}]], 43, None),
        ([[{"regex": "[A-Za-z0-9]+"}]], 43, {"lower", "upper", "digit"}),
        ([[{"differs_from": "production"}]], 43, {"lower", "upper", "digit"}),
    ],
    ids=[
        "plain",
        "machine",
        "machine-512",
        "hs256",
        "hs512",
        "two-keys",
        "symbols",
        "regex",
        "differs-from",
    ],
)
def test_generated_values_pass_every_rule(
    rule_lists: list[list[object]], length: int, classes: set[str] | None
) -> None:
    uses = _uses(*rule_lists)
    values = {generate_value("s", uses) for _ in range(5)}
    assert len(values) == 5  # random each time
    for value in values:
        assert len(value) == length
        for use in uses:
            checked = [r for r in use.rules if r.name != "differs_from"]
            assert run_rules(value, checked, use.context) == []
        present = set(character_classes(value))
        if classes is not None:
            assert present <= classes
        else:
            assert "symbol" in present


@pytest.mark.parametrize(
    ("rules", "wording"),
    [
        ([{"one_of": ["a", "b"]}], "has rule one_of (its value is one of a fixed list)"),
        (["url"], "has rule url (its value is a URL)"),
        ([{"regex": "[0-9]{4}"}], "50 random values of 43 characters failed"),
    ],
    ids=["one-of", "url", "regex"],
)
def test_rules_no_random_value_meets_are_refused(rules: list[object], wording: str) -> None:
    with pytest.raises(GenerationError, match=re.escape(wording)) as info:
        generate_value("s", _uses(rules))
    assert info.value.exit_code == 1
    assert info.value.hint == "set the value yourself: rollsafe secret set s --env staging"


def test_same_origin_is_refused() -> None:
    use = RuleUse("svc", "K", (RuleRef("same_origin", "FRONTEND_URL"),), STRICT)
    with pytest.raises(GenerationError, match=r"svc\.K has rule same_origin"):
        generate_value("s", [use])
