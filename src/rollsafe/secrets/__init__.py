"""Managing secret values: what ``rollsafe secret`` does (set, rotate, list, versions, states).

Values go into a ``WritableSecretStore`` (Secret Manager, the emulator, the in-memory twin)
and never come back out of these functions: results and errors carry names, numbers and
states only.
"""

from rollsafe.secrets._generate import GenerationError, RuleUse, generate_value
from rollsafe.secrets._manage import (
    MANAGED_LABELS,
    SecretRefusedError,
    SecretStatus,
    WriteResult,
    change_state,
    expand,
    manifest_secrets,
    read_value,
    rotate_secret,
    rule_uses,
    secret_statuses,
    set_secret,
    versions_of,
    writable,
)

__all__ = [
    "MANAGED_LABELS",
    "GenerationError",
    "RuleUse",
    "SecretRefusedError",
    "SecretStatus",
    "WriteResult",
    "change_state",
    "expand",
    "generate_value",
    "manifest_secrets",
    "read_value",
    "rotate_secret",
    "rule_uses",
    "secret_statuses",
    "set_secret",
    "versions_of",
    "writable",
]
