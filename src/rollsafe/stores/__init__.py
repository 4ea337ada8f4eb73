"""Secret stores behind one small interface."""

from rollsafe.stores._spec import open_store
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
from rollsafe.stores.dotenv import DotenvSecretStore
from rollsafe.stores.memory import InMemorySecretStore

__all__ = [
    "DotenvSecretStore",
    "InMemorySecretStore",
    "SecretNotFoundError",
    "SecretStore",
    "SecretValue",
    "SecretVersionInfo",
    "VersionNotFoundError",
    "VersionState",
    "VersionUnavailableError",
    "latest_version",
    "open_store",
]
