"""The one error hierarchy of rollsafe.

The library raises these; only ``rollsafe.cli`` prints them and turns ``exit_code`` into the
process exit status. No message or hint may ever carry a secret value.
"""

from __future__ import annotations

__all__ = [
    "ManifestError",
    "RollsafeError",
    "StoreError",
    "StoreUnavailableError",
    "UsageError",
]


class RollsafeError(Exception):
    """Base of every error rollsafe raises on purpose.

    ``exit_code`` follows DESIGN.md: 1 refused/blocked, 2 usage or manifest error,
    3 rolled back, 4 rollback failed.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(RollsafeError):
    """A command was called wrongly (bad flag value, unknown environment or service)."""

    exit_code = 2


class ManifestError(RollsafeError):
    """The manifest cannot be read or does not follow the contract.

    ``file``, ``line`` and ``key_path`` locate the problem; ``line`` is 1-based.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key_path: str | None = None,
        hint: str | None = None,
        more: tuple[ManifestError, ...] = (),
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line
        self.key_path = key_path
        #: further problems found in the same pass, so a user fixes them all at once
        self.more = more

    @property
    def all(self) -> tuple[ManifestError, ...]:
        """This problem and every further one."""
        return (self, *self.more)

    @property
    def location(self) -> str:
        """``file:line`` (or as much of it as is known)."""
        where = self.file or "<manifest>"
        return f"{where}:{self.line}" if self.line else where

    def __str__(self) -> str:
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{self.location}:{key} {self.message}"


class StoreError(RollsafeError):
    """A secret store could not be opened or answered with an error."""

    exit_code = 2


class StoreUnavailableError(StoreError):
    """The store cannot be reached at all; checks that need it cannot run (fail closed)."""

    exit_code = 1
