"""An in-memory secret store: the twin used by tests and benchmarks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from rollsafe.stores.base import (
    SecretNotFoundError,
    SecretStore,
    SecretValue,
    SecretVersionInfo,
    VersionNotFoundError,
    VersionState,
    VersionUnavailableError,
    latest_version,
)

__all__ = ["InMemorySecretStore"]


class InMemorySecretStore(SecretStore):
    """Secrets and versions held in a dict; follows Secret Manager's version semantics."""

    description = "memory"

    def __init__(self, secrets: dict[str, str | list[str]] | None = None) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, list[tuple[SecretVersionInfo, SecretValue]]] = {}
        for name, values in (secrets or {}).items():
            self.create_secret(name)
            for value in [values] if isinstance(values, str) else values:
                self.add_version(name, value)

    # -- writing (not part of the interface: a store for tests and local use) --
    def create_secret(self, name: str) -> None:
        """Create an empty secret (no-op if it exists)."""
        with self._lock:
            self._versions.setdefault(name, [])

    def add_version(self, name: str, value: str | bytes) -> int:
        """Add a version (creating the secret if needed) and return its number."""
        with self._lock:
            versions = self._versions.setdefault(name, [])
            number = len(versions) + 1
            info = SecretVersionInfo(name, number, VersionState.ENABLED, datetime.now(UTC))
            versions.append((info, SecretValue(value)))
            return number

    def set_state(self, name: str, version: int, state: VersionState) -> None:
        """Enable, disable or destroy a version."""
        with self._lock:
            versions = self._get(name)
            if not 1 <= version <= len(versions):
                raise VersionNotFoundError(f"secret '{name}' has no version {version}")
            info, value = versions[version - 1]
            if state is VersionState.DESTROYED:
                value = SecretValue(b"")
            new = SecretVersionInfo(info.secret, info.version, state, info.create_time)
            versions[version - 1] = (new, value)

    # -- the interface --
    def list_secrets(self) -> list[str]:
        with self._lock:
            return sorted(self._versions)

    def list_versions(self, secret: str) -> list[SecretVersionInfo]:
        with self._lock:
            return [info for info, _ in self._get(secret)]

    def access(self, secret: str, version: str = "latest") -> SecretValue:
        with self._lock:
            versions = self._get(secret)
            if version == "latest":
                latest = latest_version([info for info, _ in versions])
                if latest is None:
                    raise VersionNotFoundError(f"secret '{secret}' has no versions")
                number = latest.version
            elif version.isdigit() and 1 <= int(version) <= len(versions):
                number = int(version)
            else:
                raise VersionNotFoundError(f"secret '{secret}' has no version {version}")
            info, value = versions[number - 1]
            if info.state is not VersionState.ENABLED:
                raise VersionUnavailableError(
                    f"version {number} of secret '{secret}' is {info.state.value.lower()}",
                    state=info.state,
                )
            return value

    def _get(self, secret: str) -> list[tuple[SecretVersionInfo, SecretValue]]:
        try:
            return self._versions[secret]
        except KeyError:
            raise SecretNotFoundError(
                f"secret '{secret}' not found in {self.description}"
            ) from None
