"""Secret stores behind one small interface.

``SecretManagerStore`` loads on first use: importing ``rollsafe.stores`` (as the start-up
guard inside a service does) must not import the google-cloud packages.
"""

from typing import TYPE_CHECKING, Any

from rollsafe.stores._spec import open_store
from rollsafe.stores.base import (
    InvalidSecretError,
    SecretNotFoundError,
    SecretStore,
    SecretValue,
    SecretVersionInfo,
    VersionNotFoundError,
    VersionState,
    VersionUnavailableError,
    WritableSecretStore,
    latest_version,
)
from rollsafe.stores.dotenv import DotenvSecretStore
from rollsafe.stores.memory import InMemorySecretStore

__all__ = [
    "DotenvSecretStore",
    "InMemorySecretStore",
    "InvalidSecretError",
    "SecretManagerStore",
    "SecretNotFoundError",
    "SecretStore",
    "SecretValue",
    "SecretVersionInfo",
    "VersionNotFoundError",
    "VersionState",
    "VersionUnavailableError",
    "WritableSecretStore",
    "latest_version",
    "open_store",
]

if TYPE_CHECKING:
    from rollsafe.stores.secretmanager import SecretManagerStore


def __getattr__(name: str) -> Any:
    if name == "SecretManagerStore":
        from rollsafe.stores.secretmanager import SecretManagerStore

        return SecretManagerStore
    raise AttributeError(f"module 'rollsafe.stores' has no attribute {name!r}")
