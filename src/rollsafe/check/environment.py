"""The one check that ``rollsafe check`` and deploy's preflight both run.

Same inputs, same findings: the environment's rules against its store, and ``differs_from``
against the other environments of the same manifest (compared by SHA-256 digest; values
never travel).
"""

from __future__ import annotations

from collections.abc import Iterable

from rollsafe.check.engine import run_check, select_services
from rollsafe.check.other_envs import OtherEnvironmentDigests
from rollsafe.check.report import CheckReport
from rollsafe.manifest import LoadedManifest, ResolvedEnvironment, load_manifest
from rollsafe.rules import RULES
from rollsafe.stores import SecretStore

__all__ = ["check_environment"]


def _compares_across(env: ResolvedEnvironment, services: list[str]) -> bool:
    """Does any chosen key carry a rule that reads another environment (``differs_from``)?"""
    for name in services:
        svc = env.services[name]
        rule_lists = [v.rules for v in svc.env.values()] + [s.rules for s in svc.secrets.values()]
        if any(RULES[ref.name].refers_to == "env" for rules in rule_lists for ref in rules):
            return True
    return False


def check_environment(
    env: ResolvedEnvironment,
    store: SecretStore,
    *,
    services: Iterable[str] | None = None,
    manifest: LoadedManifest | None = None,
) -> CheckReport:
    """Check ``services`` (default: all) of ``env`` as ``rollsafe check`` does.

    ``differs_from`` reads the other environment's value through that environment's own
    store (``store:``, else Secret Manager of its project: the emulator's on ``local``).
    ``manifest`` is the manifest ``env`` came from; it is loaded from ``env.manifest_path``
    when a rule needs another environment and it is not given.
    """
    names = select_services(env, services)
    if not _compares_across(env, names):
        return run_check(env, store, services=names)
    others = OtherEnvironmentDigests(manifest or load_manifest(env.manifest_path))
    try:
        return run_check(env, store, services=names, other_env_hashes=others)
    finally:
        others.close()
