"""An in-memory secret store: the twin used by tests and benchmarks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from rollsafe.stores.base import (
    MAX_PAYLOAD,
    SECRET_ID,
    InvalidSecretError,
    SecretNotFoundError,
    SecretValue,
    SecretVersionInfo,
    VersionNotFoundError,
    VersionState,
    VersionUnavailableError,
    WritableSecretStore,
    latest_version,
)

__all__ = ["InMemorySecretStore"]


class InMemorySecretStore(WritableSecretStore):
    """Secrets and versions held in a dict; follows Secret Manager's version semantics.

    It refuses what Secret Manager (and so the emulator) refuses: ids outside
    ``[A-Za-z0-9_-]{1,255}``, payloads over 64 KiB, any change to a destroyed version.
    """

    description = "memory"

    def __init__(self, secrets: dict[str, str | list[str]] | None = None) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, list[tuple[SecretVersionInfo, SecretValue]]] = {}
        self._labels: dict[str, dict[str, str]] = {}
        for name, values in (secrets or {}).items():
            self.create_secret(name)
            for value in [values] if isinstance(values, str) else values:
                self.add_version(name, value)

    # -- writing --
    def create_secret(self, name: str, *, labels: dict[str, str] | None = None) -> bool:
        """Create an empty secret; False (and no change) if it exists."""
        _check_name(name)
        with self._lock:
            if name in self._versions:
                return False
            self._versions[name] = []
            self._labels[name] = dict(labels or {})
            return True

    def add_version(self, name: str, value: str | bytes) -> int:
        """Add a version (creating the secret if needed) and return its number."""
        _check_name(name)
        payload = SecretValue(value)
        if len(payload) > MAX_PAYLOAD:
            raise InvalidSecretError(
                f"a payload of {len(payload)} bytes exceeds Secret Manager's limit of"
                f" {MAX_PAYLOAD} bytes"
            )
        with self._lock:
            versions = self._versions.setdefault(name, [])
            self._labels.setdefault(name, {})
            number = len(versions) + 1
            info = SecretVersionInfo(name, number, VersionState.ENABLED, datetime.now(UTC))
            versions.append((info, payload))
            return number

    def set_state(self, name: str, version: int, state: VersionState) -> None:
        """Enable, disable or destroy a version; a destroyed one can no longer change."""
        with self._lock:
            versions = self._get(name)
            if not 1 <= version <= len(versions):
                raise VersionNotFoundError(f"secret '{name}' has no version {version}")
            info, value = versions[version - 1]
            if info.state is VersionState.DESTROYED:
                raise VersionUnavailableError(
                    f"version {version} of secret '{name}' in {self.description} is destroyed",
                    state=VersionState.DESTROYED,
                )
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
                    # Secret Manager words it so, and the adapter maps it to not-found
                    raise SecretNotFoundError(
                        f"secret '{secret}' not found or has no versions in {self.description}"
                    )
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


def _check_name(name: str) -> None:
    if not SECRET_ID.match(name):
        raise InvalidSecretError(
            f"'{name}' is not a valid secret name",
            hint="Secret Manager ids are 1-255 letters, digits, '-' and '_'",
        )
