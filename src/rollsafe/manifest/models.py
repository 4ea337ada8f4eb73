"""The manifest contract (version 1) as pydantic models. Field names are the contract."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    Tag,
    WithJsonSchema,
    model_validator,
)

from rollsafe.manifest._monitor_models import Monitor, Receiver
from rollsafe.rules import RULES, RuleRef, parse_rule

__all__ = [
    "Analysis",
    "EnvSpec",
    "Environment",
    "HealthCheck",
    "JwtSecretConfig",
    "Manifest",
    "SecretOverride",
    "SecretSpec",
    "Service",
    "ServiceOverride",
    "StartupCheck",
    "parse_duration",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(raw: object) -> float:
    """``"2s"``, ``"500ms"``, ``"1m"`` or a number of seconds, as seconds."""
    if isinstance(raw, bool):
        raise ValueError("a duration is a number of seconds or a string like '2s' or '500ms'")
    if isinstance(raw, int | float):
        seconds = float(raw)
    elif isinstance(raw, str) and (match := _DURATION.match(raw)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError("a duration is a number of seconds or a string like '2s' or '500ms'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def _scalar_to_str(raw: object) -> object:
    # YAML reads `true`, `8080` and `1.5` as non-strings; Cloud Run env values are strings
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return str(raw)
    return raw


def _parse_rule(raw: object) -> RuleRef:
    if isinstance(raw, RuleRef):
        return raw
    return parse_rule(raw)


def _rule_schema() -> dict[str, Any]:
    names = sorted(RULES)
    return {
        "anyOf": [
            {"type": "string", "enum": names},
            {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "propertyNames": {"enum": names},
            },
        ],
        "description": "A rule: a bare name or {name: argument}. See docs/rules.md.",
    }


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": _DURATION.pattern},
            ]
        }
    ),
]


def _whole_seconds(raw: object) -> int:
    seconds = parse_duration(raw)
    if seconds != int(seconds):
        raise ValueError(
            "a startup probe counts whole seconds (Cloud Run's probe fields are integers), "
            "like '2s' or 3"
        )
    return int(seconds)


WholeSeconds = Annotated[
    int,
    BeforeValidator(_whole_seconds),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": _DURATION.pattern},
            ]
        }
    ),
]
#: Cloud Run's limit on a startup probe's initial delay and period, in seconds
_STARTUP_MAX = 240
Scalar = Annotated[
    str,
    BeforeValidator(_scalar_to_str),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
Rule = Annotated[
    RuleRef,
    PlainValidator(_parse_rule),
    PlainSerializer(lambda ref: ref.to_json()),
    WithJsonSchema(_rule_schema()),
]
SecretVersion = Annotated[
    str,
    BeforeValidator(_scalar_to_str),
    Field(pattern=r"^(latest|[1-9][0-9]*)$"),
    WithJsonSchema({"anyOf": [{"const": "latest"}, {"type": "integer", "minimum": 1}]}),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Environment(_Model):
    """One deploy target: where it runs, how strictly it is checked, where secrets live."""

    platform: Literal["local", "cloudrun"] = "local"
    strict: bool = False
    gcp_project: str | None = None
    region: str | None = None
    store: str | None = Field(
        default=None,
        description="Secret store: 'dotenv:PATH' (relative to the manifest) or 'secretmanager'.",
    )
    watch: Duration | None = Field(
        default=None,
        description="How long a deploy watches the service after the shift (default: 30s in "
        "strict environments, 0 elsewhere).",
    )
    alerts: list[Receiver] = Field(
        default_factory=list,
        description="Where `rollsafe monitor` sends this environment's alerts. See "
        "docs/monitor.md.",
    )


class StartupCheck(_Model):
    """The startup probe deploy gives the revision: HTTP GET ``health.path`` on the container
    port, run by Cloud Run itself. The revision becomes ready (and can take traffic) only once
    an attempt answers 200-399; ``failure_threshold`` failures in a row fail it."""

    initial_delay: WholeSeconds = Field(
        default=0, ge=0, le=_STARTUP_MAX, description="Wait this long before the first attempt."
    )
    period: WholeSeconds = Field(
        default=1, ge=1, le=_STARTUP_MAX, description="Start an attempt this often."
    )
    timeout: WholeSeconds = Field(
        default=1, ge=1, le=_STARTUP_MAX, description="An attempt fails after this long."
    )
    failure_threshold: int = Field(
        default=60, ge=1, le=10_000, description="Failed attempts in a row that fail the start."
    )

    @model_validator(mode="after")
    def _timeout_within_period(self) -> StartupCheck:
        if self.timeout > self.period:
            raise ValueError(
                f"timeout ({self.timeout}s) must not exceed period ({self.period}s): Cloud Run "
                "refuses a probe whose timeout_seconds is above its period_seconds"
            )
        return self


class HealthCheck(_Model):
    """How to tell a revision is healthy."""

    path: str = "/health"
    expect_status: int = Field(default=200, ge=100, le=599)
    timeout: Duration = 2.0
    expect_json: dict[str, Any] = Field(
        default_factory=dict,
        description="Fields the JSON body must have, by dotted path: {status: healthy}.",
    )
    max_latency: Duration | None = Field(default=None, description="Slower answers fail.")
    consecutive: int = Field(default=3, ge=1, le=100, description="Passes needed in a row.")
    interval: Duration = Field(default=0.5, description="Pause between verification probes.")
    verify_timeout: Duration = Field(default=30.0, description="Give up verifying after this.")
    cold_start: Duration = Field(
        default=10.0,
        description="How long the first probe after a revision becomes ready (or scales from "
        "zero) may take, instead of `max_latency`. See docs/deploy.md#cold-starts.",
    )
    startup: StartupCheck = Field(
        default_factory=StartupCheck,
        description="The startup probe on `path` that Cloud Run runs before the revision may "
        "take traffic. See docs/startup-probes.md.",
    )


class Analysis(_Model):
    """How a canary step judges the new revision's real requests (Cloud Run request logs)."""

    max_error_rate: float = Field(
        default=0.01, ge=0, le=1, description="Largest share of 5xx answers, 0.01 is 1%."
    )
    max_p95_latency: Duration | None = Field(
        default=None, description="Slower 95th percentile latency fails the step."
    )
    min_requests: int = Field(
        default=20, ge=1, description="Fewer requests than this: judged by probes alone."
    )
    step_seconds: Duration = Field(
        default=10.0, gt=0, description="How long each canary step lasts and is judged over."
    )
    require_traffic: bool = Field(
        default=False,
        description="Fail a step with fewer than `min_requests` requests (fail closed).",
    )


