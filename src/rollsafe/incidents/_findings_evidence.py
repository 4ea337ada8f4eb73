"""What rollsafe's own judges say now, and what the manifest sets.

- drift (``rollsafe.drift.run_drift``): one ``drift`` evidence per finding
  (``drift:KIND/KEY``); drift is read now, not as it was in the window, and the excerpt says
  so (``now: ...``).
- check (``rollsafe.check.engine.run_check``): one ``check`` evidence per failing rule
  (``check:RULE/KEY``).
- the manifest: ``strict``, each service's ``monitor.rollback_within`` and its declared
  secret mappings (``manifest:LINE``), the settings the report's factors and actions name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rollsafe.check.engine import run_check
from rollsafe.drift import default_read_budget, run_drift
from rollsafe.incidents._gather import Pile, reading
from rollsafe.incidents.model import EvidenceKind
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.platforms import Platform
from rollsafe.stores import SecretStore

__all__ = ["add_check", "add_drift", "add_manifest"]

_SM_SOURCE = re.compile(r"sm://([^/]+)/versions/(\d+)")
#: a rule that needs another environment's value, which a report does not read
_NOT_COMPARED = "could not compare with"


def add_drift(
    env: ResolvedEnvironment,
    store: SecretStore,
    platform: Platform,
    services: Sequence[str],
    pile: Pile,
) -> None:
    """The drift of ``services`` as it is now."""
    with reading(pile, "drift (manifest, secret store and serving revisions)"):
        report = run_drift(
            env,
            store,
            platform,
            services=services,
            reads_per_minute=default_read_budget(store),
        )
        for finding in report.findings:
            fix = None
            if finding.fix is not None:
                fix = finding.fix.rollsafe or finding.fix.gcloud
            pile.add(
                EvidenceKind.DRIFT,
                None,
                f"drift:{finding.kind.value}/{finding.key}",
                f"now: {finding.service}: {finding.message}",
                {
                    "kind": finding.kind.value,
                    "service": finding.service,
                    "key": finding.key,
                    "severity": finding.severity.value,
                    "message": finding.message,
                    "manifest": finding.manifest,
                    "store": finding.store,
                    "deployed": finding.deployed,
                    "fix": fix,
                },
            )


def add_check(
    env: ResolvedEnvironment, store: SecretStore, services: Sequence[str], pile: Pile
) -> None:
    """The rules that fail now for ``services`` (their values as the store holds them)."""
    with reading(pile, "rollsafe check (the manifest's rules on the store's values)"):
        report = run_check(env, store, services=services)
        for finding in report.findings:
            if finding.message.startswith(_NOT_COMPARED):
                continue
            found = _SM_SOURCE.fullmatch(finding.source or "")
            pile.add(
                EvidenceKind.CHECK,
                None,
                f"check:{finding.rule}/{finding.key}",
                f"now: {finding.service} {finding.key} {finding.rule}: {finding.message}",
                {
                    "rule": finding.rule,
                    "service": finding.service,
                    "key": finding.key,
                    "severity": finding.severity.value,
                    "message": finding.message,
                    "secret": found.group(1) if found else None,
                    "version": int(found.group(2)) if found else None,
                },
            )


def _source(line: int | None) -> str:
    return f"manifest:{line}" if line else "manifest"


def add_manifest(env: ResolvedEnvironment, services: Sequence[str], pile: Pile) -> None:
    """``manifest`` evidence: strictness, automatic rollback, secret mappings."""
    where = env.manifest_path.name

    def add(key: str, value: object, line: int | None, text: str, service: str | None) -> None:
        pile.add(
            EvidenceKind.MANIFEST,
            None,
            _source(line),
            f"{where}: {text}",
            {
                "env": env.name,
                "strict": env.strict,
                "key": key,
                "value": value,
                "line": line,
                # which service a per-service setting is of (None: the environment's)
                "service": service,
            },
        )

    strict = str(env.strict).lower()
    add("strict", env.strict, env.line, f"environment {env.name}: strict: {strict}", None)
    for name in services:
        svc = env.services[name]
        within = svc.monitor.rollback_within
        shown = f"{within:g}s" if within else "off"
        add(
            "monitor.rollback_within",
            within,
            svc.line,
            f"service {name}: monitor.rollback_within: {shown}",
            name,
        )
        for sec in svc.secrets.values():
            add(
                f"secrets.{sec.name}",
                sec.reference,
                sec.line,
                f"service {name}: {sec.name} from {sec.reference}",
                name,
            )
