"""The local spool: journal writes kept on disk while the state store cannot be reached.

One JSON line per write, each a whole record snapshot (``DeployRecord.to_row``), so that
replaying a line is ``save_record`` again: harmless twice. The file is named after a hash
of the store's redacted location, so a spool is only ever replayed into the store it was
meant for, and neither its name nor its content holds a password.

Appends and replays take an exclusive ``flock`` on the file. A replay removes the file
under that lock; an append that waited for it notices the file it opened is gone and
opens the new one, so a line is never written into a removed file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from rollsafe.state.base import StateStore
from rollsafe.state.records import DeployRecord

__all__ = ["SPOOL_DIR_NAME", "Spool"]

#: the spool's folder inside a state directory
SPOOL_DIR_NAME = "spool"


class Spool:
    """The spool file of one store (by its redacted ``location``) in ``directory``."""

    def __init__(self, directory: Path, location: str) -> None:
        digest = hashlib.sha256(location.encode("utf-8")).hexdigest()[:16]
        self.directory = directory
        self.path = directory / f"{digest}.jsonl"
        self.location = location

    def __repr__(self) -> str:
        return f"Spool({str(self.path)!r})"

    @contextlib.contextmanager
    def _locked(self, mode: str) -> Iterator[IO[bytes] | None]:
        """The spool file opened with (binary) ``mode`` under an exclusive lock, re-opened
        if a replay removed it while we waited; None (read modes) when there is none."""
        while True:
            try:
                handle = self.path.open(mode)
            except FileNotFoundError:
                yield None
                return
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    same = os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    yield handle
                    return
            finally:
                handle.close()  # closing releases the lock

    def append(self, record: DeployRecord) -> None:
        """Add a snapshot of ``record``, flushed and synced before this returns."""
        self.directory.mkdir(parents=True, exist_ok=True)
        line = (json.dumps({"record": record.to_row()}, sort_keys=True) + "\n").encode()
        with self._locked("ab+") as handle:
            assert handle is not None
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    line = b"\n" + line  # a line torn by a crash: never glue onto it
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def pending(self) -> int:
        """How many writes wait in the spool."""
        try:
            with self.path.open(encoding="utf-8") as handle:
                return sum(1 for line in handle if line.strip())
        except FileNotFoundError:
            return 0

    def replay(self, store: StateStore) -> int:
        """Write every spooled snapshot into ``store`` and remove the spool; return how many
        writes it held (0: there was none).

        Only each record's last snapshot is written (it holds every earlier one). A record
        the store already holds finished is not reopened by an unfinished snapshot: another
        machine reconciled it meanwhile. ``StateUnavailableError`` leaves the spool whole
        for the next run.
        """
        with self._locked("rb+") as handle:
            if handle is None:
                return 0
            text = handle.read().decode("utf-8", errors="replace")
            lines = [line for line in text.splitlines() if line.strip()]
            latest: dict[str, DeployRecord] = {}
            for line in lines:
                try:
                    row = json.loads(line)["record"]
                    record = DeployRecord.from_row(row)
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a crash mid-write: the ones after it hold more
                latest.pop(record.id, None)  # keep the order of the last writes
                latest[record.id] = record
            for record in latest.values():
                current = store.get_record(record.id)
                if current is not None and not current.in_progress and record.in_progress:
                    continue
                store.save_record(record)
            self.path.unlink()
            return len(lines)
