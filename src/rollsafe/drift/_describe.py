"""How a finding describes a difference: its three sides, and the commands that fix it.

A side holds secret names, version numbers, states and, for plain values, their length:
never a value (a plain variable may hold a secret pasted where it should not be). Fix
commands carry secret names, version numbers and the manifest's plain values (which live in
the manifest already); never a secret's value.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rollsafe.drift._observe import RefState, StoreView
from rollsafe.drift.model import DriftFinding, DriftKind, Fix, Side
from rollsafe.manifest import ResolvedEnvironment, ResolvedSecret, ResolvedService
from rollsafe.platforms import RevisionInfo, SecretRef

__all__ = [
    "CommandBuilder",
    "Reporter",
    "absent_side",
    "mapped_side",
    "plain_side",
    "secret_side",
    "target_version",
]


def secret_side(sec: ResolvedSecret) -> Side:
    """The manifest side of a declared secret."""
    return {"type": "secret", "secret": sec.secret, "version": sec.version, "line": sec.line}


def mapped_side(rev: RevisionInfo, ref: SecretRef) -> Side:
    """The deployed side of a secret reference in a revision."""
    return {"revision": rev.name, "type": "secret", "secret": ref.secret, "version": ref.version}


def plain_side(rev: RevisionInfo, value: str) -> Side:
    """The deployed side of a plain value: its length only."""
    return {"revision": rev.name, "type": "env", "length": len(value)}


def absent_side(rev: RevisionInfo) -> Side:
    """The deployed side of a variable the revision does not set."""
    return {"revision": rev.name, "type": "absent"}


def target_version(sec: ResolvedSecret, declared: RefState) -> int | None:
    """The version a deploy would pin for ``sec``: its number, or ``latest``'s enabled one.

    A deploy pins ``latest`` to the newest version; when that one is disabled (a rotation
    taken back) the newest enabled one is what a service can read, so that is the target.
    """
    if sec.version != "latest":
        return int(sec.version)
    return declared.latest_enabled.version if declared.latest_enabled else None


class CommandBuilder:
    """Builds the fix commands of one environment."""

    def __init__(self, env: ResolvedEnvironment) -> None:
        self.env = env
        path = env.manifest_path
        # the default manifest needs no -f; anything else must be named to be found
        self._file = "" if path == Path("rollsafe.yaml") else f" -f {shlex.quote(str(path))}"
        self._where = (
            f" --region {shlex.quote(env.region)} --project {shlex.quote(env.gcp_project)}"
        )

    def deploy(self, service: str) -> str:
        """``rollsafe deploy``: a new revision from the manifest, secrets pinned, verified."""
        return f"rollsafe deploy{self._file} --env {self.env.name} --service {service}"

    def check(self, service: str) -> str:
        return f"rollsafe check{self._file} --env {self.env.name} --service {service}"

    def update(
        self,
        service: str,
        *,
        update_secrets: dict[str, str] | None = None,
        remove_secrets: list[str] | None = None,
        update_env: dict[str, str] | None = None,
        remove_env: list[str] | None = None,
    ) -> str:
        """``gcloud run services update SERVICE ...`` with the given changes."""
        parts = [f"gcloud run services update {shlex.quote(service)}"]
        if remove_env:
            parts.append(f"--remove-env-vars {shlex.quote(','.join(remove_env))}")
        if remove_secrets:
            parts.append(f"--remove-secrets {shlex.quote(','.join(remove_secrets))}")
        if update_env:
            parts.append(f"--update-env-vars {_env_list(update_env)}")
        if update_secrets:
            pairs = ",".join(f"{k}={ref}" for k, ref in update_secrets.items())
            parts.append(f"--update-secrets {shlex.quote(pairs)}")
        return " ".join(parts) + self._where

    def access(self, service: str, *, public: bool) -> str:
        """``gcloud run services add-iam-policy-binding`` (or ``remove-``) for ``allUsers``."""
        verb = "add" if public else "remove"
        return (
            f"gcloud run services {verb}-iam-policy-binding {shlex.quote(service)} "
            f"--member=allUsers --role=roles/run.invoker{self._where}"
        )

    def map_secret(self, service: str, key: str, secret: str, version: int | str) -> Fix:
        """Map ``key`` to ``secret:version`` (a deploy does it with the version pinned)."""
        gcloud = self.update(service, update_secrets={key: f"{secret}:{version}"})
        return Fix(self.deploy(service), gcloud)

    def add_version(self, secret: str) -> str:
        return (
            f"gcloud secrets versions add {shlex.quote(secret)} --data-file=- "
            f"--project {shlex.quote(self.env.gcp_project)}"
        )

    def enable_version(self, secret: str, version: int) -> str:
        return (
            f"gcloud secrets versions enable {version} --secret={shlex.quote(secret)} "
            f"--project {shlex.quote(self.env.gcp_project)}"
        )


def _env_list(values: dict[str, str]) -> str:
    """``--update-env-vars`` argument, switching gcloud's delimiter when a value has a comma."""
    joined = [f"{k}={v}" for k, v in values.items()]
    if not any("," in item for item in joined):
        return shlex.quote(",".join(joined))
    # gcloud's alternate-delimiter syntax: ^DELIM^k=v<DELIM>k=v (see `gcloud topic escaping`)
    for delim in ("@", "|", "#", "~", ";"):
        if not any(delim in item for item in joined):
            return shlex.quote(f"^{delim}^" + delim.join(joined))
    return shlex.quote(",".join(joined))  # pragma: no cover - every delimiter taken


class Reporter:
    """Holds what every comparison needs and turns a difference into a ``DriftFinding``."""

    def __init__(
        self,
        env: ResolvedEnvironment,
        store: StoreView,
        commands: CommandBuilder,
        emit: Callable[[DriftFinding], None],
    ) -> None:
        self.env = env
        self.store = store
        self.cmd = commands
        self.emit = emit

    def add(self, kind: DriftKind, svc: ResolvedService, key: str, message: str, **kw: Any) -> None:
        """Emit a finding of ``kind``; its severity and line default to the kind's and the
        service's."""
        kw.setdefault("severity", kind.severity)
        kw.setdefault("line", svc.line)
        self.emit(DriftFinding(kind=kind, service=svc.name, key=key, message=message, **kw))