class EnvSpec(_Model):
    """A plain value with rules: ``{value: ..., rules: [...]}``."""

    value: Scalar
    rules: list[Rule] = Field(default_factory=list)


class JwtSecretConfig(_Model):
    """Where the JWT signing secret may be: variable names tried in order, and its algorithm.

    ``{env}`` expands to the environment name and ``{ENV}`` to it upper-cased (``-`` as
    ``_``), so ``JWT_SECRET_{ENV}`` is ``JWT_SECRET_STAGING`` in staging.
    """

    names: list[str] = Field(min_length=1)
    algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"


def _entry_kind(raw: object) -> str:
    return "spec" if isinstance(raw, dict | EnvSpec) else "plain"


EnvEntry = Annotated[
    Annotated[Scalar, Tag("plain")] | Annotated[EnvSpec, Tag("spec")],
    Discriminator(_entry_kind),
]


class SecretSpec(_Model):
    """A secret reference: ``{secret: NAME, version: latest|N, rules: [...]}``."""

    secret: str = Field(min_length=1)
    version: SecretVersion = "latest"
    rules: list[Rule] = Field(default_factory=list)


class SecretOverride(_Model):
    """Per-environment changes to a secret reference; unset fields keep the base."""

    secret: str | None = Field(default=None, min_length=1)
    version: SecretVersion | None = None
    rules: list[Rule] | None = None


class ServiceOverride(_Model):
    """Per-environment changes to a service; maps are merged key by key."""

    image: str | None = None
    command: list[Scalar] | None = None
    workdir: str | None = None
    health: HealthCheck | None = None
    analysis: Analysis | None = None
    env: dict[str, EnvEntry] = Field(default_factory=dict)
    secrets: dict[str, SecretOverride] = Field(default_factory=dict)
    jwt_secret: JwtSecretConfig | None = None
    public: bool | None = Field(
        default=None,
        description="Override of `public` in this environment.",
    )
    monitor: Monitor | None = None


class Service(_Model):
    """One Cloud Run service: its image (or local command), health check, env and secrets."""

    image: str | None = None
    command: list[Scalar] | None = None
    workdir: str | None = None
    health: HealthCheck = Field(default_factory=HealthCheck)
    analysis: Analysis = Field(
        default_factory=Analysis,
        description="How canary steps judge real requests. See docs/deploy.md#canary-analysis.",
    )
    env: dict[str, EnvEntry] = Field(default_factory=dict)
    secrets: dict[str, SecretSpec] = Field(default_factory=dict)
    jwt_secret: JwtSecretConfig | None = None
    public: bool = Field(
        default=False,
        description="Anyone may call the service (allUsers has roles/run.invoker), as "
        "`gcloud run deploy --allow-unauthenticated`. Default false: private, as Cloud Run "
        "creates services; callers need an ID token. See docs/access.md.",
    )
    monitor: Monitor = Field(
        default_factory=Monitor,
        description="How `rollsafe monitor` watches the service. See docs/monitor.md.",
    )
    overrides: dict[str, ServiceOverride] = Field(default_factory=dict)


class Manifest(_Model):
    """``rollsafe.yaml``, version 1."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    version: Literal[1]
    project: str = Field(min_length=1)
    state: str | None = Field(
        default=None,
        min_length=1,
        description="Where the deploy journal and locks live: `sqlite:PATH` (default: "
        "journal.sqlite3 in the state directory) or a `postgresql://USER@HOST/DB` URL shared "
        "by the team, without its password (PGPASSWORD, ~/.pgpass or "
        "ROLLSAFE_STATE_PASSWORD). ROLLSAFE_STATE and --state override it. See docs/state.md.",
    )
    environments: dict[str, Environment] = Field(min_length=1)
    services: dict[str, Service] = Field(default_factory=dict)
