"""Secret Manager as a secret store, through the official ``google-cloud-secret-manager``.

``SecretManagerStore("my-project")`` reads Google's Secret Manager with Application Default
Credentials; ``SecretManagerStore("my-project", endpoint="http://127.0.0.1:PORT")`` reads the
emulator (REST transport, anonymous credentials). The client library is imported when the
first call needs it, so importing this module costs nothing.

Vendor errors become rollsafe errors in one place, ``_translate``: a missing secret or
version, a disabled or destroyed version, and a store that cannot be reached (refused,
timed out, no credentials, no permission) which fails closed as ``StoreUnavailableError``.
Calls time out after a few seconds and retry only briefly, so a check never hangs on a
store it cannot reach.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rollsafe._gcp import client_kwargs, import_google
from rollsafe.errors import RollsafeError, StoreError, StoreUnavailableError
from rollsafe.stores.base import (
    InvalidSecretError,
    SecretNotFoundError,
    SecretValue,
    SecretVersionInfo,
    VersionNotFoundError,
    VersionState,
    VersionUnavailableError,
    WritableSecretStore,
)

__all__ = ["DEFAULT_TIMEOUT", "SecretManagerStore"]

#: seconds for one call, retries included
DEFAULT_TIMEOUT = 5.0

_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_VERSION_ID = re.compile(r"^(latest|[0-9]+|[A-Za-z0-9_-]{1,63})$")
# "Secret Version [projects/P/secrets/S/versions/3] is in DISABLED state." (REST and gRPC)
_STATE_MESSAGE = re.compile(r"versions/(?P<number>\d+)\] is in (?P<state>[A-Z_]+) state")
_STATES = {state.value: state for state in VersionState}
_ACCESS_HINT = "grant the caller roles/secretmanager.secretAccessor on the secret or project"
_CREDENTIALS_HINT = (
    "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
)


_PAGE_SIZE = 25000


class SecretManagerStore(WritableSecretStore):
    """The secrets of one Google Cloud project (or of the emulator, given its endpoint).

    It writes too (``WritableSecretStore``: ``create_secret``, ``add_version``,
    ``set_state``), for ``rollsafe secret``, tests and demos, plus ``delete_secret``.
    """

    def __init__(
        self, project: str, endpoint: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.project = project
        self.endpoint = endpoint
        self.timeout = timeout
        self.description = f"secretmanager:{project}" + (f"@{endpoint}" if endpoint else "")
        self._lock = threading.Lock()
        self._client: Any = None
        self._call: dict[str, Any] = {}

    # -- the interface --
    def list_secrets(self) -> list[str]:
        with self._errors():
            client = self._connect()
            # the largest page Secret Manager allows: one read per 25,000 secrets, not per 25
            request = {"parent": f"projects/{self.project}", "page_size": _PAGE_SIZE}
            pages = client.list_secrets(request=request, **self._call)
            names = [secret.name.rsplit("/", 1)[-1] for secret in pages]
        return sorted(names)

    def list_versions(self, secret: str) -> list[SecretVersionInfo]:
        parent = self._secret_path(secret)
        versions: list[SecretVersionInfo] = []
        with self._errors(secret):
            client = self._connect()
            request = {"parent": parent, "page_size": _PAGE_SIZE}
            pages = client.list_secret_versions(request=request, **self._call)
            for version in pages:
                versions.append(
                    SecretVersionInfo(
                        secret=secret,
                        version=int(version.name.rsplit("/", 1)[-1]),
                        state=_state(version.state.name),
                        create_time=_datetime(version.create_time),
                    )
                )
        # Secret Manager lists newest first; the interface promises oldest first
        return sorted(versions, key=lambda info: info.version)

    def access(self, secret: str, version: str = "latest") -> SecretValue:
        if not _VERSION_ID.match(version):
            raise VersionNotFoundError(
                f"secret '{secret}' has no version '{version}' in {self.description}",
                hint="a version is `latest` or a number",
            )
        name = f"{self._secret_path(secret)}/versions/{version}"
        with self._errors(secret, version):
            response = self._connect().access_secret_version(name=name, **self._call)
        data = bytes(response.payload.data)
        if "data_crc32c" in response.payload:
            crc32c = import_google("google_crc32c")
            if crc32c.value(data) != response.payload.data_crc32c:
                # corrupted in transit: a value we cannot trust is no value (fail closed)
                raise StoreUnavailableError(
                    f"the payload of secret '{secret}' version {version} from"
                    f" {self.description} failed its CRC32C check",
                    hint="retry; if it persists, the store or the network corrupts data",
                )
        return SecretValue(data)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.transport.close()

    # -- writing (not part of the interface) --
    def create_secret(self, name: str, *, labels: dict[str, str] | None = None) -> bool:
        """Create an empty secret with automatic replication; False if it exists."""
        exceptions = import_google("google.api_core.exceptions")
        secret = {"replication": {"automatic": {}}, "labels": dict(labels or {})}
        with self._errors(name):
            try:
                self._connect().create_secret(
                    parent=f"projects/{self.project}",
                    secret_id=self._checked(name, write=True),
                    secret=secret,
                    **self._call,
                )
            except exceptions.Conflict as exc:
                # REST gives the HTTP class (409 Conflict), gRPC the AlreadyExists subclass;
                # a 409 that is not ALREADY_EXISTS (ABORTED) is an error
                if "already exists" not in str(exc):
                    raise
                return False
        return True

    def add_version(self, name: str, value: str | bytes) -> int:
        """Add a version (creating the secret if needed) and return its number.

        The payload goes with its CRC32C, so Secret Manager rejects a corrupted upload.
        """
        data = value.encode() if isinstance(value, str) else bytes(value)
        crc32c = import_google("google_crc32c")
        payload = {"data": data, "data_crc32c": crc32c.value(data)}
        exceptions = import_google("google.api_core.exceptions")
        parent = f"projects/{self.project}/secrets/{self._checked(name, write=True)}"
        with self._errors(name):
            client = self._connect()
            try:
                version = client.add_secret_version(parent=parent, payload=payload, **self._call)
            except exceptions.NotFound:
                self.create_secret(name)
                version = client.add_secret_version(parent=parent, payload=payload, **self._call)
        number: int = int(version.name.rsplit("/", 1)[-1])
        return number

    def set_state(self, name: str, version: int, state: VersionState) -> None:
        """Enable, disable or destroy a version (destroying is final and wipes the payload)."""
        path = f"{self._secret_path(name)}/versions/{version}"
        with self._errors(name, str(version)):
            client = self._connect()
            change = {
                VersionState.ENABLED: client.enable_secret_version,
                VersionState.DISABLED: client.disable_secret_version,
                VersionState.DESTROYED: client.destroy_secret_version,
            }[state]
            change(name=path, **self._call)

    def delete_secret(self, name: str) -> None:
        """Delete a secret and every version of it."""
        with self._errors(name):
            self._connect().delete_secret(name=self._secret_path(name), **self._call)

    # -- plumbing --
    def _connect(self) -> Any:
        """The client, built on first use (importing google-cloud-secret-manager then)."""
        with self._lock:
            if self._client is None:
                secretmanager = import_google("google.cloud.secretmanager_v1")
                retries = import_google("google.api_core.retry")
                exceptions = import_google("google.api_core.exceptions")
                # short: a refused connection fails at once, a silent one within `timeout`;
                # the codes Google's own default retries on (503, 429), for seconds not a minute
                retry = retries.Retry(
                    predicate=retries.if_exception_type(
                        exceptions.ServiceUnavailable, exceptions.TooManyRequests
                    ),
                    initial=0.1,
                    maximum=1.0,
                    multiplier=2.0,
                    timeout=self.timeout,
                )
                self._call = {"retry": retry, "timeout": self.timeout}
                self._client = secretmanager.SecretManagerServiceClient(
                    **client_kwargs(self.endpoint)
                )
            return self._client

    def _secret_path(self, secret: str) -> str:
        return f"projects/{self.project}/secrets/{self._checked(secret)}"

    def _checked(self, secret: str, *, write: bool = False) -> str:
        """The id if Secret Manager allows it; a read of another is not found, a write of
        one is refused (as the twin does)."""
        if not _SECRET_ID.match(secret):
            if write:
                raise InvalidSecretError(
                    f"'{secret}' is not a valid secret name",
                    hint="Secret Manager ids are 1-255 letters, digits, '-' and '_'",
                )
            raise SecretNotFoundError(
                f"secret '{secret}' not found in {self.description}",
                hint="Secret Manager ids are 1-255 letters, digits, '-' and '_'",
            )
        return secret

    @contextmanager
    def _errors(self, secret: str | None = None, version: str | None = None) -> Iterator[None]:
        try:
            yield
        except RollsafeError:
            raise
        except Exception as exc:
            mapped = _translate(exc, self.description, secret, version)
            if mapped is None:
                raise
            raise mapped from exc


def _translate(
    exc: Exception, where: str, secret: str | None, version: str | None
) -> RollsafeError | None:
    """The one place vendor errors become rollsafe errors (``None``: not ours to map).

    Messages name the store, secret and version, never a payload. Against Google over REST a
    FAILED_PRECONDITION arrives as HTTP 400 (``BadRequest``), over gRPC as
    ``FailedPrecondition``; both carry "is in DISABLED state", which is what is matched.
    """
    exceptions = import_google("google.api_core.exceptions")
    auth_exceptions = import_google("google.auth.exceptions")
    message = str(getattr(exc, "message", "") or exc)
    if isinstance(exc, exceptions.NotFound):
        if secret is None:
            return StoreError(f"{where}: not found ({message})")
        if version is not None and "Secret Version [" in message:
            return VersionNotFoundError(f"secret '{secret}' has no version {version} in {where}")
        if version == "latest":
            # Google words both cases alike; telling them apart would cost another call
            return SecretNotFoundError(f"secret '{secret}' not found or has no versions in {where}")
        return SecretNotFoundError(f"secret '{secret}' not found in {where}")
    found = _STATE_MESSAGE.search(message)
    if found and isinstance(exc, exceptions.ClientError):
        state = _state(found["state"])
        label = f"version {found['number']}" + (" (latest)" if version == "latest" else "")
        return VersionUnavailableError(
            f"{label} of secret '{secret}' in {where} is {state.value.lower()}",
            state=state,
            hint="enable it, or add a new version" if state is VersionState.DISABLED else None,
        )
    if isinstance(exc, exceptions.BadRequest):
        # INVALID_ARGUMENT: a payload too large, a bad name; Google's message names no value
        return InvalidSecretError(f"{where} refused the request: {message}")
    if isinstance(exc, exceptions.PermissionDenied | exceptions.Unauthenticated):
        return StoreUnavailableError(f"{where} refused access ({message})", hint=_ACCESS_HINT)
    unreachable = (
        exceptions.ServiceUnavailable,
        exceptions.DeadlineExceeded,
        exceptions.GatewayTimeout,
        exceptions.InternalServerError,
        exceptions.TooManyRequests,
        exceptions.RetryError,
        auth_exceptions.TransportError,
        OSError,  # requests' ConnectionError and Timeout are OSErrors
    )
    if isinstance(exc, unreachable):
        return StoreUnavailableError(
            f"{where} cannot be reached ({type(exc).__name__})",
            hint="check the endpoint and the network; no check can pass without the store",
        )
    if isinstance(exc, auth_exceptions.DefaultCredentialsError | auth_exceptions.RefreshError):
        return StoreUnavailableError(f"{where}: no usable credentials", hint=_CREDENTIALS_HINT)
    if isinstance(exc, exceptions.GoogleAPICallError):
        return StoreError(f"{where} answered {exc.code}: {message}")
    return None


def _state(name: str) -> VersionState:
    # STATE_UNSPECIFIED (never sent in practice) counts as unusable rather than enabled
    return _STATES.get(name, VersionState.DISABLED)


def _datetime(value: datetime) -> datetime:
    """A plain aware datetime (the client returns a nanosecond-carrying subclass)."""
    return datetime.fromtimestamp(value.timestamp(), UTC)
