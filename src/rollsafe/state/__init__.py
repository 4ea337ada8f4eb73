"""Local state: where it lives (``ROLLSAFE_HOME`` or ``.rollsafe/`` beside the manifest)."""

from rollsafe.state.paths import STATE_DIR_NAME, state_dir_for

__all__ = ["STATE_DIR_NAME", "state_dir_for"]
