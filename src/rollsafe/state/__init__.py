"""Local state: where it lives (``ROLLSAFE_HOME`` or ``.rollsafe/`` beside the manifest)."""

from rollsafe.state.paths import GITIGNORE, STATE_DIR_NAME, ensure_state_dir, state_dir_for

__all__ = ["GITIGNORE", "STATE_DIR_NAME", "ensure_state_dir", "state_dir_for"]
