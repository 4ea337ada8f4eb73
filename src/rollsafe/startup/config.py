"""The built-in checks: ``config`` (the manifest's rules on the process environment) and
``auth`` (the JWT signing secret).

They use the same rule code as ``rollsafe check`` (``rollsafe.rules.run_rules``), with the
same severities: in a strict environment every failing rule is an error; elsewhere rule
failures are warnings, except a missing value. Values are read from the process
environment at the moment the check runs; the contract holds none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from rollsafe.errors import UsageError
from rollsafe.findings import Severity
from rollsafe.rules import RULES, RuleContext, RuleRef, merge_failures, run_rules
from rollsafe.startup.contract import ContractKey, ServiceContract
from rollsafe.startup.report import StartupProblem
from rollsafe.startup.signing import JwtSecret, JwtSecretError, resolve_jwt_secret

__all__ = [
    "MODES",
    "MODE_VAR",
    "StartupMode",
    "check_config",
    "check_jwt_secret",
    "pick_mode",
    "runtime_rules",
]

StartupMode = Literal["fail_fast", "degraded"]
MODES: tuple[StartupMode, ...] = ("fail_fast", "degraded")
MODE_VAR = "ROLLSAFE_STARTUP_MODE"


def pick_mode(
    raw: str, *, strict: bool, explicit: bool = False
) -> tuple[StartupMode, StartupProblem | None]:
    """The failure mode: ``raw`` if it names one, else the environment's default
    (``fail_fast`` when strict). An unknown ``ROLLSAFE_STARTUP_MODE`` is a problem of the
    config phase and means ``fail_fast``; an unknown ``explicit`` mode is a UsageError."""
    text = raw.strip().lower().replace("-", "_")
    for known in MODES:
        if text == known:
            return known, None
    if not text:
        return ("fail_fast" if strict else "degraded"), None
    if explicit:
        raise UsageError(f"unknown start-up mode {raw!r}", hint="fail_fast or degraded")
    problem = StartupProblem(
        f"is {raw!r}, not one of: {', '.join(MODES)}",
        key=MODE_VAR,
        rule="one_of",
        hint="set it to fail_fast or degraded, or unset it for the default",
        source="env",
    )
    return "fail_fast", problem


def runtime_rules(rules: tuple[RuleRef, ...]) -> tuple[RuleRef, ...]:
    """The rules a service can judge by itself.

    Rules about another environment (``differs_from``) need that environment's secret
    store; ``rollsafe check`` and ``rollsafe deploy`` judge them, the service does not.
    """
    return tuple(ref for ref in rules if RULES[ref.name].refers_to != "env")


def check_config(contract: ServiceContract, environ: Mapping[str, str]) -> list[StartupProblem]:
    """Every key of the contract against its rules, all problems at once."""
    plain = {k.name: environ.get(k.name, "") for k in contract.keys.values() if k.kind == "env"}
    problems: list[StartupProblem] = []
    for key in contract.keys.values():
        value = environ.get(key.name)
        if not value:
            problems.append(_missing(contract, key, value))
            continue
        ctx = RuleContext(
            env=contract.env,
            strict=contract.strict,
            key=key.name,
            is_secret=key.kind == "secret",
            values=plain,
        )
        for failure in merge_failures(run_rules(value, runtime_rules(key.rules), ctx)):
            required = failure.rule == "required"  # a missing value blocks everywhere
            severity = Severity.ERROR if required or contract.strict else Severity.WARNING
            problems.append(
                StartupProblem(
                    failure.message,
                    key=key.name,
                    rule=failure.rule,
                    severity=severity,
                    hint=failure.hint,
                    source="env",
                )
            )
    return problems


def _missing(contract: ServiceContract, key: ContractKey, value: str | None) -> StartupProblem:
    if key.kind == "secret":
        where = f"secret '{key.secret}'" if key.secret else "its secret"
        hint = (
            f"map {where} into the service as {key.name} "
            f"(rollsafe secrets-string --env {contract.env} --service {contract.service})"
        )
    else:
        hint = f"set {key.name} in the service's environment, as the manifest declares it"
    return StartupProblem(
        "is not set" if value is None else "is empty",
        key=key.name,
        rule="required",
        hint=hint,
        source="env",
    )


def check_jwt_secret(
    contract: ServiceContract, environ: Mapping[str, str]
) -> tuple[JwtSecret | None, list[StartupProblem]]:
    """The JWT secret the contract declares, resolved and checked; or why it cannot be."""
    if contract.jwt_secret is None:
        return None, []
    try:
        secret = resolve_jwt_secret(
            contract.jwt_secret, environ, strict=contract.strict, env=contract.env
        )
    except JwtSecretError as exc:
        return None, exc.problems
    return secret, list(secret.warnings)
