"""``rollsafe rollback`` and ``rollsafe status``: acting on and reading what serves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rollsafe.deploy._auth import probe_client, tokens_for
from rollsafe.deploy.cancel import shielded
from rollsafe.deploy.events import DeployListener
from rollsafe.deploy.health import HealthSpec, ProbeResult, probe, verify
from rollsafe.deploy.pipeline import DeployResult, health_spec
from rollsafe.deploy.reconcile import reconcile
from rollsafe.deploy.rollback import RollbackOutcome
from rollsafe.deploy.stages import Compensation, Outcome, Stage, run_compensation
from rollsafe.errors import RollsafeError, UsageError
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.platforms import Platform, PlatformError
from rollsafe.platforms.idtoken import IdTokens
from rollsafe.state.journal import DeployJournal, DeployRecord

__all__ = ["ServiceStatus", "manual_rollback", "service_status"]


@contextmanager
def _tokens(platform: Platform, tokens: IdTokens | None) -> Iterator[IdTokens]:
    """``tokens``, or tokens of ``platform``'s own for the call (closed after it)."""
    if tokens is not None:
        yield tokens
        return
    with tokens_for(platform) as own:
        yield own


def _rollback_target(
    env: ResolvedEnvironment, service: str, platform: Platform, journal: DeployJournal
) -> str:
    """The newest verified revision deployed before the one that serves now.

    Older than what serves, not merely other: after a rollback, a second rollback goes
    further back instead of forward to the revision the first one left.
    """
    current = platform.get_service(service)
    if current is None:
        raise RollsafeError(f"service {service} does not exist in {env.name}")
    serving = current.split()
    ready = {r.name for r in platform.list_revisions(service) if r.ready}
    verified = [
        r.revision
        for r in journal.history(env.name, service)
        if r.outcome == Outcome.SUCCEEDED and r.revision
    ]
    # the deploys down to (and including) the newest one of a serving revision are newer
    older = next((i + 1 for i, revision in enumerate(verified) if revision in serving), 0)
    for revision in verified[older:]:
        if revision in ready and serving.get(revision) != 100:
            return revision
    raise RollsafeError(
        f"no earlier verified revision of {service} in {env.name} to roll back to",
        hint="name one with --to REVISION (see `rollsafe history`)",
    )


def _check_target(service: str, to: str, platform: Platform) -> None:
    """Refuse, before any change, a revision that does not exist or cannot serve."""
    revisions = platform.list_revisions(service)
    ready = ", ".join(r.name for r in revisions if r.ready) or "none"
    found = next((r for r in revisions if r.name == to), None)
    if found is None:
        raise UsageError(
            f"revision {to} of {service} does not exist; nothing was changed",
            hint=f"ready revisions: {ready}",
        )
    if not found.ready:
        why = found.message.splitlines()[0] if found.message else "not ready"
        raise RollsafeError(
            f"revision {to} cannot serve traffic ({why}); nothing was changed",
            hint=f"ready revisions: {ready}",
        )


def _reason(reason: str | None, target: str) -> str:
    return f"{reason}: rollback to {target}" if reason else f"rollback to {target}"


def manual_rollback(
    env: ResolvedEnvironment,
    service: str,
    *,
    to: str | None,
    platform: Platform,
    journal: DeployJournal,
    listener: DeployListener | None = None,
    tokens: IdTokens | None = None,
    reason: str | None = None,
) -> DeployResult:
    """Give ``to`` (default: the last verified revision not serving) all traffic, verify it.

    The verification probes carry ID tokens from ``tokens`` (default: ``platform``'s own).
    ``reason`` is journaled before the target (``history`` shows it), e.g. the monitor's
    ``monitor: ServiceDown fired 42 s after deploy D``.
    """
    if service not in env.services:
        raise UsageError(
            f"unknown service '{service}'", hint=f"services: {', '.join(env.services)}"
        )
    if platform.get_service(service) is None:
        raise RollsafeError(
            f"service {service} is not deployed in {env.name}: there is nothing to roll back",
            hint=f"deploy it first: rollsafe deploy --env {env.name} --service {service}",
        )
    # refused before a record is written: a bad --to, nothing to roll back to
    if to is not None:
        _check_target(service, to, platform)
    target = to or _rollback_target(env, service, platform, journal)
    record = journal.begin(
        env=env.name,
        service=service,
        checks="rollback",
        reason=_reason(reason, target),
        image=None,
        cwd=env.manifest_path.parent,
    )
    with journal.lock(env.name, service, record):
        # under the lock, as a deploy: an interrupted deploy is reconciled by one machine
        # only, and the target is chosen again from the traffic it left
        try:
            reconcile(env, service, platform=platform, journal=journal, listener=listener)
            if to is None:
                target = _rollback_target(env, service, platform, journal)
        except RollsafeError as exc:
            journal.finish(record, Outcome.REFUSED, exc.exit_code, exc.message)
            raise
        current = platform.get_service(service)
        previous = current.split() if current else {}
        # what served before: put back if the target turns out unhealthy
        found = Compensation.restore(previous, current.tags() if current else {})
        record = journal.update(
            record,
            revision=target,
            previous_split=previous,
            stage=Stage.ROLLBACK,
            reason=_reason(reason, target),
        )
        start = time.perf_counter()
        try:
            info = platform.set_traffic(service, {target: 100}, found.tags)
        except PlatformError as exc:
            outcome = RollbackOutcome(False, {target: 100}, error=str(exc))
        else:
            seconds = time.perf_counter() - start
            assert info.url is not None
            with _tokens(platform, tokens) as minted, probe_client(env, service, minted) as client:
                # the manifest's own health: its path, status, timeouts and consecutive passes
                ok, results = verify(client, info.url, health_spec(env, service))
            error = "" if ok else f"{target} is unhealthy ({results[-1].describe()})"
            outcome = RollbackOutcome(ok, {target: 100}, seconds, ok, error)
            if not ok:
                return _put_back(env, service, platform, journal, record, found, outcome)
    code, result = (0, Outcome.ROLLED_BACK) if outcome.ok else (4, Outcome.ROLLBACK_FAILED)
    message = outcome.describe()
    journal.finish(record, result, code, message, outcome.to_dict())
    return DeployResult(
        code,
        result,
        message,
        record=record,
        rollback=outcome,
        hint=None if outcome.ok else outcome.human_action(env.name, service),
    )


