"""Opening a store from a spec string: ``dotenv:PATH``, ``memory:``, ``secretmanager``."""

from __future__ import annotations

from pathlib import Path

from rollsafe.errors import UsageError
from rollsafe.stores.base import SecretStore

__all__ = ["open_store"]

_KINDS = "dotenv:PATH, memory, secretmanager:PROJECT[@ENDPOINT]"


def open_store(spec: str, *, base_dir: Path | None = None) -> SecretStore:
    """Open the store ``spec`` names. Relative dotenv paths are taken from ``base_dir``.

    ``base_dir`` is the manifest's folder for a ``store:`` in the manifest, and the working
    directory for ``--store`` on the command line.
    """
    kind, _, arg = spec.partition(":")
    if kind == "dotenv":
        if not arg:
            raise UsageError("store 'dotenv:' needs a path", hint="write dotenv:PATH")
        path = Path(arg)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        from rollsafe.stores.dotenv import DotenvSecretStore

        return DotenvSecretStore(path)
    if kind == "memory":
        from rollsafe.stores.memory import InMemorySecretStore

        return InMemorySecretStore()
    if kind == "secretmanager":
        # `secretmanager:PROJECT` is Google's; `...@http://127.0.0.1:PORT` an emulator's
        project, _, endpoint = arg.partition("@")
        if not project:
            raise UsageError(
                "store 'secretmanager:' needs a project",
                hint="write secretmanager:PROJECT or secretmanager:PROJECT@http://127.0.0.1:PORT "
                "(a bare `secretmanager` is the environment's own gcp_project)",
            )
        from rollsafe.stores.secretmanager import SecretManagerStore

        return SecretManagerStore(project, endpoint=endpoint or None)
    raise UsageError(f"unknown secret store '{spec}'", hint=f"store specs: {_KINDS}")
