"""Opening what an environment needs: its secret store and its platform.

``platform: local`` means the emulator of the state directory (started when needed);
``platform: cloudrun`` means Google Cloud through the official clients.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rollsafe.manifest import ResolvedEnvironment
from rollsafe.stores import SecretStore, open_store

if TYPE_CHECKING:
    from rollsafe.platforms import Platform

__all__ = ["emulator_endpoint", "gcp_endpoint", "platform_for", "store_for"]


def emulator_endpoint(env: ResolvedEnvironment) -> str:
    """The endpoint of the emulator beside the manifest (or in ``ROLLSAFE_HOME``)."""
    from rollsafe.emulator.server import ensure_emulator
    from rollsafe.state import state_dir_for

    return ensure_emulator(state_dir_for(env.manifest_path))


def gcp_endpoint(env: ResolvedEnvironment) -> str | None:
    """Where ``env``'s Google clients go: the emulator's endpoint on ``local``, None (Google's
    own endpoints) on ``cloudrun``."""
    return emulator_endpoint(env) if env.platform == "local" else None


def store_for(env: ResolvedEnvironment, override: str | None = None) -> SecretStore:
    """The secret store of ``env``: ``--store`` if given, else the environment's ``store:``,
    else Secret Manager of the environment's project (the emulator's, on ``local``).

    A ``--store`` path is relative to the working directory; a ``store:`` path in the
    manifest is relative to the manifest's folder.
    """
    if override:
        return open_store(override, base_dir=Path.cwd())
    if env.store:
        return open_store(env.store, base_dir=env.manifest_path.parent)
    from rollsafe.stores.secretmanager import SecretManagerStore

    return SecretManagerStore(env.gcp_project, endpoint=gcp_endpoint(env))


def platform_for(env: ResolvedEnvironment) -> Platform:
    """Cloud Run for ``env``: the emulator's on ``local``, Google's on ``cloudrun``."""
    from rollsafe.platforms.cloudrun import CloudRunPlatform

    return CloudRunPlatform(env.gcp_project, env.region, endpoint=gcp_endpoint(env))
