"""Random secret values that pass the manifest's rules, for ``rollsafe secret rotate``.

The value comes from the ``secrets`` module (the OS's CSPRNG), drawn from letters and digits
(and a few shell-safe symbols when a ``char_classes`` rule asks for symbols), long enough for
every rule that sizes it: ``jwt_hmac`` (RFC 7518 key size), ``min_length``,
``machine_secret`` (``min_bits``, with a margin because the strength estimate is
conservative). Each candidate is judged by the same rule engine ``rollsafe check`` runs;
a candidate that fails (a random draw can spell a word) is thrown away and another drawn.

Rules that pin a value to a fixed shape cannot be met by chance: ``one_of``, ``url`` and
``same_origin`` are refused at once, and a ``regex`` that no candidate matches is refused
after a bounded number of draws.
"""

from __future__ import annotations

import math
import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rollsafe.errors import RollsafeError
from rollsafe.rules import RuleContext, RuleRef, run_rules
from rollsafe.rules.secrets import DEFAULT_MIN_BITS, JWT_KEY_BYTES

__all__ = ["DRAWS", "GenerationError", "RuleUse", "generate_value"]

#: candidates drawn before giving up on a set of rules
DRAWS = 50
#: characters of a default value: 43 x log2(62) = 256 bits, as token_urlsafe(32)
DEFAULT_LENGTH = 43
#: symbols safe in shells, URLs' userinfo aside, .env files and YAML without quoting
SYMBOLS = "-_.~+=%@^*!#"
#: rules whose accepted values cannot be reached by drawing at random
UNGENERATABLE = {
    "one_of": "its value is one of a fixed list",
    "url": "its value is a URL",
    "same_origin": "its value is a URL",
}
#: rules that compare with other environments: a fresh 256-bit draw never equals another value
SKIPPED = frozenset({"differs_from"})


class GenerationError(RollsafeError):
    """No random value can satisfy the rules of every key that uses the secret."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class RuleUse:
    """One key that uses the secret: where, and the rules its value must pass."""

    service: str
    key: str
    rules: tuple[RuleRef, ...]
    context: RuleContext


def _length(uses: Sequence[RuleUse], bits_per_char: float) -> int:
    length = DEFAULT_LENGTH
    for use in uses:
        for ref in use.rules:
            if ref.name == "jwt_hmac":
                length = max(length, JWT_KEY_BYTES[str(ref.arg)])
            elif ref.name == "min_length":
                length = max(length, int(ref.arg))
            elif ref.name == "machine_secret":
                bits = DEFAULT_MIN_BITS if ref.arg is None else int(ref.arg)
                # twice the bits asked for: the estimator discounts patterns it sees
                length = max(length, math.ceil(2 * bits / bits_per_char))
    return length


def _alphabet(uses: Iterable[RuleUse]) -> str:
    letters = string.ascii_letters + string.digits
    for use in uses:
        for ref in use.rules:
            if ref.name == "char_classes" and "symbol" in ref.arg:
                return letters + SYMBOLS
    return letters


def _failures(value: str, uses: Sequence[RuleUse]) -> list[str]:
    failed = []
    for use in uses:
        rules = [ref for ref in use.rules if ref.name not in SKIPPED]
        for failure in run_rules(value, rules, use.context):
            failed.append(f"{use.service}.{use.key}: {failure.rule} ({failure.message})")
    return failed


def generate_value(secret: str, uses: Sequence[RuleUse]) -> str:
    """A fresh random value for ``secret`` that passes the rules of every use.

    Raises ``GenerationError`` naming the key and rule when none can. The value is returned
    only to be written to the store; messages never contain it.
    """
    env = uses[0].context.env if uses else "ENV"
    hint = f"set the value yourself: rollsafe secret set {secret} --env {env}"
    for use in uses:
        for ref in use.rules:
            if ref.name in UNGENERATABLE:
                raise GenerationError(
                    f"cannot generate a value for secret '{secret}': {use.service}.{use.key}"
                    f" has rule {ref.name} ({UNGENERATABLE[ref.name]})",
                    hint=hint,
                )
    alphabet = _alphabet(uses)
    length = _length(uses, math.log2(len(alphabet)))
    last: list[str] = []
    for _ in range(DRAWS):
        value = "".join(secrets.choice(alphabet) for _ in range(length))
        last = _failures(value, uses)
        if not last:
            return value
    raise GenerationError(
        f"cannot generate a value for secret '{secret}' that passes its rules:"
        f" {DRAWS} random values of {length} characters failed; last: {'; '.join(last)}",
        hint=hint,
    )
