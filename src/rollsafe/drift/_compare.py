"""Comparing the serving revisions of a service with the manifest and the store.

Secrets here: mapped or not, to which secret and version, readable by the next instance
start or not; plain values in ``_plain.py``. Each finding names the three sides and its fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rollsafe.drift._describe import (
    CommandBuilder,
    absent_side,
    mapped_side,
    plain_side,
    secret_side,
    target_version,
)
from rollsafe.drift._observe import RefState, ServiceView, StoreView
from rollsafe.drift._plain import PlainComparer
from rollsafe.drift.model import DriftFinding, DriftKind, Fix, Side
from rollsafe.findings import Severity
from rollsafe.manifest import ResolvedEnvironment, ResolvedSecret, ResolvedService
from rollsafe.platforms import RevisionInfo, SecretRef
from rollsafe.rules import RuleRef
from rollsafe.stores import VersionState

__all__ = ["Comparer", "WeakCandidate"]


def _number(version: str) -> int | None:
    """A version as a number (Cloud Run takes ``7`` and ``07`` alike); ``latest`` is None."""
    return int(version) if version.isdigit() else None


@dataclass(frozen=True, slots=True)
class WeakCandidate:
    """A pinned, enabled version a serving revision reads for a declared secret: the value
    to judge against the key's rules once every such version has been fetched."""

    service: ResolvedService
    key: str
    revision: str
    secret: str
    version: int
    rules: tuple[RuleRef, ...]
    line: int | None
    manifest: Side
    store: Side
    deployed: Side


