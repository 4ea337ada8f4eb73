"""What ``rollsafe secret`` does, apart from printing: set, rotate, list, versions, states.

Every function takes the environment (for the manifest's rules and references) and a store;
none returns or raises anything that holds a value. A value handed to ``set_secret`` is
judged by the rules of every key that uses the secret before it is written: in a strict
environment a failure refuses the write, elsewhere it is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rollsafe.errors import RollsafeError, UsageError
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.rules import RuleContext, merge_failures, run_rules
from rollsafe.secrets._generate import SKIPPED, RuleUse, generate_value
from rollsafe.stores import (
    SecretNotFoundError,
    SecretStore,
    SecretVersionInfo,
    VersionState,
    VersionUnavailableError,
    WritableSecretStore,
    latest_version,
)

__all__ = [
    "MANAGED_LABELS",
    "SecretRefusedError",
    "SecretStatus",
    "WriteResult",
    "change_state",
    "expand",
    "manifest_secrets",
    "read_value",
    "rotate_secret",
    "rule_uses",
    "secret_statuses",
    "set_secret",
    "versions_of",
    "writable",
]

#: labels of a secret that ``rollsafe secret`` creates
MANAGED_LABELS = {"managed-by": "rollsafe"}


class SecretRefusedError(RollsafeError):
    """A value was refused (empty, or failing a strict environment's rules); nothing written."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A version written: its number, whether the secret was created, warnings to show."""

    secret: str
    version: int
    created: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SecretStatus:
    """A manifest secret of the environment and what the store holds for it."""

    secret: str
    used_by: tuple[str, ...]
    exists: bool
    latest: int | None = None
    latest_state: str | None = None
    versions: int = 0
    enabled: int = 0
    problems: tuple[str, ...] = field(default_factory=tuple)


def expand(env: ResolvedEnvironment, name: str) -> str:
    """``service-secret-{env}`` -> ``service-secret-dev``: NAME may be written as in the
    manifest."""
    return name.replace("{env}", env.name)


def manifest_secrets(env: ResolvedEnvironment) -> dict[str, list[tuple[str, str, str]]]:
    """Secret name -> the (service, key, version) that use it, in manifest order."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    for service in env.services.values():
        for ref in service.secrets.values():
            found.setdefault(ref.secret, []).append((service.name, ref.name, ref.version))
    return found


def rule_uses(env: ResolvedEnvironment, secret: str) -> list[RuleUse]:
    """Every key of ``env`` that reads ``secret``, with its rules and rule context."""
    uses = []
    for service in env.services.values():
        for ref in service.secrets.values():
            if ref.secret != secret:
                continue
            context = RuleContext(
                env=env.name,
                strict=env.strict,
                key=ref.name,
                is_secret=True,
                values=service.plain_values(),
            )
            uses.append(RuleUse(service.name, ref.name, ref.rules, context))
    return uses


def writable(store: SecretStore) -> WritableSecretStore:
    """The store if ``rollsafe secret`` can write to it, else a usage error."""
    if isinstance(store, WritableSecretStore):
        return store
    raise UsageError(
        f"the secret store {store.description} cannot be written by rollsafe secret",
        hint="remove the environment's `store:` to use Secret Manager (the emulator on"
        " platform local), or edit that store directly",
    )


def read_value(data: bytes, *, keep_newline: bool = False) -> bytes:
    """The payload from stdin or a file: one trailing newline (``\\n`` or ``\\r\\n``), as
    ``echo`` and editors add, is dropped unless ``keep_newline``; an empty value is refused."""
    if not keep_newline:
        if data.endswith(b"\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n"):
            data = data[:-1]
    if not data:
        raise SecretRefusedError(
            "the value is empty; nothing was written",
            hint='pipe the value in (printf %s "$VALUE" | rollsafe secret set ...)'
            " or pass --from-file PATH",
        )
    return data


def _rule_failures(value: bytes, uses: list[RuleUse]) -> list[str]:
    text = value.decode("utf-8", errors="replace")
    failed = []
    for use in uses:
        rules = [ref for ref in use.rules if ref.name not in SKIPPED]
        for failure in merge_failures(run_rules(text, rules, use.context)):
            failed.append(f"{use.service}.{use.key}: {failure.rule}: {failure.message}")
    return failed


def _pin_warnings(env: ResolvedEnvironment, secret: str) -> list[str]:
    return [
        f"{service}.{key} pins version {version}; the new version is used once the manifest says so"
        for service, key, version in manifest_secrets(env).get(secret, [])
        if version != "latest"
    ]


def _write(
    store: WritableSecretStore,
    env: ResolvedEnvironment,
    secret: str,
    value: bytes,
    notes: list[str],
) -> WriteResult:
    created = store.create_secret(secret, labels=MANAGED_LABELS)
    version = store.add_version(secret, value)
    return WriteResult(secret, version, created, tuple(notes + _pin_warnings(env, secret)))


def set_secret(
    store: WritableSecretStore, env: ResolvedEnvironment, name: str, value: bytes
) -> WriteResult:
    """Add ``value`` as the newest version of secret ``name`` (created if missing)."""
    secret = expand(env, name)
    uses = rule_uses(env, secret)
    notes: list[str] = []
    if not uses:
        notes.append(
            f"secret '{secret}' is not referenced by the manifest in environment '{env.name}'"
        )
    failures = _rule_failures(value, uses)
    if failures and env.strict:
        raise SecretRefusedError(
            f"the value fails the rules of environment '{env.name}' (strict); nothing was"
            f" written: {'; '.join(failures)}",
            hint=f"use a stronger value, or let rollsafe make one: rollsafe secret rotate"
            f" {secret} --env {env.name}",
        )
    notes.extend(f"rule failed: {failure}" for failure in failures)
    return _write(store, env, secret, value, notes)


def rotate_secret(store: WritableSecretStore, env: ResolvedEnvironment, name: str) -> WriteResult:
    """Add a fresh random version that passes the rules of every key using the secret."""
    secret = expand(env, name)
    uses = rule_uses(env, secret)
    if not uses:
        raise UsageError(
            f"secret '{secret}' is not referenced by the manifest in environment '{env.name}',"
            " so there are no rules to generate a value for",
            hint="rotate a secret the manifest maps, or set this one: rollsafe secret set",
        )
    value = generate_value(secret, uses).encode()
    return _write(store, env, secret, value, [])


def _status(store: SecretStore, secret: str, used_by: tuple[str, ...]) -> SecretStatus:
    try:
        versions = store.list_versions(secret)
    except SecretNotFoundError:
        return SecretStatus(secret, used_by, exists=False, problems=("missing",))
    latest = latest_version(versions)
    enabled = sum(1 for v in versions if v.state is VersionState.ENABLED)
    problems = []
    if latest is None:
        problems.append("no versions")
    elif latest.state is not VersionState.ENABLED:
        problems.append(f"latest version is {latest.state.value.lower()}")
    return SecretStatus(
        secret,
        used_by,
        exists=True,
        latest=latest.version if latest else None,
        latest_state=latest.state.value if latest else None,
        versions=len(versions),
        enabled=enabled,
        problems=tuple(problems),
    )


def secret_statuses(
    store: SecretStore, env: ResolvedEnvironment
) -> tuple[list[SecretStatus], list[str]]:
    """The manifest's secrets of ``env`` with their state, and the store's other secrets."""
    mapped = manifest_secrets(env)
    statuses = [
        _status(
            store,
            secret,
            tuple(
                f"{svc}.{key}" + ("" if ver == "latest" else f"@{ver}") for svc, key, ver in uses
            ),
        )
        for secret, uses in mapped.items()
    ]
    others = [name for name in store.list_secrets() if name not in mapped]
    return statuses, others


def versions_of(store: SecretStore, env: ResolvedEnvironment, name: str) -> list[SecretVersionInfo]:
    """Every version of a secret, oldest first (metadata only)."""
    return store.list_versions(expand(env, name))


def change_state(
    store: WritableSecretStore,
    env: ResolvedEnvironment,
    name: str,
    version: int,
    state: VersionState,
) -> tuple[str, ...]:
    """Enable, disable or destroy a version; returns warnings about keys it breaks."""
    secret = expand(env, name)
    before = store.list_versions(secret)
    latest = latest_version(before)
    try:
        store.set_state(secret, version, state)
    except VersionUnavailableError as exc:
        # a destroyed version is refused, not a usage error: the command was well formed
        raise SecretRefusedError(exc.message, hint="add a new version instead") from None
    if state is VersionState.ENABLED:
        return ()
    warnings = []
    for service, key, pinned in manifest_secrets(env).get(secret, []):
        uses_it = pinned == str(version) or (
            pinned == "latest" and latest is not None and latest.version == version
        )
        if uses_it:
            warnings.append(
                f"{service}.{key} reads version {version} ({pinned}); new instances and the"
                " next deploy will fail to read it"
            )
    return tuple(warnings)
