"""The rule engine's types and registry. Rules are pure functions: no I/O, no clock."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "RULES",
    "RuleContext",
    "RuleFailure",
    "RuleRef",
    "RuleSpec",
    "RuleSyntaxError",
    "merge_failures",
    "parse_rule",
    "register",
    "run_rules",
]


class RuleSyntaxError(ValueError):
    """A rule in the manifest is unknown or has a bad argument. Carries a hint."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What a rule may know besides the value it judges.

    ``values`` holds the other plain values of the same service (for ``same_origin``);
    ``other_env_hashes`` maps an environment name to the SHA-256 hex digest of the same key's
    value there, or ``None`` when it could not be read (for ``differs_from``).
    """

    env: str = "dev"
    strict: bool = False
    key: str = ""
    is_secret: bool = False
    values: Mapping[str, str] = field(default_factory=dict)
    other_env_hashes: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """Why a value failed a rule. ``message`` and ``hint`` never contain the value."""

    rule: str
    message: str
    hint: str = ""


RuleFunc = Callable[[str, Any, RuleContext], Iterable[RuleFailure]]
ArgParser = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A registered rule.

    ``parse_arg`` validates and normalises the manifest argument (``None`` for a bare name),
    raising ``RuleSyntaxError``. ``refers_to`` says whether the argument names another
    variable (``"var"``) or an environment (``"env"``), so the manifest loader can check it.
    ``passing`` and ``failing`` are documented examples (for docs and tests): pairs of the
    manifest argument (as written, before ``parse_arg``) and a value, judged in
    ``example_context``.
    """

    name: str
    func: RuleFunc
    parse_arg: ArgParser
    summary: str
    passing: tuple[tuple[Any, str], ...] = ()
    failing: tuple[tuple[Any, str], ...] = ()
    refers_to: Literal["var", "env"] | None = None
    example_context: RuleContext = field(default_factory=RuleContext)


@dataclass(frozen=True, slots=True)
class RuleRef:
    """A rule as the manifest names it: the rule and its parsed argument."""

    name: str
    arg: Any = None

    def to_json(self) -> str | dict[str, Any]:
        return self.name if self.arg is None else {self.name: self.arg}


RULES: dict[str, RuleSpec] = {}


def register(spec: RuleSpec) -> RuleSpec:
    """Add a rule to the registry (import time only)."""
    RULES[spec.name] = spec
    return spec


def _unknown_rule(name: str) -> RuleSyntaxError:
    close = difflib.get_close_matches(name, list(RULES), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return RuleSyntaxError(
        f"unknown rule '{name}'",
        hint=f"{hint}known rules: {', '.join(sorted(RULES))}",
    )


def parse_rule(raw: object) -> RuleRef:
    """Parse one manifest rule: a bare name or a one-key mapping ``{name: argument}``."""
    if isinstance(raw, str):
        name, arg = raw, None
    elif isinstance(raw, dict) and len(raw) == 1:
        ((name, arg),) = raw.items()
        if not isinstance(name, str):
            raise RuleSyntaxError("a rule name must be a string", hint="write `- rule_name`")
    else:
        raise RuleSyntaxError(
            "a rule is a bare name or a mapping with one key",
            hint="write `- machine_secret` or `- {min_length: 32}`",
        )
    spec = RULES.get(name)
    if spec is None:
        raise _unknown_rule(name)
    return RuleRef(name, spec.parse_arg(arg))


def run_rules(value: str, rules: Iterable[RuleRef], ctx: RuleContext) -> list[RuleFailure]:
    """Run every rule on ``value`` and return all failures (never stops at the first)."""
    failures: list[RuleFailure] = []
    for ref in rules:
        failures.extend(RULES[ref.name].func(value, ref.arg, ctx))
    return failures


def merge_failures(failures: list[RuleFailure]) -> list[RuleFailure]:
    """One failure per rule (a rule's several reasons read better as one), in order.

    ``machine_secret`` already says "looks like a placeholder"; the default
    ``not_placeholder`` rule need not say it again.
    """
    by_rule: dict[str, list[RuleFailure]] = {}
    for failure in failures:
        by_rule.setdefault(failure.rule, []).append(failure)
    merged = []
    for rule, group in by_rule.items():
        messages = list(dict.fromkeys(f.message for f in group))
        hint = next((f.hint for f in group if f.hint), "")
        merged.append(RuleFailure(rule, "; ".join(messages), hint))
    said = " ".join(f.message for f in merged if f.rule != "not_placeholder")
    return [f for f in merged if f.rule != "not_placeholder" or f.message not in said]
