"""Resolving secret references against a store in a batch: one listing, then one per secret."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rollsafe.check.report import CheckStats
from rollsafe.stores import SecretStore, SecretVersionInfo, VersionState, latest_version

__all__ = ["ACCESS_WORKERS", "ResolvedReference", "resolve_references"]

#: how many store calls run at once (Secret Manager allows 600 reads/min per project)
ACCESS_WORKERS = 8

_CREATE_HINT = (
    "create it (gcloud secrets create {name} --data-file=-) or, for a dotenv store, "
    "add a `{name}=...` line"
)


@dataclass(frozen=True, slots=True)
class ResolvedReference:
    """What ``secret:version`` points at in the store.

    ``info`` is the version (``latest`` resolved to its number) or ``None`` if there is none;
    ``problem`` is ``(rule, message, hint)`` when the reference cannot be used as it stands.
    """

    secret: str
    version: str
    info: SecretVersionInfo | None
    problem: tuple[str, str, str] | None = None

    @property
    def usable(self) -> bool:
        return self.info is not None and self.problem is None

    @property
    def source(self) -> str:
        return self.info.source if self.info else f"sm://{self.secret}"


def _resolve_one(
    store: SecretStore,
    name: str,
    version: str,
    existing: set[str],
    listed: dict[str, list[SecretVersionInfo]],
) -> ResolvedReference:
    if name not in existing:
        message = f"secret '{name}' not found in {store.description}"
        problem = ("required", message, _CREATE_HINT.format(name=name))
        return ResolvedReference(name, version, None, problem)
    versions = listed[name]
    if version == "latest":
        info = latest_version(versions)
    else:
        info = next((v for v in versions if str(v.version) == version), None)
    if info is None:
        what = "has no versions" if version == "latest" else f"has no version {version}"
        hint = f"add a version: gcloud secrets versions add {name} --data-file=-"
        return ResolvedReference(name, version, None, ("version", f"secret '{name}' {what}", hint))
    if info.state is not VersionState.ENABLED:
        state = info.state.value.lower()
        hint = (
            f"enable it (gcloud secrets versions enable {info.version} --secret={name}) "
            "or pin an enabled version"
        )
        message = f"version {info.version} of secret '{name}' is {state}"
        return ResolvedReference(name, version, info, ("version", message, hint))
    return ResolvedReference(name, version, info)


def resolve_references(
    store: SecretStore,
    refs: Iterable[tuple[str, str]],
    stats: CheckStats | None = None,
) -> dict[tuple[str, str], ResolvedReference]:
    """Resolve every ``(secret, version)``: list the store once, each secret's versions once.

    A missing secret, an unknown version and a disabled or destroyed version come back as a
    ``problem``; an unreachable store raises ``StoreUnavailableError``.
    """
    wanted = set(refs)
    if not wanted:
        return {}
    stats = stats if stats is not None else CheckStats()
    existing = set(store.list_secrets())
    stats.secrets_listed += 1
    names = sorted({name for name, _ in wanted if name in existing})
    with ThreadPoolExecutor(ACCESS_WORKERS) as pool:
        listed = dict(zip(names, pool.map(store.list_versions, names), strict=True))
    stats.versions_listed += len(names)
    return {ref: _resolve_one(store, *ref, existing, listed) for ref in wanted}
