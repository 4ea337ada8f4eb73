"""The ``--set-secrets`` value of ``gcloud run deploy``, generated from the manifest."""

from __future__ import annotations

from rollsafe.check.resolve import resolve_references
from rollsafe.errors import RollsafeError
from rollsafe.manifest import ResolvedService
from rollsafe.stores import SecretStore

__all__ = ["build_secrets_string"]


def build_secrets_string(service: ResolvedService, store: SecretStore | None = None) -> str:
    """``ENV_VAR=secret-name:VERSION`` joined by commas, sorted by env var name.

    With a ``store``, each ``latest`` is pinned to the version number it points at now, so
    the revision (and a later rollback to it) keeps exactly these secret values.
    """
    secrets = sorted(service.secrets.values(), key=lambda s: s.name)
    versions = {s.name: s.version for s in secrets}
    if store is not None:
        refs = {(s.secret, s.version) for s in secrets}
        resolved = resolve_references(store, refs)
        problems = [r for r in resolved.values() if not r.usable]
        if problems:
            first = problems[0]
            assert first.problem is not None
            raise RollsafeError(
                f"cannot pin {first.secret}:{first.version}: {first.problem[1]}",
                hint=first.problem[2],
            )
        for s in secrets:
            info = resolved[(s.secret, s.version)].info
            assert info is not None
            versions[s.name] = str(info.version)
    return ",".join(f"{s.name}={s.secret}:{versions[s.name]}" for s in secrets)
