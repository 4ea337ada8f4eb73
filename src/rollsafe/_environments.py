"""Opening what an environment needs: its manifest resolution and its secret store."""

from __future__ import annotations

from pathlib import Path

from rollsafe.errors import UsageError
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.stores import SecretStore, open_store

__all__ = ["store_for"]


def store_for(env: ResolvedEnvironment, override: str | None = None) -> SecretStore:
    """The secret store of ``env``: ``--store`` if given, else the environment's ``store:``.

    A ``--store`` path is relative to the working directory; a ``store:`` path in the
    manifest is relative to the manifest's folder.
    """
    if override:
        return open_store(override, base_dir=Path.cwd())
    if env.store:
        return open_store(env.store, base_dir=env.manifest_path.parent)
    raise UsageError(
        f"environment '{env.name}' has no secret store configured",
        hint="pass --store dotenv:PATH, or set `store:` on the environment in the manifest",
    )
