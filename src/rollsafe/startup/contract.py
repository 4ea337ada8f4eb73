"""The start-up contract: one service's rules for one environment, as JSON, without values.

``rollsafe contract --env ENV --service S`` prints it and ``rollsafe deploy`` injects it as
``ROLLSAFE_CONTRACT``, so a service image needs no manifest file. Reading it needs only
``json`` and the rules: no pydantic, no YAML. The manifest path (``ROLLSAFE_MANIFEST``,
``ROLLSAFE_SERVICE``, ``ROLLSAFE_ENV``) builds the same contract from ``rollsafe.yaml``.

Shape (version 1)::

    {"version": 1, "env": "staging", "strict": true, "service": "backend",
     "keys": {"FRONTEND_URL": {"kind": "env", "rules": ["url"]},
              "SERVICE_SECRET": {"kind": "secret", "secret": "service-secret-staging",
                                 "rules": ["machine_secret", "not_placeholder"]}},
     "jwt_secret": {"names": ["JWT_SECRET_STAGING", "JWT_SECRET_KEY"], "algorithm": "HS256"}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rollsafe.errors import RollsafeError
from rollsafe.rules import RuleRef, RuleSyntaxError, parse_rule

if TYPE_CHECKING:
    from rollsafe.manifest import ResolvedEnvironment

__all__ = [
    "CONTRACT_VAR",
    "CONTRACT_VERSION",
    "ContractError",
    "ContractKey",
    "JwtSecretSpec",
    "ServiceContract",
    "contract_from_service",
    "load_contract",
]

CONTRACT_VERSION = 1
CONTRACT_VAR = "ROLLSAFE_CONTRACT"
MANIFEST_VAR = "ROLLSAFE_MANIFEST"
SERVICE_VAR = "ROLLSAFE_SERVICE"
ENV_VAR = "ROLLSAFE_ENV"
JWT_ALGORITHMS = ("HS256", "HS384", "HS512")
_HOW = (
    "set ROLLSAFE_CONTRACT to the output of `rollsafe contract --env ENV --service S`, or set "
    "ROLLSAFE_MANIFEST, ROLLSAFE_SERVICE and ROLLSAFE_ENV"
)


class ContractError(RollsafeError):
    """``ROLLSAFE_CONTRACT`` (or the variables naming a manifest) cannot be used."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class ContractKey:
    """One variable of the service: plain (``env``) or from the secret store (``secret``)."""

    name: str
    kind: Literal["env", "secret"]
    rules: tuple[RuleRef, ...] = ()
    secret: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.secret:
            data["secret"] = self.secret
        data["rules"] = [ref.to_json() for ref in self.rules]
        return data


@dataclass(frozen=True, slots=True)
class JwtSecretSpec:
    """Where the JWT signing secret may be, in order of preference, and its algorithm."""

    names: tuple[str, ...]
    algorithm: str = "HS256"

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "algorithm": self.algorithm}


