"""Loading ``rollsafe.yaml``: read, parse with lines, validate, resolve per environment."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from rollsafe.errors import ManifestError, UsageError
from rollsafe.manifest._errors import format_key_path, from_validation_error
from rollsafe.manifest._monitor_resolved import resolve_monitor, resolve_receiver
from rollsafe.manifest._yaml import LineMap, YamlSyntaxError, load_yaml
from rollsafe.manifest.models import EnvSpec, Manifest, Service
from rollsafe.manifest.resolved import (
    ResolvedAnalysis,
    ResolvedEnvironment,
    ResolvedHealth,
    ResolvedJwtSecret,
    ResolvedSecret,
    ResolvedService,
    ResolvedStartup,
    ResolvedVar,
)
from rollsafe.rules import RULES, RuleRef

__all__ = ["DEFAULT_MANIFEST", "LoadedManifest", "load_manifest"]

_Item = TypeVar("_Item", ResolvedVar, ResolvedSecret)

DEFAULT_MANIFEST = "rollsafe.yaml"
DEFAULT_REGION = "us-central1"

_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# Cloud Run sets these itself and refuses them in a revision's env
_RESERVED = {"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"}
# On by default for secrets; `{not_placeholder: false}` turns it off
_SECRET_DEFAULT_RULES = ("not_placeholder",)


@dataclass(frozen=True)
class LoadedManifest:
    """A validated manifest, with where it came from and the line of every key."""

    path: Path
    model: Manifest
    lines: LineMap

    @property
    def environments(self) -> list[str]:
        return list(self.model.environments)

    def error(self, message: str, path: tuple[str | int, ...], hint: str | None) -> ManifestError:
        """A ManifestError pointing at ``path`` in this file."""
        return ManifestError(
            message,
            file=str(self.path),
            line=self.lines.line_of(path),
            key_path=format_key_path(path),
            hint=hint,
        )

    def resolve(self, env: str) -> ResolvedEnvironment:
        """The manifest as environment ``env`` sees it. Unknown ``env`` is a UsageError."""
        if env not in self.model.environments:
            close = difflib.get_close_matches(env, self.environments, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UsageError(
                f"unknown environment '{env}' in {self.path}",
                hint=f"{hint}environments: {', '.join(self.environments)}",
            )
        spec = self.model.environments[env]
        services = {name: self._resolve_service(name, svc, env) for name, svc in self._services()}
        return ResolvedEnvironment(
            name=env,
            project=self.model.project,
            platform=spec.platform,
            strict=spec.strict,
            gcp_project=_expand(spec.gcp_project, env) or f"{self.model.project}-{env}",
            region=spec.region or DEFAULT_REGION,
            store=_expand(spec.store, env),
            manifest_path=self.path,
            services=services,
            line=self.lines.line_of(("environments", env)),
            watch=spec.watch if spec.watch is not None else (30.0 if spec.strict else 0.0),
            state=self.model.state,
            alerts=tuple(
                resolve_receiver(
                    receiver,
                    env=env,
                    index=sum(1 for r in spec.alerts[:i] if r.type == receiver.type),
                    line=self.lines.line_of(("environments", env, "alerts", i)),
                )
                for i, receiver in enumerate(spec.alerts)
            ),
        )

    def _services(self) -> Iterator[tuple[str, Service]]:
        yield from self.model.services.items()

    def _resolve_service(self, name: str, svc: Service, env: str) -> ResolvedService:
        base = ("services", name)
        override = svc.overrides.get(env)
        over = ("services", name, "overrides", env)
        env_vars: dict[str, ResolvedVar] = {}
        for key, entry in svc.env.items():
            env_vars[key] = _var(key, entry, (), self.lines.line_of((*base, "env", key)), env)
        secrets = {
            key: ResolvedSecret(
                name=key,
                secret=_expand(ref.secret, env) or "",
                version=ref.version,
                rules=_secret_rules(ref.rules),
                line=self.lines.line_of((*base, "secrets", key)),
            )
            for key, ref in svc.secrets.items()
        }
        image, command, workdir, health = svc.image, svc.command, svc.workdir, svc.health
        jwt = svc.jwt_secret
        jwt_path: tuple[str, ...] = (*base, "jwt_secret")
        public = svc.public
        analysis = svc.analysis
        monitor = svc.monitor
        if override is not None:
            for key, entry in override.env.items():
                previous = env_vars.get(key)
                inherited = previous.rules if previous else ()
                line = self.lines.line_of((*over, "env", key))
                env_vars[key] = _var(key, entry, inherited, line, env)
            for key, patch in override.secrets.items():
                line = self.lines.line_of((*over, "secrets", key))
                old = secrets.get(key)
                if old is None and patch.secret is None:
                    raise self.error(
                        f"override of secret '{key}' has no 'secret' and the service has no "
                        "such secret to inherit from",
                        (*over, "secrets", key),
                        "add `secret: NAME` or declare the secret under the service",
                    )
                secrets[key] = ResolvedSecret(
                    name=key,
                    secret=_expand(patch.secret, env) or (old.secret if old else ""),
                    version=patch.version or (old.version if old else "latest"),
                    rules=_secret_rules(patch.rules)
                    if patch.rules is not None
                    else old.rules
                    if old
                    else _secret_rules([]),
                    line=line,
                )
            image = override.image or image
            command = override.command or command
            workdir = override.workdir or workdir
            health = override.health or health
            analysis = override.analysis or analysis
            monitor = override.monitor or monitor
            if override.jwt_secret is not None:
                jwt, jwt_path = override.jwt_secret, (*over, "jwt_secret")
            if override.public is not None:
                public = override.public
        # `differs_from: dev` declared for every environment means nothing in dev itself
        env_vars = {k: _drop_self(v, env) for k, v in env_vars.items()}
        secrets = {k: _drop_self(v, env) for k, v in secrets.items()}
        workdir_path = None
        if workdir:
            workdir_path = (self.path.parent / (_expand(workdir, env) or "")).resolve()
        return ResolvedService(
            name=name,
            env_name=env,
            image=_expand(image, env),
            command=tuple(_expand(part, env) or "" for part in command) if command else None,
            workdir=workdir_path,
            health=ResolvedHealth(
                path=_expand(health.path, env) or "/health",
                expect_status=health.expect_status,
                timeout=health.timeout,
                expect_json=dict(health.expect_json),
                max_latency=health.max_latency,
                consecutive=health.consecutive,
                interval=health.interval,
                verify_timeout=health.verify_timeout,
                startup=ResolvedStartup(
                    initial_delay=health.startup.initial_delay,
                    period=health.startup.period,
                    timeout=health.startup.timeout,
                    failure_threshold=health.startup.failure_threshold,
                ),
                cold_start=health.cold_start,
            ),
            env=env_vars,
            secrets=secrets,
            line=self.lines.line_of(base),
            jwt_secret=None
            if jwt is None
            else ResolvedJwtSecret(
                names=tuple(_expand_name(n, env) for n in jwt.names),
                algorithm=jwt.algorithm,
                line=self.lines.line_of(jwt_path),
            ),
            public=public,
            analysis=ResolvedAnalysis(
                max_error_rate=analysis.max_error_rate,
                max_p95_latency=analysis.max_p95_latency,
                min_requests=analysis.min_requests,
                step_seconds=analysis.step_seconds,
                require_traffic=analysis.require_traffic,
            ),
            monitor=resolve_monitor(monitor, strict=self.model.environments[env].strict),
        )


def _drop_self(item: _Item, env: str) -> _Item:
    kept = tuple(r for r in item.rules if not (RULES[r.name].refers_to == "env" and r.arg == env))
    return item if len(kept) == len(item.rules) else replace(item, rules=kept)


def _expand(text: str | None, env: str) -> str | None:
    return None if text is None else text.replace("{env}", env)


def _expand_name(template: str, env: str) -> str:
    """A variable name: ``{ENV}`` is the environment upper-cased (``-`` as ``_``)."""
    return template.replace("{ENV}", env.upper().replace("-", "_")).replace("{env}", env)


def _var(
    key: str, entry: str | EnvSpec, inherited: tuple[RuleRef, ...], line: int | None, env: str
) -> ResolvedVar:
    if isinstance(entry, EnvSpec):
        return ResolvedVar(key, _expand(entry.value, env) or "", tuple(entry.rules), line)
    return ResolvedVar(key, _expand(entry, env) or "", inherited, line)


def _secret_rules(rules: list[RuleRef]) -> tuple[RuleRef, ...]:
    named = {ref.name for ref in rules}
    kept = tuple(
        ref for ref in rules if not (ref.name in _SECRET_DEFAULT_RULES and ref.arg is False)
    )
    defaults = tuple(RuleRef(name) for name in _SECRET_DEFAULT_RULES if name not in named)
    return kept + defaults


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ManifestError(
            "manifest not found",
            file=str(path),
            hint="pass -f FILE, or run from the folder that holds rollsafe.yaml",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(
            f"cannot read the manifest ({exc.__class__.__name__}: {exc})",
            file=str(path),
            hint="check the path and its permissions; the file must be UTF-8 text",
        ) from exc


def load_manifest(path: str | Path = DEFAULT_MANIFEST) -> LoadedManifest:
    """Read and validate a manifest. Raises ``ManifestError`` (exit 2) with file:line."""
    file = Path(path)
    text = _read(file)
    try:
        data, lines = load_yaml(text)
    except YamlSyntaxError as exc:
        raise ManifestError(
            f"not valid YAML: {exc}",
            file=str(file),
            line=exc.line,
            hint="check indentation, quotes and brackets around this line",
        ) from exc
    if not isinstance(data, dict):
        raise ManifestError(
            "the manifest must be a mapping with version, project, environments and services",
            file=str(file),
            line=1,
            hint="start from examples/rollsafe.yaml",
        )
    try:
        model = Manifest.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc, data, str(file), lines) from None
    loaded = LoadedManifest(file, model, lines)
    _check_semantics(loaded, data)
    return loaded


def _check_semantics(loaded: LoadedManifest, data: dict[str, Any]) -> None:
    """What the schema cannot say: names, references between keys, environments."""
    problems = list(_semantic_problems(loaded))
    if problems:
        first, *rest = sorted(problems, key=lambda p: p.line or 0)
        first.more = tuple(rest)
        raise first


def _state_problems(loaded: LoadedManifest) -> Iterator[ManifestError]:
    """A ``state:`` URL carrying a password: the manifest is committed, a password is not.
    The message never repeats the value."""
    from rollsafe.state.spec import password_in

    if loaded.model.state is not None and password_in(loaded.model.state):
        yield loaded.error(
            "the state URL holds a password; a manifest is committed, a password must not be",
            ("state",),
            "remove it from the URL and give it through PGPASSWORD, ~/.pgpass or the "
            "ROLLSAFE_STATE_PASSWORD secret (see docs/state.md); then change that password",
        )


def _semantic_problems(loaded: LoadedManifest) -> Iterator[ManifestError]:
    model = loaded.model
    envs = set(model.environments)
    yield from _state_problems(loaded)
    for env in model.environments:
        if not _NAME.match(env):
            yield loaded.error(
                f"environment name '{env}' is not valid",
                ("environments", env),
                "use lowercase letters, digits and hyphens, starting with a letter",
            )
    for name, svc in model.services.items():
        base = ("services", name)
        if not _NAME.match(name) or len(name) > 49:
            yield loaded.error(
                f"service name '{name}' is not a valid Cloud Run service name",
                base,
                "use up to 49 lowercase letters, digits and hyphens, starting with a letter",
            )
        for env in svc.overrides:
            if env not in envs:
                close = difflib.get_close_matches(env, list(envs), n=1)
                yield loaded.error(
                    f"override for unknown environment '{env}'",
                    (*base, "overrides", env),
                    (f"did you mean '{close[0]}'? " if close else "")
                    + f"environments: {', '.join(sorted(envs))}",
                )
        yield from _key_problems(loaded, name, svc)
        for env in envs:
            yield from _reference_problems(loaded, name, svc, env, envs)


def _key_problems(loaded: LoadedManifest, name: str, svc: Service) -> Iterator[ManifestError]:
    base = ("services", name)
    places: list[tuple[tuple[str, ...], Mapping[str, object]]] = [
        ((*base, "env"), svc.env),
        ((*base, "secrets"), svc.secrets),
    ]
    for env, override in svc.overrides.items():
        places += [
            ((*base, "overrides", env, "env"), override.env),
            ((*base, "overrides", env, "secrets"), override.secrets),
        ]
    for where, mapping in places:
        for key in mapping:
            if not _ENV_VAR.match(key):
                yield loaded.error(
                    f"'{key}' is not a valid environment variable name",
                    (*where, key),
                    "use letters, digits and underscores, not starting with a digit",
                )
            elif key in _RESERVED:
                yield loaded.error(
                    f"'{key}' is set by Cloud Run itself and cannot be declared",
                    (*where, key),
                    f"remove it; reserved names: {', '.join(sorted(_RESERVED))}",
                )
    for key in set(svc.env) & set(svc.secrets):
        yield loaded.error(
            f"'{key}' is declared both as a plain value and as a secret",
            (*base, "secrets", key),
            "keep one of the two; secrets belong under `secrets:`",
        )


def _reference_problems(
    loaded: LoadedManifest, name: str, svc: Service, env: str, envs: set[str]
) -> Iterator[ManifestError]:
    resolved = loaded._resolve_service(name, svc, env)
    keys = set(resolved.env) | set(resolved.secrets)
    items: list[tuple[str, str, tuple[RuleRef, ...], int | None]] = [
        ("env", k, v.rules, v.line) for k, v in resolved.env.items()
    ]
    items += [("secrets", k, v.rules, v.line) for k, v in resolved.secrets.items()]
    for section, key, rules, line in items:
        for ref in rules:
            target = RULES[ref.name].refers_to
            path = ("services", name, section, key)
            if target == "var" and ref.arg not in keys:
                close = difflib.get_close_matches(str(ref.arg), sorted(keys), n=1)
                yield ManifestError(
                    f"rule {ref.name} names '{ref.arg}', which service '{name}' does not "
                    f"declare in environment '{env}'",
                    file=str(loaded.path),
                    line=line,
                    key_path=format_key_path(path),
                    hint=(f"did you mean '{close[0]}'? " if close else "")
                    + "declare it under env: or secrets:",
                )
            elif target == "env" and ref.arg not in envs:
                yield ManifestError(
                    f"rule {ref.name} names environment '{ref.arg}', which is not declared",
                    file=str(loaded.path),
                    line=line,
                    key_path=format_key_path(path),
                    hint=f"environments: {', '.join(sorted(envs))}",
                )
        if section == "secrets":
            secret = resolved.secrets[key].secret
            if not _SECRET_ID.match(secret):
                yield ManifestError(
                    f"secret name '{secret}' is not a valid Secret Manager secret id",
                    file=str(loaded.path),
                    line=line,
                    key_path=format_key_path(("services", name, "secrets", key, "secret")),
                    hint="use up to 255 letters, digits, hyphens and underscores",
                )
    yield from _jwt_secret_problems(loaded, name, resolved, keys, env)


def _jwt_secret_problems(
    loaded: LoadedManifest, name: str, resolved: ResolvedService, keys: set[str], env: str
) -> Iterator[ManifestError]:
    jwt = resolved.jwt_secret
    if jwt is None:
        return
    path = format_key_path(("services", name, "jwt_secret", "names"))
    for var in jwt.names:
        if not _ENV_VAR.match(var):
            yield ManifestError(
                f"jwt_secret name '{var}' is not a valid environment variable name",
                file=str(loaded.path),
                line=jwt.line,
                key_path=path,
                hint="use letters, digits and underscores; {ENV} expands to the environment",
            )
    if not keys & set(jwt.names):
        yield ManifestError(
            f"jwt_secret names {', '.join(jwt.names)}, none of which service '{name}' "
            f"declares in environment '{env}'",
            file=str(loaded.path),
            line=jwt.line,
            key_path=path,
            hint="map the JWT signing secret under secrets: with one of these names",
        )
