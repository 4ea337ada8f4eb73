"""``MemoryStateStore``: the in-memory twin of the state backends, for tests and tools."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from dataclasses import replace
from typing import Any

from rollsafe.state._liveness import session_alive
from rollsafe.state.base import LockHeldError, StateConflictError, StateStore
from rollsafe.state.records import DeployRecord, LockInfo

__all__ = ["MemoryStateStore"]

#: the sessions of the memory stores open in this process
_OPEN_SESSIONS: set[str] = set()
_OPEN_LOCK = threading.Lock()


class MemoryStateStore(StateStore):
    """Everything in dicts of this object; gone when it is. Thread-safe.

    Several memory stores in one process are separate worlds, but each knows whether the
    others' sessions are still open, as a database knows its sessions.
    """

    kind = "memory"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, Any]] = {}
        self._locks: dict[tuple[str, str], LockInfo] = {}
        self._kv: dict[tuple[str, str], tuple[str, int]] = {}
        self._session = f"memory:{uuid.uuid4().hex}"
        with _OPEN_LOCK:
            _OPEN_SESSIONS.add(self._session)

    @property
    def location(self) -> str:
        return "memory"

    @property
    def session(self) -> str:
        return self._session

    def is_alive(self, session: str | None, host: str, pid: int) -> bool:
        if session is not None and session.startswith("memory:"):
            with _OPEN_LOCK:
                return session in _OPEN_SESSIONS
        # a local process's token (``pid:HOST:PID:STARTTIME``), else host and pid
        return session_alive(session, host, pid)

    # -- the journal --
    def save_record(self, record: DeployRecord) -> None:
        with self._lock:
            # a JSON round trip, as the other backends store it: no aliasing with the caller
            self._records[record.id] = json.loads(json.dumps(record.to_row()))

    def get_record(self, deploy_id: str) -> DeployRecord | None:
        with self._lock:
            row = self._records.get(deploy_id)
            return DeployRecord.from_row(copy.deepcopy(row)) if row is not None else None

    def list_records(
        self, env: str, service: str | None = None, limit: int = 100
    ) -> list[DeployRecord]:
        with self._lock:
            rows = [
                copy.deepcopy(r)
                for r in self._records.values()
                if r["env"] == env and (service is None or r["service"] == service)
            ]
        rows.sort(key=lambda r: r["started"], reverse=True)
        return [DeployRecord.from_row(r) for r in rows[:limit]]

    def environments(self) -> list[str]:
        with self._lock:
            envs = {r["env"] for r in self._records.values()} | {e for e, _ in self._locks}
        return sorted(envs)

    # -- locks --
    def _alive(self, lock: LockInfo) -> bool:
        return self.is_alive(lock.session, lock.host, lock.pid)

    def acquire_lock(self, holder: LockInfo) -> None:
        key = (holder.env, holder.service)
        with self._lock:
            current = self._locks.get(key)
            if (
                current is not None
                and current.deploy_id != holder.deploy_id
                and self._alive(current)
            ):
                raise LockHeldError.refused(current)
            self._locks[key] = replace(holder, session=holder.session or self._session)

    def release_lock(self, env: str, service: str, deploy_id: str) -> None:
        with self._lock:
            current = self._locks.get((env, service))
            if current is not None and current.deploy_id == deploy_id:
                del self._locks[(env, service)]

    def list_locks(self, env: str) -> list[LockInfo]:
        with self._lock:
            found = [lock for (e, _), lock in self._locks.items() if e == env]
        return [replace(lock, held=self._alive(lock)) for lock in sorted(found, key=_by_service)]

    def break_lock(self, env: str, service: str) -> LockInfo | None:
        with self._lock:
            current = self._locks.get((env, service))
            if current is None:
                return None
            if self._alive(current):
                raise LockHeldError.unbreakable(current)
            del self._locks[(env, service)]
            return replace(current, held=False)

    # -- key/value --
    def kv_get(self, namespace: str, key: str) -> tuple[Any, int] | None:
        with self._lock:
            found = self._kv.get((namespace, key))
        return (json.loads(found[0]), found[1]) if found is not None else None

    def kv_put(
        self, namespace: str, key: str, value: Any, *, expect_version: int | None = None
    ) -> int:
        text = json.dumps(value)
        with self._lock:
            found = self._kv.get((namespace, key))
            version = found[1] if found is not None else 0
            if expect_version is not None and expect_version != version:
                raise StateConflictError(
                    f"{namespace}/{key} is at version {version}, not {expect_version}"
                )
            self._kv[(namespace, key)] = (text, version + 1)
            return version + 1

    def kv_list(self, namespace: str, prefix: str = "") -> dict[str, tuple[Any, int]]:
        with self._lock:
            items = [
                (k, v)
                for (ns, k), v in self._kv.items()
                if ns == namespace and k.startswith(prefix)
            ]
        return {k: (json.loads(text), version) for k, (text, version) in sorted(items)}

    def kv_delete(self, namespace: str, key: str) -> None:
        with self._lock:
            self._kv.pop((namespace, key), None)

    def kv_namespaces(self) -> list[str]:
        with self._lock:
            return sorted({ns for ns, _ in self._kv})

    def close(self) -> None:
        with _OPEN_LOCK:
            _OPEN_SESSIONS.discard(self._session)


def _by_service(lock: LockInfo) -> str:
    return lock.service