def _put_back(
    env: ResolvedEnvironment,
    service: str,
    platform: Platform,
    journal: DeployJournal,
    record: DeployRecord,
    found: Compensation,
    failed: RollbackOutcome,
) -> DeployResult:
    """The rollback's target is unhealthy: give the split it found back its traffic (exit 3);
    exit 4 only if that fails too."""
    # journaled first: killed from here on, reconcile puts the found split back
    record = journal.update(record, compensation=found.to_dict())
    try:
        with shielded():
            run_compensation(platform, service, found)
    except PlatformError as exc:
        outcome = RollbackOutcome(
            False, found.split, failed.seconds, error=f"{failed.error}; {exc}"
        )
        message = f"{failed.error}; putting back the split it found failed too: {exc}"
        journal.finish(record, Outcome.ROLLBACK_FAILED, 4, message, outcome.to_dict())
        hint = outcome.human_action(env.name, service)
        return DeployResult(
            4, Outcome.ROLLBACK_FAILED, message, record=record, rollback=outcome, hint=hint
        )
    message = f"{failed.error}; {found.describe()}, as the rollback found it"
    journal.finish(record, Outcome.ROLLED_BACK, 3, message, failed.to_dict())
    return DeployResult(
        3,
        Outcome.ROLLED_BACK,
        message,
        record=record,
        rollback=failed,
        hint=f"pick a healthy revision: rollsafe rollback --env {env.name} --service {service} "
        "--to REVISION (see `rollsafe history`)",
    )


@dataclass
class ServiceStatus:
    """One service's ``url``, serving revisions with percent, and current health."""

    service: str
    exists: bool
    url: str | None = None
    traffic: list[dict[str, Any]] = field(default_factory=list)
    health: ProbeResult | None = None
    reconciled: list[str] = field(default_factory=list)
    #: why interrupted deploys were not reconciled (another holds the service's lock)
    reconcile_skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        health = None
        if self.health is not None:
            health = {
                "ok": self.health.ok,
                "status": self.health.status,
                "latency_ms": round(self.health.latency * 1000, 1),
                "reason": self.health.reason,
            }
        return {
            "service": self.service,
            "exists": self.exists,
            "url": self.url,
            "serving": self.traffic,
            "health": health,
            "reconciled": self.reconciled,
            "reconcile_skipped": self.reconcile_skipped,
        }


def service_status(
    env: ResolvedEnvironment,
    services: list[str],
    *,
    platform: Platform,
    journal: DeployJournal,
    tokens: IdTokens | None = None,
) -> list[ServiceStatus]:
    """Reconcile interrupted deploys, then read each service and probe its URL once (with
    an ID token from ``tokens``, default ``platform``'s own).

    A service is reconciled only under its deploy lock, taken for the moment with an id of
    its own: while another command holds it (a deploy is running, perhaps on another
    machine) reconciling is skipped and ``reconcile_skipped`` says who holds it.
    """
    statuses = []
    with _tokens(platform, tokens) as minted:
        for name in services:
            actions: list[str] = []
            skipped = None
            with journal.try_lock(env.name, name, "status") as holder:
                if holder is None:
                    actions = reconcile(env, name, platform=platform, journal=journal)
                else:
                    skipped = f"the lock is held by {holder.describe()}"
            info = platform.get_service(name)
            if info is None:
                statuses.append(
                    ServiceStatus(name, False, reconciled=actions, reconcile_skipped=skipped)
                )
                continue
            traffic = [
                {"revision": t.revision, "percent": t.percent, "tag": t.tag, "url": t.url}
                for t in info.traffic
            ]
            spec: HealthSpec = health_spec(env, name)
            health = None
            if info.url and info.split():
                with probe_client(env, name, minted) as client:
                    health = probe(client, info.url, spec)
            statuses.append(ServiceStatus(name, True, info.url, traffic, health, actions, skipped))
    return statuses
