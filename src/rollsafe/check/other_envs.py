"""Digests of the same key in other environments, for ``differs_from`` (never the values)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from rollsafe.errors import RollsafeError
from rollsafe.manifest import LoadedManifest, ResolvedEnvironment
from rollsafe.stores import SecretStore

__all__ = ["OtherEnvironmentDigests"]

StoreOpener = Callable[[ResolvedEnvironment], SecretStore | None]


def _default_opener(env: ResolvedEnvironment) -> SecretStore | None:
    """The environment's own store, as ``rollsafe check --env`` of it would open it: its
    ``store:``, else Secret Manager of its project (the emulator's on ``local``)."""
    from rollsafe._environments import store_for

    return store_for(env)


class OtherEnvironmentDigests:
    """Callable ``(env, service, key) -> sha256 hex | None``; opens each store once.

    ``None`` means the value could not be read there (store error, missing key); the rule
    reports that it could not compare.
    """

    def __init__(self, manifest: LoadedManifest, opener: StoreOpener | None = None) -> None:
        self._manifest = manifest
        self._opener = opener or _default_opener
        self._envs: dict[str, tuple[ResolvedEnvironment, SecretStore | None]] = {}
        self._cache: dict[tuple[str, str, str], str | None] = {}

    def __call__(self, env: str, service: str, key: str) -> str | None:
        cache_key = (env, service, key)
        if cache_key not in self._cache:
            self._cache[cache_key] = self._digest(env, service, key)
        return self._cache[cache_key]

    def _environment(self, env: str) -> tuple[ResolvedEnvironment, SecretStore | None]:
        if env not in self._envs:
            resolved = self._manifest.resolve(env)
            try:
                store = self._opener(resolved)
            except RollsafeError:
                store = None
            self._envs[env] = (resolved, store)
        return self._envs[env]

    def _digest(self, env: str, service: str, key: str) -> str | None:
        resolved, store = self._environment(env)
        svc = resolved.services.get(service)
        if svc is None:
            return None
        if key in svc.env:
            return hashlib.sha256(svc.env[key].value.encode()).hexdigest()
        ref = svc.secrets.get(key)
        if ref is None or store is None:
            return None
        try:
            return store.access(ref.secret, ref.version).sha256()
        except RollsafeError:
            return None

    def close(self) -> None:
        """Close every store opened."""
        for _, store in self._envs.values():
            if store is not None:
                store.close()
