"""Everything the emulator's APIs share: the state directory, database, cipher, logs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rollsafe.emulator.crypto import PayloadCipher
from rollsafe.emulator.db import EmulatorDB
from rollsafe.emulator.logs import LogSink
from rollsafe.state.paths import ensure_state_dir

__all__ = ["EmulatorState"]

DB_FILE = "emulator.sqlite3"
KEY_FILE = "emulator.key"

T = TypeVar("T")


@dataclass
class EmulatorState:
    """Shared by the Secret Manager, Cloud Run and Logging routes of one emulator.

    ``extensions`` lets an API module keep its own long-lived objects (the revision
    supervisor, the router) under a name, created in its ``startup`` hook.
    """

    state_dir: Path
    db: EmulatorDB
    cipher: PayloadCipher
    logs: LogSink
    endpoint: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, state_dir: Path | str) -> EmulatorState:
        """Open (creating if needed) the state in ``state_dir``."""
        path = Path(state_dir)
        ensure_state_dir(path)  # with its .gitignore: the key must stay out of git
        db = EmulatorDB(path / DB_FILE)
        return cls(
            state_dir=path,
            db=db,
            cipher=PayloadCipher(path / KEY_FILE),
            logs=LogSink(db),
        )

    def extension(self, name: str, kind: type[T], create: Callable[[], T]) -> T:
        """The ``kind`` object kept in ``extensions`` under ``name``, made by ``create`` on
        first use: for what an API needs before (or without) its ``startup`` hook."""
        found = self.extensions.get(name)
        if found is None:
            # setdefault: of two request threads racing here, both get the one stored first
            found = self.extensions.setdefault(name, create())
        if not isinstance(found, kind):
            raise TypeError(f"extension {name!r} is a {type(found).__name__}, not {kind.__name__}")
        return found

    def close(self) -> None:
        self.db.close()
