"""A real state store whose kv calls fail while ``down``: the database gone for a while
(the monitor's history and probe buckets must log it and go on)."""

from __future__ import annotations

from typing import Any

from rollsafe.state.base import StateUnavailableError
from rollsafe.state.memory import MemoryStateStore
from rollsafe.state.sqlite import SQLiteStateStore

__all__ = ["MemoryOutage", "SQLiteOutage"]


class _Outage:
    """A real store whose kv calls fail while ``down`` (the database gone for a while)."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StateUnavailableError("the state store is unreachable")

    def kv_get(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().kv_get(*args, **kwargs)  # type: ignore[misc]

    def kv_put(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().kv_put(*args, **kwargs)  # type: ignore[misc]

    def kv_list(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().kv_list(*args, **kwargs)  # type: ignore[misc]

    def kv_delete(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().kv_delete(*args, **kwargs)  # type: ignore[misc]


class MemoryOutage(_Outage, MemoryStateStore):
    pass


class SQLiteOutage(_Outage, SQLiteStateStore):
    pass
