"""The JWT signing secret: found under an ordered list of names, checked with ``jwt_hmac``.

The manifest declares, per service, where the secret may be::

    jwt_secret: {names: ["JWT_SECRET_{ENV}", JWT_SECRET_KEY], algorithm: HS256}

``jwt_secret()`` takes the first of those variables that is set and not empty, checks it
with the ``jwt_hmac`` rule (RFC 7518 key size, and random) and returns it wrapped in a
``JwtSecret`` that says which name it came from and never shows its value.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping

from rollsafe.errors import RollsafeError
from rollsafe.findings import Severity
from rollsafe.rules import RuleContext, RuleRef, run_rules
from rollsafe.startup.contract import JWT_ALGORITHMS, ContractError, JwtSecretSpec, load_contract
from rollsafe.startup.report import StartupProblem

__all__ = ["JwtSecret", "JwtSecretError", "jwt_secret", "resolve_jwt_secret"]


class JwtSecretError(RollsafeError):
    """No usable JWT secret: none of the names is set, or (strict) the one set is weak.

    ``problems`` holds the details as ``StartupProblem`` objects (no values).
    """

    exit_code = 1

    def __init__(self, problems: list[StartupProblem]) -> None:
        first = problems[0]
        super().__init__("; ".join(p.describe() for p in problems), hint=first.hint or None)
        self.problems = problems


class JwtSecret:
    """The app's JWT signing secret. ``reveal()`` is the only way to the value.

    ``name`` is the variable it came from, ``tried`` every name looked at (in order),
    ``warnings`` the rule failures tolerated in a non-strict environment.
    """

    __slots__ = ("_value", "algorithm", "name", "tried", "warnings")

    def __init__(
        self,
        value: str,
        *,
        name: str,
        algorithm: str,
        tried: tuple[str, ...] = (),
        warnings: tuple[StartupProblem, ...] = (),
    ) -> None:
        self._value = value
        self.name = name
        self.algorithm = algorithm
        self.tried = tried or (name,)
        self.warnings = warnings

    def reveal(self) -> str:
        """The secret, to sign and verify tokens with. Never log it."""
        return self._value

    def fingerprint(self) -> str:
        """The first 8 hex characters of its SHA-256: tells two secrets apart, safely."""
        return hashlib.sha256(self._value.encode("utf-8")).hexdigest()[:8]

    def __len__(self) -> int:
        return len(self._value.encode("utf-8"))

    def __repr__(self) -> str:
        return (
            f"JwtSecret(name={self.name!r}, algorithm={self.algorithm!r}, "
            f"<redacted>, {len(self)} bytes)"
        )

    __str__ = __repr__


def expand_name(template: str, env: str | None) -> str:
    """``{ENV}`` -> the environment upper-cased (``-`` as ``_``); ``{env}`` -> as is."""
    if env is None:
        return template
    return template.replace("{ENV}", env.upper().replace("-", "_")).replace("{env}", env)


def resolve_jwt_secret(
    spec: JwtSecretSpec,
    environ: Mapping[str, str],
    *,
    strict: bool,
    env: str | None = None,
) -> JwtSecret:
    """The first of ``spec.names`` that is set, checked with ``jwt_hmac``.

    Raises ``JwtSecretError`` when none is set, or when the rule fails in a strict
    environment; in a non-strict one the failures come back as ``warnings``.
    """
    names = tuple(expand_name(n, env) for n in spec.names)
    for name in names:
        value = environ.get(name, "")
        if not value:
            continue
        ctx = RuleContext(env=env or "", strict=strict, key=name, is_secret=True)
        failures = run_rules(value, (RuleRef("jwt_hmac", spec.algorithm),), ctx)
        severity = Severity.ERROR if strict else Severity.WARNING
        problems = [
            StartupProblem(f.message, key=name, rule=f.rule, severity=severity, hint=f.hint)
            for f in failures
        ]
        if problems and strict:
            raise JwtSecretError(_merged(problems))
        return JwtSecret(
            value,
            name=name,
            algorithm=spec.algorithm,
            tried=names[: names.index(name) + 1],
            warnings=tuple(_merged(problems)) if problems else (),
        )
    raise JwtSecretError(
        [
            StartupProblem(
                f"none of {', '.join(names)} is set",
                key=names[0],
                rule="required",
                hint=f"map the JWT signing secret into the service as one of {', '.join(names)}",
            )
        ]
    )


def _merged(problems: list[StartupProblem]) -> list[StartupProblem]:
    if len(problems) < 2:
        return problems
    first = problems[0]
    message = "; ".join(dict.fromkeys(p.message for p in problems))
    return [
        StartupProblem(
            message, key=first.key, rule=first.rule, severity=first.severity, hint=first.hint
        )
    ]


def jwt_secret(
    names: Iterable[str] | None = None,
    *,
    algorithm: str | None = None,
    strict: bool | None = None,
    env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> JwtSecret:
    """Resolve the JWT signing secret of this service.

    Without ``names``, the names and algorithm come from the service's start-up contract
    (``ROLLSAFE_CONTRACT``, or the manifest that ``ROLLSAFE_MANIFEST`` names), and so do
    the environment and its strictness. With ``names`` (``{ENV}`` and ``{env}`` expand
    when ``env`` is given), ``algorithm`` defaults to HS256 and ``strict`` to true.

    >>> key = jwt_secret()                      # doctest: +SKIP
    >>> jwt.encode(claims, key.reveal(), algorithm=key.algorithm)  # doctest: +SKIP
    """
    source = os.environ if environ is None else environ
    if algorithm is not None and algorithm.upper() not in JWT_ALGORITHMS:
        raise ContractError(
            f"unknown JWT algorithm {algorithm!r}",
            hint=f"jwt_secret() takes one of {', '.join(JWT_ALGORITHMS)} (HMAC, shared secret)",
        )
    if names is None:
        contract, _ = load_contract(source)
        if contract.jwt_secret is None:
            raise ContractError(
                f"service '{contract.service}' declares no jwt_secret",
                hint='add jwt_secret: {names: ["JWT_SECRET_{ENV}", JWT_SECRET_KEY], '
                "algorithm: HS256} to the service in rollsafe.yaml, or pass names=",
            )
        spec = contract.jwt_secret
        if algorithm is not None:
            spec = JwtSecretSpec(spec.names, algorithm.upper())
        return resolve_jwt_secret(
            spec,
            source,
            strict=contract.strict if strict is None else strict,
            env=contract.env,
        )
    wanted = tuple(names)
    alg = (algorithm or "HS256").upper()
    if not wanted:
        raise ContractError(
            "jwt_secret needs at least one variable name",
            hint='for example jwt_secret(["JWT_SECRET_{ENV}", "JWT_SECRET_KEY"], env="staging")',
        )
    return resolve_jwt_secret(
        JwtSecretSpec(wanted, alg), source, strict=True if strict is None else strict, env=env
    )