@dataclass(frozen=True, slots=True)
class ServiceContract:
    """What the guard of one service checks in one environment. Holds no values."""

    env: str
    strict: bool
    service: str
    keys: Mapping[str, ContractKey] = field(default_factory=dict)
    jwt_secret: JwtSecretSpec | None = None

    @property
    def secret_names(self) -> tuple[str, ...]:
        """The variables whose values are secrets (the JWT names included)."""
        names = [k.name for k in self.keys.values() if k.kind == "secret"]
        if self.jwt_secret:
            names += [n for n in self.jwt_secret.names if n not in names]
        return tuple(names)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": CONTRACT_VERSION,
            "env": self.env,
            "strict": self.strict,
            "service": self.service,
            "keys": {name: key.to_dict() for name, key in self.keys.items()},
        }
        if self.jwt_secret is not None:
            data["jwt_secret"] = self.jwt_secret.to_dict()
        return data

    def to_json(self) -> str:
        """One line of JSON, ready to be an environment variable's value."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ServiceContract:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(
                f"{CONTRACT_VAR} is not valid JSON ({exc.msg} at position {exc.pos})",
                hint=_HOW,
            ) from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: object) -> ServiceContract:
        if not isinstance(data, dict):
            raise ContractError(f"{CONTRACT_VAR} must be a JSON object", hint=_HOW)
        if data.get("version") != CONTRACT_VERSION:
            raise ContractError(
                f"{CONTRACT_VAR} has version {data.get('version')!r}; this rollsafe reads "
                f"version {CONTRACT_VERSION}",
                hint="print the contract with the rollsafe version the service runs",
            )
        env, service, strict = data.get("env"), data.get("service"), data.get("strict")
        if not isinstance(env, str) or not isinstance(service, str) or not isinstance(strict, bool):
            raise ContractError(
                f"{CONTRACT_VAR} needs env (string), service (string) and strict (boolean)",
                hint=_HOW,
            )
        raw_keys = data.get("keys", {})
        if not isinstance(raw_keys, dict):
            raise ContractError(f"{CONTRACT_VAR}: keys must be an object", hint=_HOW)
        keys = {name: _key(name, raw) for name, raw in raw_keys.items()}
        jwt = _jwt_spec(data["jwt_secret"]) if data.get("jwt_secret") is not None else None
        return cls(env=env, strict=strict, service=service, keys=keys, jwt_secret=jwt)


def _key(name: object, raw: object) -> ContractKey:
    if not isinstance(name, str) or not isinstance(raw, dict):
        raise ContractError(f"{CONTRACT_VAR}: key {name!r} must map to an object", hint=_HOW)
    kind = raw.get("kind")
    if kind not in ("env", "secret"):
        raise ContractError(
            f"{CONTRACT_VAR}: key {name} has kind {kind!r}, not 'env' or 'secret'", hint=_HOW
        )
    rules = raw.get("rules", [])
    if not isinstance(rules, list):
        raise ContractError(f"{CONTRACT_VAR}: rules of {name} must be a list", hint=_HOW)
    try:
        refs = tuple(parse_rule(rule) for rule in rules)
    except RuleSyntaxError as exc:
        raise ContractError(f"{CONTRACT_VAR}: key {name}: {exc}", hint=exc.hint or _HOW) from None
    secret = raw.get("secret")
    return ContractKey(name, kind, refs, secret if isinstance(secret, str) else None)


def _jwt_spec(raw: object) -> JwtSecretSpec:
    names = raw.get("names") if isinstance(raw, dict) else None
    algorithm = raw.get("algorithm", "HS256") if isinstance(raw, dict) else None
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and n for n in names)
        or algorithm not in JWT_ALGORITHMS
    ):
        raise ContractError(
            f"{CONTRACT_VAR}: jwt_secret needs names (a list of variable names) and an "
            f"algorithm ({', '.join(JWT_ALGORITHMS)})",
            hint=_HOW,
        )
    return JwtSecretSpec(tuple(names), str(algorithm))


def contract_from_service(env: ResolvedEnvironment, service: str) -> ServiceContract:
    """The contract of ``service`` in the resolved environment ``env``."""
    svc = env.services[service]
    keys: dict[str, ContractKey] = {}
    for name, var in svc.env.items():
        keys[name] = ContractKey(name, "env", var.rules)
    for name, sec in svc.secrets.items():
        keys[name] = ContractKey(name, "secret", sec.rules, sec.secret)
    jwt = None
    if svc.jwt_secret is not None:
        jwt = JwtSecretSpec(svc.jwt_secret.names, svc.jwt_secret.algorithm)
    return ServiceContract(env.name, env.strict, svc.name, keys, jwt)


def load_contract(environ: Mapping[str, str]) -> tuple[ServiceContract, str]:
    """The contract from ``ROLLSAFE_CONTRACT``, else from the manifest the variables name.

    Returns the contract and where it came from. Raises ``ContractError`` when neither is
    set, and ``ManifestError`` / ``UsageError`` for a bad manifest, environment or service.
    Only the manifest path imports the manifest loader (pydantic, YAML).
    """
    text = environ.get(CONTRACT_VAR, "").strip()
    if text:
        return ServiceContract.from_json(text), CONTRACT_VAR
    path = environ.get(MANIFEST_VAR, "").strip()
    if not path:
        raise ContractError(
            "no start-up contract: the service's rules are unknown",
            hint=_HOW,
        )
    service, env = environ.get(SERVICE_VAR, "").strip(), environ.get(ENV_VAR, "").strip()
    if not service or not env:
        missing = [n for n, v in ((SERVICE_VAR, service), (ENV_VAR, env)) if not v]
        raise ContractError(
            f"{MANIFEST_VAR} is set but {' and '.join(missing)} "
            + ("are not set" if len(missing) > 1 else "is not set"),
            hint="set ROLLSAFE_SERVICE to the service's name and ROLLSAFE_ENV to the environment",
        )
    from rollsafe.errors import UsageError
    from rollsafe.manifest import load_manifest

    resolved = load_manifest(path).resolve(env)
    if service not in resolved.services:
        raise UsageError(
            f"unknown service '{service}' in {path}",
            hint=f"services: {', '.join(resolved.services) or '(none)'}",
        )
    return contract_from_service(resolved, service), f"manifest:{path}"
