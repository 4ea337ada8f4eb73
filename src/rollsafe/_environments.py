"""Opening what an environment needs: its secret store and its platform.

``platform: local`` means the emulator of the state directory (started when needed);
``platform: cloudrun`` means Google Cloud through the official clients.
``ROLLSAFE_GCP_ENDPOINT`` overrides both: every Google client goes to that endpoint (one
emulator shared by several checkouts, CI jobs and tools) and no emulator is started.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rollsafe.errors import UsageError
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.stores import SecretStore, open_store

if TYPE_CHECKING:
    from rollsafe.platforms import Platform

__all__ = [
    "GCP_ENDPOINT_ENV",
    "emulator_endpoint",
    "gcp_endpoint",
    "platform_for",
    "shared_endpoint",
    "store_for",
    "validate_endpoint",
]

#: the environment variable that points every Google client at one endpoint
GCP_ENDPOINT_ENV = "ROLLSAFE_GCP_ENDPOINT"
#: ``store: secretmanager``: Secret Manager of the environment's own project
_BARE_SECRET_MANAGER = "secretmanager"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _invalid(raw: str, why: str) -> UsageError:
    parts = urlsplit(raw) if "://" in raw else None
    shown = raw
    if parts is not None and (parts.username or parts.password):
        # never echo credentials someone put into the URL
        shown = parts._replace(netloc=f"***@{parts.hostname or ''}").geturl()
    return UsageError(
        f"{GCP_ENDPOINT_ENV}={shown!r} is not a usable endpoint: {why}",
        hint=(
            f"set {GCP_ENDPOINT_ENV} to an emulator's endpoint, http://127.0.0.1:PORT "
            "(see `rollsafe emulator status`) or an https:// URL, or unset it"
        ),
    )


def validate_endpoint(raw: str) -> str:
    """``raw`` as ``scheme://host[:port]``: a loopback http URL or any https URL."""
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise _invalid(raw, "not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(raw, "expected http://127.0.0.1:PORT or https://HOST")
    if parts.username or parts.password:
        raise _invalid(raw, "credentials in the URL are not accepted")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _invalid(raw, "it must not have a path, query or fragment")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise _invalid(
            raw, "plain http is accepted on loopback only (127.0.0.1, ::1, localhost); use https"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def shared_endpoint() -> str | None:
    """``ROLLSAFE_GCP_ENDPOINT``, validated (UsageError if unusable); None when unset."""
    raw = os.environ.get(GCP_ENDPOINT_ENV, "").strip()
    return validate_endpoint(raw) if raw else None


def emulator_endpoint(env: ResolvedEnvironment) -> str:
    """The endpoint of the emulator beside the manifest (or in ``ROLLSAFE_HOME``)."""
    from rollsafe.emulator.server import ensure_emulator
    from rollsafe.state import state_dir_for

    return ensure_emulator(state_dir_for(env.manifest_path))


def gcp_endpoint(env: ResolvedEnvironment) -> str | None:
    """Where ``env``'s Google clients go: ``ROLLSAFE_GCP_ENDPOINT`` when set (on ``local`` and
    ``cloudrun`` alike; no emulator is started), else the emulator's endpoint on ``local``
    (started when needed), else None (Google's own endpoints)."""
    shared = shared_endpoint()
    if shared is not None:
        return shared
    return emulator_endpoint(env) if env.platform == "local" else None


def store_for(env: ResolvedEnvironment, override: str | None = None) -> SecretStore:
    """The secret store of ``env``: ``--store`` if given, else the environment's ``store:``,
    else Secret Manager of the environment's project (the emulator's, on ``local``).

    A bare ``secretmanager`` (either way) is that default too: the environment's
    ``gcp_project``, through ``ROLLSAFE_GCP_ENDPOINT`` or the emulator where that applies.
    A ``--store`` path is relative to the working directory; a ``store:`` path in the
    manifest is relative to the manifest's folder.
    """
    if override and override != _BARE_SECRET_MANAGER:
        return open_store(override, base_dir=Path.cwd())
    if env.store and env.store != _BARE_SECRET_MANAGER and not override:
        return open_store(env.store, base_dir=env.manifest_path.parent)
    from rollsafe.stores.secretmanager import SecretManagerStore

    return SecretManagerStore(env.gcp_project, endpoint=gcp_endpoint(env))


def platform_for(env: ResolvedEnvironment) -> Platform:
    """Cloud Run for ``env``: the emulator's on ``local``, Google's on ``cloudrun``."""
    from rollsafe.platforms.cloudrun import CloudRunPlatform

    return CloudRunPlatform(env.gcp_project, env.region, endpoint=gcp_endpoint(env))
