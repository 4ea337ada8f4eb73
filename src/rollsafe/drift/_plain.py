"""Comparing plain values: declared but absent, different, undeclared, the contract.

Plain values are compared exactly but shown by length only: a value in a revision's env may
be a secret pasted where it should not be.
"""

from __future__ import annotations

import json

from rollsafe.drift._describe import Reporter, absent_side, mapped_side, plain_side
from rollsafe.drift.model import DriftKind, Fix, Side
from rollsafe.manifest import ResolvedService
from rollsafe.platforms import RevisionInfo
from rollsafe.startup.contract import CONTRACT_VAR, contract_from_service

__all__ = ["MANAGED_ENV", "PlainComparer"]

#: variables rollsafe sets itself on every revision it deploys (not ``unmanaged_env``)
MANAGED_ENV = frozenset({CONTRACT_VAR})


class PlainComparer(Reporter):
    """``missing_env``, ``value_mismatch`` and ``unmanaged_env`` of one revision."""

    def plain(self, svc: ResolvedService, rev: RevisionInfo) -> None:
        """Every plain comparison of ``rev``: declared values, undeclared keys, the contract."""
        for key in svc.env:
            self._declared_env(svc, rev, key)
        self._undeclared(svc, rev)
        self._contract(svc, rev)

    def _declared_env(self, svc: ResolvedService, rev: RevisionInfo, key: str) -> None:
        var = svc.env[key]
        manifest: Side = {"type": "env", "length": len(var.value), "line": var.line}
        common = {"manifest": manifest, "store": None, "line": var.line}
        source = f"run://{svc.name}/{rev.name}"
        if key in rev.env:
            if rev.env[key] == var.value:
                return
            self.add(
                DriftKind.VALUE_MISMATCH,
                svc,
                key,
                f"{rev.name} sets {key} to a value that differs from the manifest's "
                f"(deployed: {len(rev.env[key])} characters, manifest: {len(var.value)})",
                deployed=plain_side(rev, rev.env[key]),
                hint="deploy the manifest's value, or change the manifest",
                fix=Fix(
                    self.cmd.deploy(svc.name),
                    self.cmd.update(svc.name, update_env={key: var.value}),
                ),
                source=source,
                **common,
            )
        elif key in rev.secrets:
            ref = rev.secrets[key]
            gcloud = self.cmd.update(svc.name, remove_secrets=[key], update_env={key: var.value})
            self.add(
                DriftKind.VALUE_MISMATCH,
                svc,
                key,
                f"{key} is declared as a plain value but {rev.name} reads it from secret "
                f"{ref.secret}:{ref.version}",
                deployed=mapped_side(rev, ref),
                hint="declare it under `secrets:` if it is one, or deploy the plain value",
                fix=Fix(self.cmd.deploy(svc.name), gcloud),
                source=source,
                **common,
            )
        else:
            self.add(
                DriftKind.MISSING_ENV,
                svc,
                key,
                f"{key} is declared in the manifest but {rev.name} does not set it",
                deployed=absent_side(rev),
                hint="a deploy sets every declared variable",
                fix=Fix(
                    self.cmd.deploy(svc.name),
                    self.cmd.update(svc.name, update_env={key: var.value}),
                ),
                source=source,
                **common,
            )

    def _undeclared(self, svc: ResolvedService, rev: RevisionInfo) -> None:
        declared = set(svc.env) | set(svc.secrets)
        source = f"run://{svc.name}/{rev.name}"
        hint = (
            "declare it in the manifest, or remove it (a deploy sets exactly the manifest's "
            "variables)"
        )
        for key, value in sorted(rev.env.items()):
            if key in declared or key in MANAGED_ENV:
                continue
            self.add(
                DriftKind.UNMANAGED_ENV,
                svc,
                key,
                f"{rev.name} sets {key}, which the manifest does not declare",
                manifest=None,
                store=None,
                deployed=plain_side(rev, value),
                hint=hint,
                fix=Fix(self.cmd.deploy(svc.name), self.cmd.update(svc.name, remove_env=[key])),
                source=source,
            )
        for key, ref in sorted(rev.secrets.items()):
            if key in declared:
                continue
            self.add(
                DriftKind.UNMANAGED_ENV,
                svc,
                key,
                f"{rev.name} maps {key} to secret {ref.secret}:{ref.version}, which the manifest "
                "does not declare",
                manifest=None,
                store=self.store.ref(ref.secret, ref.version).side(),
                deployed=mapped_side(rev, ref),
                hint=hint,
                fix=Fix(self.cmd.deploy(svc.name), self.cmd.update(svc.name, remove_secrets=[key])),
                source=source,
            )

    def _contract(self, svc: ResolvedService, rev: RevisionInfo) -> None:
        """The start-up contract a deploy set: the rules the service checks itself against."""
        text = rev.env.get(CONTRACT_VAR)
        if not text:
            return  # not deployed by rollsafe: nothing to compare
        # compared as parsed JSON both ways: tuples in rule arguments come back as lists
        expected = json.loads(contract_from_service(self.env, svc.name).to_json())
        try:
            same = json.loads(text) == expected
        except ValueError:
            same = False
        if same:
            return
        self.add(
            DriftKind.VALUE_MISMATCH,
            svc,
            CONTRACT_VAR,
            f"the start-up contract in {rev.name} differs from the manifest's: keys or rules "
            "changed since the deploy, so the service checks itself against old rules",
            manifest={"type": "contract", "line": svc.line},
            store=None,
            deployed=plain_side(rev, text),
            hint="deploy to bring the service's own checks up to date",
            fix=Fix(self.cmd.deploy(svc.name)),
            source=f"run://{svc.name}/{rev.name}",
        )
