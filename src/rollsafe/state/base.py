"""The ``StateStore`` interface: the deploy journal, deploy locks and key/value state.

One interface, three backends: ``MemoryStateStore`` (the in-memory twin, for tests and
library users), ``SQLiteStateStore`` (the default: one file in the state directory) and
``PostgresStateStore`` (a team's shared database). ``DeployJournal`` is the deploy's view
of a store: it builds records and decides stages; the store only keeps them.
"""

from __future__ import annotations

import abc
from typing import Any

from rollsafe.errors import RollsafeError
from rollsafe.state.records import DeployRecord, LockInfo

__all__ = [
    "LockHeldError",
    "StateConflictError",
    "StateError",
    "StateStore",
    "StateUnavailableError",
]


class StateError(RollsafeError):
    """The state store refused or failed an operation."""

    exit_code = 1


class StateUnavailableError(StateError):
    """The state store cannot be reached (the database is down, the network is gone).

    Its message names the store by its redacted location, never with a password.
    """

    exit_code = 1


class StateConflictError(StateError):
    """A compare-and-swap lost: the key's version is not the one expected."""

    exit_code = 1


class LockHeldError(StateError):
    """The lock asked for is held by a live holder (``holder``)."""

    exit_code = 1

    def __init__(self, message: str, holder: LockInfo, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.holder = holder

    @classmethod
    def refused(cls, holder: LockInfo) -> LockHeldError:
        """``acquire_lock``'s refusal, naming the live ``holder``: every backend says it
        the same way."""
        return cls(
            f"the lock of {holder.service} in {holder.env} is held by {holder.describe()}",
            holder,
            hint="wait for it to finish; if that process is gone, the next deploy takes "
            "the lock over (or `rollsafe unlock` breaks it)",
        )

    @classmethod
    def unbreakable(cls, holder: LockInfo) -> LockHeldError:
        """``break_lock``'s refusal: the holder is alive."""
        return cls(
            f"the lock of {holder.service} in {holder.env} is held by a live holder: "
            f"{holder.describe()}",
            holder,
            hint="only a lock whose holder is gone can be broken: wait for it to finish",
        )


class StateStore(abc.ABC):
    """Where deploy records, deploy locks and key/value state live.

    Every method may raise ``StateUnavailableError`` when the backend cannot be reached;
    ``DeployJournal`` retries and spools journal writes past that.
    """

    #: ``memory``, ``sqlite`` or ``postgresql``
    kind: str = ""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the state is, for messages: a path, or a URL without its password."""

    @property
    @abc.abstractmethod
    def session(self) -> str:
        """This process's liveness token, stored in its records and locks: while this store
        is open (and its process alive) ``is_alive`` says True for it, on any machine."""

    @abc.abstractmethod
    def is_alive(self, session: str | None, host: str, pid: int) -> bool:
        """Whether the writer with liveness token ``session`` (else ``host``/``pid``, for
        records written without one) still runs. Unknown means alive: a record is only
        reconciled when its writer is known to be gone."""

    # -- the journal --
    @abc.abstractmethod
    def save_record(self, record: DeployRecord) -> None:
        """Insert or replace ``record`` whole (by ``id``): replaying a write is harmless."""

    @abc.abstractmethod
    def get_record(self, deploy_id: str) -> DeployRecord | None:
        """The record with ``deploy_id``, or None."""

    @abc.abstractmethod
    def list_records(
        self, env: str, service: str | None = None, limit: int = 100
    ) -> list[DeployRecord]:
        """Records of ``env`` (and ``service``), newest ``started`` first."""

    @abc.abstractmethod
    def environments(self) -> list[str]:
        """Every environment that has a record or a lock, sorted (``state migrate``)."""

    # -- locks: one per (environment, service) --
    @abc.abstractmethod
    def acquire_lock(self, holder: LockInfo) -> None:
        """Take the lock of ``holder.env``/``holder.service`` for ``holder``.

        A lock whose holder is gone is taken over. Raises ``LockHeldError`` naming the
        live holder. On PostgreSQL the lock is also a session-level advisory lock of this
        store's session, so it is released when the process dies.
        """

    @abc.abstractmethod
    def release_lock(self, env: str, service: str, deploy_id: str) -> None:
        """Release the lock if ``deploy_id`` holds it; otherwise do nothing."""

    @abc.abstractmethod
    def list_locks(self, env: str) -> list[LockInfo]:
        """The locks of ``env`` by service, each with ``held`` False if its holder is gone."""

    @abc.abstractmethod
    def break_lock(self, env: str, service: str) -> LockInfo | None:
        """Remove a stale lock and return what it was (None: there was no lock).

        Raises ``LockHeldError`` while its holder is alive.
        """

    # -- key/value: JSON values with a version for compare-and-swap --
    @abc.abstractmethod
    def kv_get(self, namespace: str, key: str) -> tuple[Any, int] | None:
        """(value, version) of ``key``, or None."""

    @abc.abstractmethod
    def kv_put(
        self, namespace: str, key: str, value: Any, *, expect_version: int | None = None
    ) -> int:
        """Write ``value`` (JSON-serialisable); return its new version (1 for a new key).

        With ``expect_version`` the write happens only if the key's version is that
        (``0``: the key must not exist), else ``StateConflictError``.
        """

    @abc.abstractmethod
    def kv_list(self, namespace: str, prefix: str = "") -> dict[str, tuple[Any, int]]:
        """Every key of ``namespace`` starting with ``prefix``: key -> (value, version)."""

    @abc.abstractmethod
    def kv_delete(self, namespace: str, key: str) -> None:
        """Delete ``key`` if it exists."""

    @abc.abstractmethod
    def kv_namespaces(self) -> list[str]:
        """Every namespace that holds a key, sorted (``state migrate``)."""

    # -- lifetime --
    @abc.abstractmethod
    def close(self) -> None:
        """Release every lock this store holds and close its connections."""

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"
