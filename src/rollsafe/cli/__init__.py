"""The ``rollsafe`` command line: the only place that prints or exits.

Commands live in ``_check.py``, ``_deploy.py``, ``_drift.py``, ``_emulator.py``,
``_incidents.py``, ``_monitor.py``, ``_secret.py``, ``_state.py`` and ``_web.py``;
importing them registers them on ``app``.
"""

from __future__ import annotations

import os
import sys

from rollsafe.cli import (  # noqa: F401 - registers the commands
    _check,
    _deploy,
    _drift,
    _emulator,
    _incidents,
    _monitor,
    _secret,
    _state,
    _web,
)
from rollsafe.cli._common import app, guarded, print_error
from rollsafe.errors import RollsafeError

__all__ = ["app", "guarded", "main"]


def main() -> None:
    """Console-script entry point."""
    if os.environ.get("ROLLSAFE_DEBUG"):
        app()
        return
    try:
        app()
    except RollsafeError as exc:  # pragma: no cover - commands are guarded; belt and braces
        print_error(exc)
        sys.exit(exc.exit_code)