class Comparer(PlainComparer):
    """Compares the serving revisions of services with the manifest and the store.

    Comparing collects ``weak`` candidates: the pinned versions whose values the engine
    fetches in one batch and judges afterwards.
    """

    def __init__(
        self,
        env: ResolvedEnvironment,
        store: StoreView,
        commands: CommandBuilder,
        emit: Callable[[DriftFinding], None],
    ) -> None:
        super().__init__(env, store, commands, emit)
        self.weak: list[WeakCandidate] = []

    # -- a service --
    def service(self, svc: ResolvedService, view: ServiceView) -> None:
        """Compare every serving revision of ``svc`` (a traffic split has several), and the
        service's access with the manifest's ``public``."""
        if view.public is not None and view.public != svc.public:
            self._access(svc, view.public)
        if view.info is None or not view.serving:
            what = "does not exist" if view.info is None else "has no revision serving traffic"
            self.add(
                DriftKind.NOT_DEPLOYED,
                svc,
                "*",
                f"service {svc.name} {what} on {self.env.platform} ({self.env.region})",
                manifest={"type": "service", "line": svc.line},
                store=None,
                deployed=None,
                hint="deploy it from the manifest",
                fix=Fix(self.cmd.deploy(svc.name)),
                source=f"run://{svc.name}",
            )
            return
        for revision, _percent in view.serving:
            self.revision(svc, revision)

    def _access(self, svc: ResolvedService, public: bool) -> None:
        """``access_mismatch``: an error when the service is open and the manifest says
        private (anyone can call it); a warning the other way (callers get 403)."""
        if public:
            message = (
                f"service {svc.name} is public (allUsers has roles/run.invoker) but the "
                "manifest says public: false: anyone can call it without an ID token"
            )
            hint = (
                "take the allUsers binding away, or set `public: true` in the manifest if "
                "the service is meant to be open"
            )
        else:
            message = (
                f"service {svc.name} is private (no allUsers invoker binding) but the manifest "
                "says public: true: anonymous callers get 403"
            )
            hint = (
                "grant allUsers the invoker role, or set `public: false` in the manifest if "
                "callers are meant to need an ID token"
            )
        hint += (
            "; `rollsafe deploy` sets access only when it creates a service, never on an "
            "existing one"
        )
        self.add(
            DriftKind.ACCESS_MISMATCH,
            svc,
            "public",
            message,
            severity=Severity.ERROR if public else Severity.WARNING,
            manifest={"type": "access", "public": svc.public, "line": svc.line},
            store=None,
            deployed={"type": "access", "public": public},
            hint=hint,
            fix=Fix(None, self.cmd.access(svc.name, public=svc.public)),
            source=f"run://{svc.name}",
        )

    def revision(self, svc: ResolvedService, rev: RevisionInfo) -> None:
        for key, ref in sorted(rev.secrets.items()):
            self._mapped_ref(svc, rev, key, ref)
        for key, sec in svc.secrets.items():
            self._declared_secret(svc, rev, key, sec)
        self.plain(svc, rev)

    # -- every mapped reference: can an instance start read it? --
    def _mapped_ref(
        self, svc: ResolvedService, rev: RevisionInfo, key: str, ref: SecretRef
    ) -> None:
        state = self.store.ref(ref.secret, ref.version)
        sec = svc.secrets.get(key)
        line = sec.line if sec else svc.line
        manifest = secret_side(sec) if sec else None
        problem = state.problem()
        if problem is not None:
            if sec is not None:
                fix, hint = self._map_fix(svc, key, sec)
            else:
                gcloud = self.cmd.update(svc.name, remove_secrets=[key])
                fix, hint = Fix(self.cmd.deploy(svc.name), gcloud), "remove the mapping"
            self.add(
                DriftKind.MISSING_IN_STORE,
                svc,
                key,
                f"{rev.name} maps {key} to {ref.secret}:{ref.version}, but {problem}: the next "
                "instance start (scale-up, restart, crash) will fail",
                manifest=manifest,
                store=state.side(),
                deployed=mapped_side(rev, ref),
                hint=hint,
                fix=fix,
                source=state.source,
                line=line,
            )
        newer = self.store.newer_than(ref.secret, rev) if ref.version == "latest" else []
        if newer:
            # pin what the manifest means, or, for a key it does not declare, today's latest
            if sec is not None and sec.secret == ref.secret:
                version = target_version(sec, self.store.ref(sec.secret, sec.version))
            else:
                version = state.latest_enabled.version if state.latest_enabled else None
            numbers = ", ".join(str(v.version) for v in newer)
            self.add(
                DriftKind.STALE_LATEST,
                svc,
                key,
                f"{rev.name} maps {key} to {ref.secret}:latest, and version(s) {numbers} were "
                "added after the revision was created: instances started before and after "
                "read different values, and a restart silently changes the config",
                manifest=manifest,
                store=state.side(),
                deployed=mapped_side(rev, ref),
                hint="pin the version: a deploy pins `latest` to its number",
                fix=self.cmd.map_secret(svc.name, key, ref.secret, version)
                if version
                else Fix(self.cmd.deploy(svc.name)),
                source=f"run://{svc.name}/{rev.name}",
                line=line,
            )

    # -- every declared secret: mapped, to the right secret and version? --
    def _map_fix(
        self, svc: ResolvedService, key: str, sec: ResolvedSecret, *, plain: bool = False
    ) -> tuple[Fix, str]:
        """How to map ``key`` as the manifest declares it (``plain``: replacing a plain value)."""
        deploy = self.cmd.deploy(svc.name)
        declared = self.store.ref(sec.secret, sec.version)
        version = target_version(sec, declared)
        if not declared.exists or version is None:
            what = "does not exist" if not declared.exists else "has no enabled version"
            hint = f"secret '{sec.secret}' {what}: add a version, then deploy"
            return Fix(deploy, self.cmd.add_version(sec.secret)), hint
        if sec.version != "latest" and not declared.usable:
            pinned = f"the manifest pins version {version} of '{sec.secret}'"
            if declared.info is None:
                return Fix(deploy), f"{pinned}, which does not exist: pin an existing one"
            if declared.info.state is VersionState.DISABLED:
                hint = f"{pinned}, which is disabled: enable it, or pin another"
                return Fix(deploy, self.cmd.enable_version(sec.secret, version)), hint
            return Fix(deploy), f"{pinned}, which is destroyed: pin another"
        gcloud = self.cmd.update(
            svc.name,
            remove_env=[key] if plain else None,
            update_secrets={key: f"{sec.secret}:{version}"},
        )
        hint = f"map {key} to {sec.secret}:{version} (a deploy pins that version)"
        return Fix(deploy, gcloud), hint

    def _declared_secret(
        self, svc: ResolvedService, rev: RevisionInfo, key: str, sec: ResolvedSecret
    ) -> None:
        declared = self.store.ref(sec.secret, sec.version)
        common = {"manifest": secret_side(sec), "line": sec.line}
        ref = rev.secrets.get(key)
        source = f"run://{svc.name}/{rev.name}"
        if ref is None:
            fix, hint = self._map_fix(svc, key, sec, plain=key in rev.env)
            if key in rev.env:
                self.add(
                    DriftKind.SECRET_AS_PLAIN_VALUE,
                    svc,
                    key,
                    f"{key} is declared as secret '{sec.secret}' but {rev.name} sets it as a "
                    "plain value, readable by anyone who can read the service's configuration",
                    store=declared.side(),
                    deployed=plain_side(rev, rev.env[key]),
                    hint="treat the value as exposed: add a new version (rotate), then map "
                    "the secret from Secret Manager",
                    fix=fix,
                    source=source,
                    **common,
                )
                return
            jwt = svc.jwt_secret is not None and key in svc.jwt_secret.names
            what = " (the service's JWT signing secret)" if jwt else ""
            self.add(
                DriftKind.UNMAPPED_SECRET,
                svc,
                key,
                f"{key}{what} is declared in the manifest as {sec.reference} but "
                f"{rev.name} does not map it",
                store=declared.side(),
                deployed=absent_side(rev),
                hint=hint,
                fix=fix,
                source=source,
                **common,
            )
            return
        state = self.store.ref(ref.secret, ref.version)
        if ref.secret != sec.secret:
            fix, hint = self._map_fix(svc, key, sec)
            self.add(
                DriftKind.WRONG_SECRET,
                svc,
                key,
                f"{rev.name} maps {key} to secret '{ref.secret}', the manifest declares "
                f"'{sec.secret}'",
                store=declared.side(),
                deployed=mapped_side(rev, ref),
                hint=hint,
                fix=fix,
                source=source,
                **common,
            )
        elif state.usable:
            self._version(svc, rev, key, sec, ref, declared)
        if state.usable and state.info is not None:
            self.weak.append(
                WeakCandidate(
                    svc,
                    key,
                    rev.name,
                    ref.secret,
                    state.info.version,
                    sec.rules,
                    sec.line,
                    secret_side(sec),
                    state.side(),
                    mapped_side(rev, ref),
                )
            )

    def _version(
        self,
        svc: ResolvedService,
        rev: RevisionInfo,
        key: str,
        sec: ResolvedSecret,
        ref: SecretRef,
        declared: RefState,
    ) -> None:
        if sec.version == "latest":
            if ref.version == "latest":
                return  # as declared; stale_latest judges whether it moved since
            expected = declared.latest_enabled
            if expected is None or _number(ref.version) == expected.version:
                return
            message = (
                f"{rev.name} pins {key} to {ref.secret}:{ref.version}, but the manifest says "
                f"`latest`, which is now version {expected.version}: a newer version was "
                "added since the deploy (a rotation not rolled out) and the service still "
                "reads the old value"
            )
        elif _number(ref.version) == _number(sec.version):
            return
        elif ref.version == "latest":
            now = declared.latest.version if declared.latest else "none"
            message = (
                f"{rev.name} maps {key} to {ref.secret}:latest (now version {now}), but the "
                f"manifest pins version {sec.version}"
            )
        else:
            message = (
                f"{rev.name} pins {key} to {ref.secret}:{ref.version}, but the manifest pins "
                f"version {sec.version}"
            )
        fix, hint = self._map_fix(svc, key, sec)
        self.add(
            DriftKind.WRONG_VERSION,
            svc,
            key,
            message,
            manifest=secret_side(sec),
            store=declared.side(),
            deployed=mapped_side(rev, ref),
            hint=hint,
            fix=fix,
            source=f"run://{svc.name}/{rev.name}",
            line=sec.line,
        )
