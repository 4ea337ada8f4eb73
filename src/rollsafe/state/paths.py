"""The state directory: the emulator's data, the deploy journal, health samples."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["STATE_DIR_NAME", "state_dir_for"]

STATE_DIR_NAME = ".rollsafe"


def state_dir_for(manifest: Path | str | None = None) -> Path:
    """``$ROLLSAFE_HOME`` if set, else ``.rollsafe/`` beside the manifest (or in the cwd)."""
    home = os.environ.get("ROLLSAFE_HOME")
    if home:
        return Path(home).expanduser().resolve()
    base = Path(manifest).resolve().parent if manifest is not None else Path.cwd()
    return base / STATE_DIR_NAME
