"""The monitor's tests share the deploy tests' workspace: ``site`` (the emulator with the
example backend, its store, journal and ID tokens)."""

from __future__ import annotations

from tests.deploy.conftest import site

__all__ = ["site"]
