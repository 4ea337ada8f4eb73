"""What every adapter (secret store, platform) shares: ``close()`` and the ``with`` form."""

from __future__ import annotations

from abc import ABC
from types import TracebackType
from typing import Self

__all__ = ["Adapter"]


class Adapter(ABC):  # noqa: B024 - the abstract methods are the subclasses'
    """Base of the adapter interfaces: a context manager that closes its connections."""

    def close(self) -> None:  # noqa: B027 - adapters without connections need not override it
        """Release connections. Safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
