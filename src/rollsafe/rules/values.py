"""Rules for any value: ``required``, ``min_length``, ``regex``, ``one_of``, ``differs_from``.

All rules but ``required`` pass an empty value: ``required`` (implicit for every key)
reports it once instead of every rule repeating it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from typing import Any

from rollsafe.rules._base import RuleContext, RuleFailure, RuleSpec, RuleSyntaxError, register
from rollsafe.rules.secrets import generate_hint

__all__ = ["value_digest"]


def value_digest(value: str) -> str:
    """The SHA-256 hex digest ``differs_from`` compares (the only form values travel in)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _no_argument(name: str) -> Callable[[Any], None]:
    def parse(raw: Any) -> None:
        if raw is not None:
            raise RuleSyntaxError(f"{name} takes no argument", hint=f"write `- {name}`")

    return parse


# --- required -----------------------------------------------------------------------------


def required(value: str, arg: None, ctx: RuleContext) -> Iterator[RuleFailure]:
    """The value is set and not only whitespace."""
    if not value:
        yield RuleFailure("required", "is empty", "set a value")
    elif not value.strip():
        yield RuleFailure("required", "is blank (only whitespace)", "set a value")


# --- min_length ---------------------------------------------------------------------------


def _parse_length(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise RuleSyntaxError(
            f"min_length needs a whole number of characters (1 or more), not {raw!r}",
            hint="write {min_length: 32}",
        )
    return raw


def min_length(value: str, arg: int, ctx: RuleContext) -> Iterator[RuleFailure]:
    """The value has at least ``arg`` characters."""
    if value and len(value) < arg:
        yield RuleFailure(
            "min_length",
            f"is {len(value)} characters; needs at least {arg}",
            generate_hint(max(32, arg)) if ctx.is_secret else f"use {arg} characters or more",
        )


# --- regex --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _parse_pattern(raw: Any) -> str:
    if not isinstance(raw, str) or not raw:
        raise RuleSyntaxError(
            f"regex needs a pattern, not {raw!r}", hint='write {regex: "[a-z0-9-]+"}'
        )
    try:
        _compile(raw)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise RuleSyntaxError(
            f"regex: invalid pattern {raw!r}: {exc.msg}{where}",
            hint="Python `re` syntax; quote the pattern in YAML",
        ) from None
    return raw


def regex(value: str, arg: str, ctx: RuleContext) -> Iterator[RuleFailure]:
    """The whole value matches the pattern (Python ``re``, anchored at both ends)."""
    if value and _compile(arg).fullmatch(value) is None:
        yield RuleFailure(
            "regex",
            f"does not match the pattern {arg}",
            "the pattern must match the whole value",
        )


# --- one_of -------------------------------------------------------------------------------


def _parse_choices(raw: Any) -> tuple[str, ...]:
    usage = "write {one_of: [debug, info, warning]}; quote values YAML reads as numbers"
    if not isinstance(raw, list | tuple) or not raw:
        raise RuleSyntaxError(f"one_of needs a list of allowed values, not {raw!r}", hint=usage)
    choices: list[str] = []
    for item in raw:
        # YAML turns `yes` into a bool: refuse it rather than guess its spelling.
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise RuleSyntaxError(f"one_of: {item!r} is not a string", hint=usage)
        choices.append(str(item))
    return tuple(dict.fromkeys(choices))


def one_of(value: str, arg: tuple[str, ...], ctx: RuleContext) -> Iterator[RuleFailure]:
    """The value is exactly one of the listed strings."""
    if value and value not in arg:
        if ctx.is_secret:
            message = f"is not one of the {len(arg)} allowed values"
        else:
            message = f"is not one of: {', '.join(arg)}"
        yield RuleFailure("one_of", message, "use one of the values the manifest lists")


# --- differs_from -------------------------------------------------------------------------


def _parse_env_name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise RuleSyntaxError(
            "differs_from needs the name of another environment",
            hint="write {differs_from: production}",
        )
    return raw.strip()


def differs_from(value: str, arg: str, ctx: RuleContext) -> Iterator[RuleFailure]:
    """The value differs from the same key's value in environment ``arg`` (by SHA-256).

    Judged in ``arg`` itself the rule has nothing to compare and passes, so one rule list
    can serve every environment.
    """
    if not value or arg == ctx.env:
        return
    other = ctx.other_env_hashes.get(arg)
    if other is None:
        yield RuleFailure(
            "differs_from",
            f"could not compare with {arg}: its value is not available",
            f"make {arg}'s value readable to this check, or remove the rule",
        )
    elif hmac.compare_digest(value_digest(value), other.lower()):
        yield RuleFailure(
            "differs_from",
            f"has the same value as in {arg}",
            f"each environment needs its own value; {generate_hint()}",
        )


_SHARED_IN_PRODUCTION = "value-used-in-production"

register(
    RuleSpec(
        name="required",
        func=required,
        parse_arg=_no_argument("required"),
        summary="the value is set and not blank (implicit for every key)",
        passing=((None, "staging"),),
        failing=((None, ""), (None, "   ")),
    )
)
register(
    RuleSpec(
        name="min_length",
        func=min_length,
        parse_arg=_parse_length,
        summary="at least N characters",
        passing=((12, "twelve-chars"),),
        failing=((32, "too-short-value"),),
    )
)
register(
    RuleSpec(
        name="regex",
        func=regex,
        parse_arg=_parse_pattern,
        summary="the whole value matches a Python regular expression",
        passing=(("[a-z]+-[0-9]+", "backend-42"),),
        failing=(("[a-z]+-[0-9]+", "backend-42-canary"), ("[a-z]+", "Backend")),
    )
)
register(
    RuleSpec(
        name="one_of",
        func=one_of,
        parse_arg=_parse_choices,
        summary="exactly one of the listed strings",
        passing=((["debug", "info", "warning"], "info"),),
        failing=((["debug", "info", "warning"], "verbose"), (["debug", "info"], "INFO")),
    )
)
register(
    RuleSpec(
        name="differs_from",
        func=differs_from,
        parse_arg=_parse_env_name,
        summary="not the same value as the same key in another environment (compared by hash)",
        passing=(("production", "value-used-in-staging"),),
        failing=(("production", _SHARED_IN_PRODUCTION), ("dev", "value-used-in-staging")),
        refers_to="env",
        example_context=RuleContext(
            env="staging",
            strict=True,
            key="SESSION_SECRET",
            is_secret=True,
            other_env_hashes={"production": value_digest(_SHARED_IN_PRODUCTION), "dev": None},
        ),
    )
)
