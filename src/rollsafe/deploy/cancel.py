"""Cancelling a deploy with SIGINT or SIGTERM, as CI runners do when a job is cancelled.

GitHub Actions sends SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after that. The
first signal raises ``Cancelled`` where the deploy is; the deploy then runs its
compensation. Every later signal only says that the rollback is being finished: a second
Ctrl-C must not leave traffic on an unverified revision. SIGKILL cannot be caught; the next
command's reconcile runs the compensation from the journal.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Cancelled", "cancellable", "deferred", "shielded"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: > 0 while a compensation runs: a signal then must not interrupt it
_shield = [0]
#: > 0 while a journal write runs: a signal then waits until the write is done
_defer = [0]
#: a signal that arrived during a deferred block, raised when the block ends
_pending: list[int] = []


class Cancelled(BaseException):
    """A signal asked the deploy to stop. A BaseException, as KeyboardInterrupt: an
    ``except Exception`` on the way must not swallow it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        """130 for SIGINT, 143 for SIGTERM: 128 + the signal, as shells report it."""
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


@contextmanager
def cancellable(say: Callable[[str], None]) -> Iterator[None]:
    """Turn SIGINT and SIGTERM into ``Cancelled`` while the block runs (main thread only;
    elsewhere the block runs as it is). ``say`` tells the user about a second signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if fired or _shield[0]:
            fired.append(signum)
            name = signal.Signals(signum).name
            say(f"{name} received: finishing the rollback first (SIGKILL leaves it to reconcile)")
            return
        fired.append(signum)
        if _defer[0]:
            _pending.append(signum)
            return
        raise Cancelled(signum)

    previous = {sig: signal.signal(sig, handler) for sig in _SIGNALS}
    try:
        yield
    finally:
        _pending.clear()
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def deferred() -> Iterator[None]:
    """Let the block (a journal write and its announcement) finish whatever signal arrives
    meanwhile; the signal is raised as ``Cancelled`` as soon as the block is done, so the
    journal never holds half a stage."""
    _defer[0] += 1
    try:
        yield
    finally:
        _defer[0] -= 1
    if not _defer[0] and _pending and not _shield[0]:
        raise Cancelled(_pending.pop())


@contextmanager
def shielded() -> Iterator[None]:
    """Run the block (a compensation) to its end whatever signal arrives meanwhile."""
    _shield[0] += 1
    try:
        yield
    finally:
        _shield[0] -= 1
