"""The secret store interfaces: ``SecretStore`` reads (list secrets, list versions, access
one version); ``WritableSecretStore`` also writes (create, add a version, change a state)."""

from __future__ import annotations

import enum
import hashlib
import re
from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime

from rollsafe._adapter import Adapter
from rollsafe.errors import StoreError

__all__ = [
    "SECRET_ID",
    "InvalidSecretError",
    "SecretNotFoundError",
    "SecretStore",
    "SecretValue",
    "SecretVersionInfo",
    "VersionNotFoundError",
    "VersionState",
    "VersionUnavailableError",
    "WritableSecretStore",
    "latest_version",
]

#: a Secret Manager secret id: 1-255 letters, digits, '-' and '_' (every store follows it)
SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")

#: Secret Manager's payload limit (64 KiB), which the twin enforces too
MAX_PAYLOAD = 65536


class VersionState(enum.StrEnum):
    """The state of a secret version, as Secret Manager names it."""

    ENABLED = "ENABLED"
    DISABLED = "DISABLED"
    DESTROYED = "DESTROYED"


@dataclass(frozen=True, slots=True)
class SecretVersionInfo:
    """A version's metadata; never its payload."""

    secret: str
    version: int
    state: VersionState
    create_time: datetime

    @property
    def source(self) -> str:
        """``sm://NAME/versions/N``, the source string of findings."""
        return f"sm://{self.secret}/versions/{self.version}"


class SecretValue:
    """A secret payload that will not show itself.

    ``repr``/``str`` print a redacted marker with the length; ``reveal()`` returns the text
    and is the only way to it. Equality compares digests so values never meet in a message.
    """

    __slots__ = ("_payload",)

    def __init__(self, payload: bytes | str) -> None:
        self._payload = payload.encode() if isinstance(payload, str) else bytes(payload)

    def reveal(self) -> str:
        """The payload as text (undecodable bytes replaced). Handle with care."""
        return self._payload.decode("utf-8", errors="replace")

    def reveal_bytes(self) -> bytes:
        """The raw payload."""
        return self._payload

    def __len__(self) -> int:
        return len(self._payload)

    def sha256(self) -> str:
        """Hex SHA-256 of the payload, for comparisons that must not see the value."""
        return hashlib.sha256(self._payload).hexdigest()

    def __repr__(self) -> str:
        return f"SecretValue(<redacted>, {len(self._payload)} bytes)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other.sha256() == self.sha256()

    def __hash__(self) -> int:
        return hash(self.sha256())

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("SecretValue cannot be pickled")


class SecretNotFoundError(StoreError):
    """The secret does not exist in the store."""


class VersionNotFoundError(StoreError):
    """The secret exists but not that version."""


class InvalidSecretError(StoreError):
    """A write the store refuses: a name Secret Manager does not allow, a payload too large."""


class VersionUnavailableError(StoreError):
    """The version exists but is disabled or destroyed."""

    def __init__(self, message: str, *, state: VersionState, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.state = state


def latest_version(versions: list[SecretVersionInfo]) -> SecretVersionInfo | None:
    """What ``latest`` points at: the most recently created version, whatever its state.

    This is Secret Manager's rule: if that version is disabled, accessing ``latest`` fails
    rather than falling back to an older one.
    """
    return max(versions, key=lambda v: v.version, default=None)


class SecretStore(Adapter):
    """A place secrets live. Adapters: in-memory, dotenv file, Secret Manager.

    Implementations raise ``SecretNotFoundError``, ``VersionNotFoundError``,
    ``VersionUnavailableError``, or ``StoreUnavailableError`` when the store cannot be reached.
    """

    #: a short name for messages (``memory``, ``dotenv:PATH``, ``secretmanager:PROJECT``)
    description: str = "store"

    @abstractmethod
    def list_secrets(self) -> list[str]:
        """Every secret name in the store."""

    @abstractmethod
    def list_versions(self, secret: str) -> list[SecretVersionInfo]:
        """Every version of ``secret``, oldest first."""

    @abstractmethod
    def access(self, secret: str, version: str = "latest") -> SecretValue:
        """The payload of one version (``latest`` or a number)."""


class WritableSecretStore(SecretStore):
    """A secret store that ``rollsafe secret`` can write: Secret Manager and its twin.

    Both refuse alike: an invalid name or a payload over 64 KiB is ``InvalidSecretError``;
    changing a destroyed version is ``VersionUnavailableError`` (state DESTROYED); a missing
    secret or version is ``SecretNotFoundError`` / ``VersionNotFoundError``.
    """

    @abstractmethod
    def create_secret(self, name: str, *, labels: dict[str, str] | None = None) -> bool:
        """Create an empty secret (automatic replication); False if it already existed."""

    @abstractmethod
    def add_version(self, name: str, value: str | bytes) -> int:
        """Add an enabled version (creating the secret if needed); returns its number."""

    @abstractmethod
    def set_state(self, name: str, version: int, state: VersionState) -> None:
        """Enable, disable or destroy a version. Destroying is final and wipes the payload."""
