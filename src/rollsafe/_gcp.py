"""Building the official google-cloud clients: lazily imported, pointed at an endpoint.

Every adapter builds its client here, so the install hint and the emulator wiring live in
one place. With an ``endpoint`` (the emulator, ``http://127.0.0.1:PORT``) the clients use the
REST transport and anonymous credentials; without one they use Google's defaults (ADC).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from rollsafe.errors import RollsafeError

__all__ = ["MissingExtraError", "client_kwargs", "import_google"]

INSTALL_HINT = "pip install 'rollsafe[gcp]'"


class MissingExtraError(RollsafeError):
    """A google-cloud package is not installed."""

    exit_code = 2


def import_google(module: str) -> ModuleType:
    """Import a google-cloud module, or raise with the install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"the Google Cloud client library '{module}' is not installed", hint=INSTALL_HINT
        ) from exc


def client_kwargs(endpoint: str | None) -> dict[str, Any]:
    """Keyword arguments for a GAPIC client: REST + anonymous credentials for an emulator."""
    if not endpoint:
        return {}
    options = import_google("google.api_core.client_options")
    credentials = import_google("google.auth.credentials")
    return {
        "credentials": credentials.AnonymousCredentials(),
        "transport": "rest",
        "client_options": options.ClientOptions(api_endpoint=endpoint),
    }
