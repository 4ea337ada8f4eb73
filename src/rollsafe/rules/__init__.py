"""The validation rules: pure functions of (value, context) -> failures. No I/O.

Importing this package registers every rule in ``RULES``. It stays cheap to import (it runs
in every service at start-up): the dictionary behind ``machine_secret`` loads on first use.
"""

from __future__ import annotations

# Imported for their side effect: each module registers its rules in RULES.
from rollsafe.rules import secrets as secrets
from rollsafe.rules import urls as urls
from rollsafe.rules import values as values
from rollsafe.rules._base import (
    RULES,
    RuleContext,
    RuleFailure,
    RuleRef,
    RuleSpec,
    RuleSyntaxError,
    merge_failures,
    parse_rule,
    register,
    run_rules,
)
from rollsafe.rules._placeholders import is_placeholder
from rollsafe.rules._strength import SecretStrength, estimate_secret_strength

__all__ = [
    "RULES",
    "RuleContext",
    "RuleFailure",
    "RuleRef",
    "RuleSpec",
    "RuleSyntaxError",
    "SecretStrength",
    "estimate_secret_strength",
    "is_placeholder",
    "merge_failures",
    "parse_rule",
    "register",
    "run_rules",
]
