"""Rules for secrets: ``machine_secret``, ``jwt_hmac``, ``char_classes``, ``not_placeholder``.

Every message describes the value by its length, character classes and estimated bits
only; the value itself never leaves the rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rollsafe.rules._base import RuleContext, RuleFailure, RuleSpec, RuleSyntaxError, register
from rollsafe.rules._placeholders import is_placeholder
from rollsafe.rules._strength import (
    CLASS_NAMES,
    REASON_PLACEHOLDER,
    character_classes,
    estimate_secret_strength,
)

__all__ = ["DEFAULT_MIN_BITS", "EXAMPLE_KEY", "JWT_KEY_BYTES", "generate_hint"]

DEFAULT_MIN_BITS = 128
MAX_MIN_BITS = 1024
# RFC 7518 section 3.2: an HMAC key must be at least as long as the hash output.
JWT_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
CLASS_ALIASES = {
    "lower": "lower",
    "lowercase": "lower",
    "upper": "upper",
    "uppercase": "upper",
    "digit": "digit",
    "digits": "digit",
    "symbol": "symbol",
    "symbols": "symbol",
}
CLASS_ORDER = ("lower", "upper", "digit", "symbol")

# A random value made for these docs and tests only; it protects nothing.
EXAMPLE_KEY = "q3Vn8TzK0xWb5LrF2mYc7HsJ9pDg4AeUk6NtQ1vZo-w"  # pragma: allowlist secret


def generate_hint(nbytes: int = 32) -> str:
    """How to make a good value: ``token_urlsafe(nbytes)`` gives ``nbytes * 8`` random bits."""
    return f"generate one with: python -c 'import secrets; print(secrets.token_urlsafe({nbytes}))'"


def _strength_failures(rule: str, value: str, min_bits: int, nbytes: int) -> Iterator[RuleFailure]:
    strength = estimate_secret_strength(value)
    hint = f"the value has {strength.describe()}; {generate_hint(nbytes)}"
    for message in strength.failures(min_bits):
        yield RuleFailure(rule, message, hint)


# --- machine_secret ----------------------------------------------------------------------


def _parse_min_bits(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        unknown = sorted(str(k) for k in raw if k != "min_bits")
        if unknown:
            raise RuleSyntaxError(
                f"machine_secret has no option {', '.join(unknown)}",
                hint="the only option is min_bits: {machine_secret: {min_bits: 128}}",
            )
        if "min_bits" not in raw:
            return None
        raw = raw["min_bits"]
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_MIN_BITS:
        raise RuleSyntaxError(
            f"machine_secret: min_bits must be a whole number from 1 to {MAX_MIN_BITS}, "
            f"not {raw!r}",
            hint="write {machine_secret: {min_bits: 128}}",
        )
    # Normalised to a plain int: rule references must be hashable, and
    # {machine_secret: 128} parses back to the same rule.
    return raw


def machine_secret(value: str, arg: int | None, ctx: RuleContext) -> Iterator[RuleFailure]:
    """A machine-generated secret: enough estimated randomness and no hand-made patterns.

    Each weakness is its own failure: too few estimated bits, dictionary words, repeats,
    sequences, placeholders, low character entropy, high compressibility.
    """
    if not value:
        return
    min_bits = DEFAULT_MIN_BITS if arg is None else arg
    yield from _strength_failures("machine_secret", value, min_bits, max(32, -(-min_bits // 8)))


# --- jwt_hmac -----------------------------------------------------------------------------


def _parse_jwt_alg(raw: Any) -> str:
    algs = ", ".join(JWT_KEY_BYTES)
    if raw is None:
        raise RuleSyntaxError("jwt_hmac needs an algorithm", hint="write {jwt_hmac: HS256}")
    alg = str(raw).upper()
    if alg in JWT_KEY_BYTES:
        return alg
    hint = f"use one of {algs}"
    if alg[:2] in ("RS", "ES", "PS"):
        hint = f"{raw} keys are key pairs, not shared secrets; jwt_hmac checks {algs} keys"
    raise RuleSyntaxError(f"jwt_hmac: unknown algorithm {raw!r}", hint=hint)


def jwt_hmac(value: str, arg: str, ctx: RuleContext) -> Iterator[RuleFailure]:
    """An HMAC key for JWTs: RFC 7518 key size for the algorithm, and a machine secret.

    The key is the value's UTF-8 bytes, as PyJWT and most libraries use a string key.
    The randomness floor stays at 128 bits for every algorithm: that already puts brute
    force out of reach, while the RFC's length requirement is checked separately.
    """
    if not value:
        return
    needed = JWT_KEY_BYTES[arg]
    size = len(value.encode("utf-8"))
    if size < needed:
        yield RuleFailure(
            "jwt_hmac",
            f"is {size} bytes; {arg} needs at least {needed} (RFC 7518 3.2)",
            generate_hint(needed),
        )
    yield from _strength_failures("jwt_hmac", value, DEFAULT_MIN_BITS, needed)


# --- char_classes -------------------------------------------------------------------------


def _parse_classes(raw: Any) -> tuple[str, ...]:
    usage = "write {char_classes: [lower, upper, digit]} (classes: lower, upper, digit, symbol)"
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple) or not raw:
        raise RuleSyntaxError("char_classes needs a list of character classes", hint=usage)
    wanted: set[str] = set()
    for item in raw:
        name = CLASS_ALIASES.get(str(item).lower()) if isinstance(item, str) else None
        if name is None:
            raise RuleSyntaxError(f"char_classes: unknown class {item!r}", hint=usage)
        wanted.add(name)
    return tuple(c for c in CLASS_ORDER if c in wanted)


def _needs_phrase(classes: tuple[str, ...]) -> str:
    parts: list[str] = []
    if "lower" in classes and "upper" in classes:
        parts.append("mixed case")
    elif "lower" in classes:
        parts.append("lowercase letters")
    elif "upper" in classes:
        parts.append("uppercase letters")
    parts += [CLASS_NAMES[c] for c in classes if c in ("digit", "symbol")]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def char_classes(value: str, arg: tuple[str, ...], ctx: RuleContext) -> Iterator[RuleFailure]:
    """Every listed character class (lower, upper, digit, symbol) appears in the value."""
    if not value:
        return
    present = character_classes(value)
    missing = [c for c in arg if c not in present]
    if missing:
        names = ", ".join(_CLASS_LONG[c] for c in missing)
        yield RuleFailure(
            "char_classes",
            # Keeps the wording of the start-up check this rule replaced, so logs still match.
            f"insufficient entropy: needs {_needs_phrase(arg)} (missing {names})",
            f"{generate_hint()} (its output has mixed case and digits)",
        )


_CLASS_LONG = {
    "lower": "lowercase letters",
    "upper": "uppercase letters",
    "digit": "digits",
    "symbol": "symbols",
}


# --- not_placeholder ----------------------------------------------------------------------


def _parse_switch(raw: Any) -> bool | None:
    # `{not_placeholder: false}` switches off the default the manifest loader adds.
    if raw is None or isinstance(raw, bool):
        return raw
    raise RuleSyntaxError(
        f"not_placeholder takes no argument (or true/false), not {raw!r}",
        hint="write `- not_placeholder`, or {not_placeholder: false} to switch it off",
    )


def not_placeholder(value: str, arg: bool | None, ctx: RuleContext) -> Iterator[RuleFailure]:
    """The value is not a stand-in such as "changeme", "<your-key>", "xxxx" or "${VAR}"."""
    if value and arg is not False and is_placeholder(value):
        yield RuleFailure(
            "not_placeholder",
            REASON_PLACEHOLDER,
            f"store the real value; for a secret you make yourself, {generate_hint()}",
        )


register(
    RuleSpec(
        name="machine_secret",
        func=machine_secret,
        parse_arg=_parse_min_bits,
        summary=(
            "a machine-generated secret: at least min_bits (default 128) bits of estimated "
            "randomness, and no dictionary words, repeats, sequences or placeholders"
        ),
        passing=((None, EXAMPLE_KEY), ({"min_bits": 192}, EXAMPLE_KEY)),
        failing=(
            (None, "my-super-secret-jwt-key-for-staging-2024"),
            (None, "0123456789abcdef" * 4),
            ({"min_bits": 256}, EXAMPLE_KEY[:32]),
        ),
    )
)
register(
    RuleSpec(
        name="jwt_hmac",
        func=jwt_hmac,
        parse_arg=_parse_jwt_alg,
        summary=(
            "an HMAC key for JWTs: at least 32/48/64 bytes for HS256/HS384/HS512 "
            "(RFC 7518 3.2), and a machine secret"
        ),
        passing=(("HS256", EXAMPLE_KEY),),
        failing=(("HS256", EXAMPLE_KEY[:24]), ("HS512", EXAMPLE_KEY), ("HS256", "x" * 40)),
    )
)
register(
    RuleSpec(
        name="char_classes",
        func=char_classes,
        parse_arg=_parse_classes,
        summary="every listed character class (lower, upper, digit, symbol) appears",
        passing=((["lower", "upper", "digit"], "Deploy2Staging"),),
        failing=(
            (["lower", "upper", "digit"], "deploy-to-staging"),
            (["lower", "upper", "digit", "symbol"], "Deploy2Staging"),
        ),
    )
)
register(
    RuleSpec(
        name="not_placeholder",
        func=not_placeholder,
        parse_arg=_parse_switch,
        summary=(
            "not a placeholder such as changeme, <your-key>, xxxx or ${VAR} "
            "(on by default for secrets; {not_placeholder: false} switches it off)"
        ),
        passing=((None, EXAMPLE_KEY), (None, "Deploy2Staging")),
        failing=((None, "changeme"), (None, "<your-api-key>"), (None, "XXXX-XXXX-XXXX")),
    )
)
