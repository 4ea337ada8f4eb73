"""Everything the emulator's APIs share: the state directory, database, cipher, logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollsafe.emulator.crypto import PayloadCipher
from rollsafe.emulator.db import EmulatorDB
from rollsafe.emulator.logs import LogSink

__all__ = ["EmulatorState"]

DB_FILE = "emulator.sqlite3"
KEY_FILE = "emulator.key"


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
        path.mkdir(parents=True, exist_ok=True)
        db = EmulatorDB(path / DB_FILE)
        return cls(
            state_dir=path,
            db=db,
            cipher=PayloadCipher(path / KEY_FILE),
            logs=LogSink(db),
        )

    def close(self) -> None:
        self.db.close()
