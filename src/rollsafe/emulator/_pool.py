"""Kept-alive connections from the router to revision instances."""

from __future__ import annotations

import asyncio
import time

from rollsafe.emulator._http1 import READ_SIZE

__all__ = ["Backend", "Pool"]


class Backend:
    """One connection to a revision instance, pooled between requests while kept alive."""

    __slots__ = ("idle_since", "reader", "reused", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reused = False
        self.idle_since = 0.0

    def usable(self, now: float, ttl: float) -> bool:
        return now - self.idle_since < ttl and not (
            self.reader.at_eof() or self.writer.is_closing()
        )

    def close(self) -> None:
        # abort: nothing of ours is worth flushing to a connection that is given up, and a
        # graceful close would wait forever on a backend that stopped reading
        self.writer.transport.abort()


class Pool:
    """Kept-alive backend connections per port, most recently used first."""

    def __init__(self, host: str, connect_timeout: float, idle_ttl: float, max_idle: int) -> None:
        self.host = host
        self.connect_timeout = connect_timeout
        # shorter than the usual servers' keep-alive timeouts (uvicorn 5 s, gunicorn 2 s)
        # so that the backend is seldom the one to close a pooled connection
        self.idle_ttl = idle_ttl
        self.max_idle = max_idle
        self._idle: dict[int, list[Backend]] = {}

    async def acquire(self, port: int, *, fresh: bool = False) -> Backend:
        stack = self._idle.get(port)
        if stack and not fresh:
            now = time.monotonic()
            while stack:
                backend = stack.pop()
                if backend.usable(now, self.idle_ttl):
                    backend.reused = True
                    return backend
                backend.close()
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_connection(self.host, port, limit=READ_SIZE)
        return Backend(reader, writer)

    def release(self, port: int, backend: Backend) -> None:
        now = time.monotonic()
        stack = self._idle.setdefault(port, [])
        while stack and not stack[0].usable(now, self.idle_ttl):
            stack.pop(0).close()
        if len(stack) >= self.max_idle:
            backend.close()
            return
        backend.idle_since = now
        stack.append(backend)

    def close(self) -> None:
        for stack in self._idle.values():
            for backend in stack:
                backend.close()
        self._idle.clear()
