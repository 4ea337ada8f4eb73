"""The plan of a deploy: the revision spec generated from the manifest, secrets pinned."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rollsafe.check.resolve import ResolvedReference, resolve_references
from rollsafe.manifest import ResolvedEnvironment, ResolvedHealth, ResolvedService
from rollsafe.platforms import (
    Platform,
    RevisionInfo,
    RevisionSpec,
    SecretRef,
    ServiceInfo,
    StartupProbe,
)
from rollsafe.startup.contract import CONTRACT_VAR, contract_from_service
from rollsafe.stores import SecretStore

__all__ = ["DeployPlan", "build_plan", "revision_name", "startup_probe"]

ANNOTATION_DEPLOY_ID = "rollsafe.dev/deploy-id"
ANNOTATION_CHECKS = "rollsafe.dev/checks"
ANNOTATION_REASON = "rollsafe.dev/reason"


def startup_probe(health: ResolvedHealth) -> StartupProbe:
    """The HTTP startup probe on the health path (``health.startup`` tunes it), so that the
    platform itself keeps a revision whose health fails at start from becoming ready."""
    tuning = health.startup
    return StartupProbe(
        path=health.path,
        initial_delay=tuning.initial_delay,
        period=tuning.period,
        timeout=tuning.timeout,
        failure_threshold=tuning.failure_threshold,
    )


@dataclass(frozen=True)
class DeployPlan:
    """What the deploy will create, and what serves now."""

    env: ResolvedEnvironment
    service: ResolvedService
    spec: RevisionSpec
    serving: ServiceInfo | None
    serving_revision: RevisionInfo | None
    unresolved: tuple[ResolvedReference, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def previous_split(self) -> dict[str, int]:
        return self.serving.split() if self.serving else {}

    def with_checks(self, checks: str) -> DeployPlan:
        """The same plan, its revision annotated with another ``rollsafe.dev/checks``."""
        annotations = {**self.spec.annotations, ANNOTATION_CHECKS: checks}
        return replace(self, spec=replace(self.spec, annotations=annotations))

    def diff(self) -> list[str]:
        """How the new revision differs from the serving one (names and versions only)."""
        old = self.serving_revision
        old_env = old.env if old else {}
        old_secrets = old.secrets if old else {}
        lines: list[str] = []
        for name in sorted(set(self.spec.env) | set(old_env)):
            new_value, old_value = self.spec.env.get(name), old_env.get(name)
            if new_value == old_value:
                continue
            shown_new = "(contract)" if name == CONTRACT_VAR else new_value
            shown_old = "(contract)" if name == CONTRACT_VAR else old_value
            if old_value is None:
                lines.append(f"+ env {name}={shown_new}")
            elif new_value is None:
                lines.append(f"- env {name}")
            else:
                lines.append(f"~ env {name}: {shown_old} -> {shown_new}")
        for name in sorted(set(self.spec.secrets) | set(old_secrets)):
            new_ref, old_ref = self.spec.secrets.get(name), old_secrets.get(name)
            if new_ref == old_ref:
                continue
            if old_ref is None and new_ref is not None:
                lines.append(f"+ secret {name}={new_ref.secret}:{new_ref.version}")
            elif new_ref is None and old_ref is not None:
                lines.append(f"- secret {name} (was {old_ref.secret}:{old_ref.version})")
            elif new_ref is not None and old_ref is not None:
                lines.append(
                    f"~ secret {name}: {old_ref.secret}:{old_ref.version} -> "
                    f"{new_ref.secret}:{new_ref.version}"
                )
        if old is not None and (self.spec.image or None) != old.image and self.spec.image:
            lines.append(f"~ image: {old.image} -> {self.spec.image}")
        return lines


def revision_name(service: str, existing: int, deploy_id: str) -> str:
    """``SERVICE-NNNNN-xyz``, as Cloud Run names revisions."""
    return f"{service}-{existing + 1:05d}-{deploy_id[-3:]}"


def build_plan(
    env: ResolvedEnvironment,
    service: ResolvedService,
    *,
    platform: Platform,
    store: SecretStore,
    deploy_id: str,
    checks: str,
    reason: str | None = None,
    image: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> DeployPlan:
    """Generate the revision spec: env values, pinned secrets, the contract, annotations."""
    refs = {(s.secret, s.version) for s in service.secrets.values()}
    resolved = resolve_references(store, refs)
    secrets: dict[str, SecretRef] = {}
    for name, sec in sorted(service.secrets.items()):
        ref = resolved[(sec.secret, sec.version)]
        # pin `latest` to today's number so a rollback restores these exact values
        version = str(ref.info.version) if ref.usable and ref.info else sec.version
        secrets[name] = SecretRef(sec.secret, version)
    env_values = {name: var.value for name, var in service.env.items()}
    env_values[CONTRACT_VAR] = contract_from_service(env, service.name).to_json()
    env_values.update(extra_env or {})
    serving = platform.get_service(service.name)
    revisions = platform.list_revisions(service.name) if serving else []
    primary = (
        max(serving.split().items(), key=lambda kv: kv[1])[0]
        if serving and serving.split()
        else None
    )
    serving_revision = next((r for r in revisions if r.name == primary), None)
    annotations = {ANNOTATION_DEPLOY_ID: deploy_id, ANNOTATION_CHECKS: checks}
    if reason:
        annotations[ANNOTATION_REASON] = reason[:256]
    spec = RevisionSpec(
        service=service.name,
        revision=revision_name(service.name, len(revisions), deploy_id),
        image=image or service.image,
        command=service.command if env.platform == "local" else None,
        workdir=str(service.workdir) if service.workdir and env.platform == "local" else None,
        env=env_values,
        secrets=secrets,
        annotations=annotations,
        health_path=service.health.path,
        startup_probe=startup_probe(service.health),
    )
    unresolved = tuple(r for r in resolved.values() if not r.usable)
    return DeployPlan(env, service, spec, serving, serving_revision, unresolved)
