"""State: the deploy journal, deploy locks and key/value state, and where they live.

``StateStore`` (``base``) has three backends: ``memory``, ``sqlite`` (the default, in the
state directory: ``ROLLSAFE_HOME`` or ``.rollsafe/`` beside the manifest) and
``postgresql`` (a team's shared database). ``journal.DeployJournal`` is the deploy's view
of a store; ``resolve`` chooses the store (``--state`` > ``ROLLSAFE_STATE`` > the
manifest's ``state:`` > SQLite) and ``spec`` parses its location.
"""

from rollsafe.state.base import (
    LockHeldError,
    StateConflictError,
    StateError,
    StateStore,
    StateUnavailableError,
)
from rollsafe.state.paths import GITIGNORE, STATE_DIR_NAME, ensure_state_dir, state_dir_for
from rollsafe.state.records import DeployRecord, LockInfo

__all__ = [
    "GITIGNORE",
    "STATE_DIR_NAME",
    "DeployRecord",
    "LockHeldError",
    "LockInfo",
    "StateConflictError",
    "StateError",
    "StateStore",
    "StateUnavailableError",
    "ensure_state_dir",
    "state_dir_for",
]
