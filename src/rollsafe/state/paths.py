"""The state directory: the emulator's data, the deploy journal, health samples."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["GITIGNORE", "STATE_DIR_NAME", "ensure_state_dir", "state_dir_for"]

STATE_DIR_NAME = ".rollsafe"
#: what keeps a state directory out of git: ``*``
GITIGNORE = ".gitignore"


def state_dir_for(manifest: Path | str | None = None) -> Path:
    """``$ROLLSAFE_HOME`` if set, else ``.rollsafe/`` beside the manifest (or in the cwd)."""
    home = os.environ.get("ROLLSAFE_HOME")
    if home:
        return Path(home).expanduser().resolve()
    base = Path(manifest).resolve().parent if manifest is not None else Path.cwd()
    return base / STATE_DIR_NAME


def ensure_state_dir(path: Path) -> Path:
    """Create ``path`` if needed, with a ``.gitignore`` of ``*`` in it; returns ``path``.

    The state holds the emulator's key beside its ciphertexts, the journal and logs: none
    of it belongs in git, and ``git add .`` must not pick it up. A ``.gitignore`` that is
    already there (the user's own) is left as it is.
    """
    path.mkdir(parents=True, exist_ok=True)
    ignore = path / GITIGNORE
    if not ignore.exists():
        with contextlib.suppress(FileExistsError), ignore.open("x", encoding="utf-8") as f:
            f.write("*\n")
    return path
