"""The monitor's automatic rollback of a fresh deploy that broke after its verification.

When a service's ``ServiceDown`` or ``High5xxRate`` fires within
``monitor.rollback_within`` (default 15 min in strict environments, off elsewhere) of the
newest rollsafe deploy of that service that succeeded, the monitor rolls it back to the
previous verified revision, through the same machinery as ``rollsafe rollback``: it takes
the service's deploy lock (a deploy that runs is left alone), reconciles, verifies the
target, puts the split back if the target is unhealthy, and journals the rollback with the
reason ``monitor: ALERT fired N s after deploy D`` (``rollsafe history`` shows it).

At most one automatic rollback per deploy, across restarts and replicas: it is claimed in
the kv namespace ``monitor/rollback/{env}`` (key: the deploy id) before anything changes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rollsafe.errors import RollsafeError
from rollsafe.monitor.model import AlertEvent, AlertName, EventKind
from rollsafe.state.base import StateConflictError, StateUnavailableError

if TYPE_CHECKING:
    from rollsafe.manifest import ResolvedEnvironment
    from rollsafe.platforms import Platform
    from rollsafe.platforms.idtoken import IdTokens
    from rollsafe.state.journal import DeployJournal, DeployRecord

__all__ = ["ROLLBACK_ALERTS", "AutoRollback", "rollback_namespace"]

#: the alerts that roll a fresh deploy back (log and state alerts only tell)
ROLLBACK_ALERTS = frozenset({AlertName.SERVICE_DOWN.value, AlertName.HIGH_5XX.value})


def rollback_namespace(env: str) -> str:
    """The kv namespace of ``env``'s automatic rollbacks, one key per deploy id."""
    return f"monitor/rollback/{env}"


class AutoRollback:
    """Decides and runs the automatic rollback a firing alert asks for."""

    def __init__(
        self,
        env: ResolvedEnvironment,
        *,
        platform: Platform,
        journal: DeployJournal,
        tokens: IdTokens | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._env = env
        self._platform = platform
        self._journal = journal
        self._tokens = tokens
        self._clock = clock

    def fresh_deploy(self, service: str, now: float) -> tuple[DeployRecord, float] | None:
        """The newest succeeded deploy of ``service`` and its age in seconds, if it is
        within ``rollback_within``; None otherwise (or when rollback is off)."""
        settings = self._env.services.get(service)
        within = settings.monitor.rollback_within if settings else None
        if not within:
            return None
        for record in self._journal.history(self._env.name, service, limit=50):
            if record.outcome == "succeeded" and record.revision:
                age = now - (record.finished or record.started)
                return (record, age) if 0 <= age <= within else None
        return None

    def consider(self, event: AlertEvent) -> str | None:
        """Roll back if ``event`` (a firing down or 5xx alert) is within the window of a
        deploy not yet rolled back; return what was done, for the alert (``action``)."""
        if event.kind is not EventKind.FIRING or event.alertname not in ROLLBACK_ALERTS:
            return None
        now = self._clock()
        try:
            fresh = self.fresh_deploy(event.service, now)
        except StateUnavailableError:
            return None
        if fresh is None:
            return None
        deploy, age = fresh
        store = self._journal.store
        namespace = rollback_namespace(self._env.name)
        reason = f"monitor: {event.alertname} fired {age:.0f} s after deploy {deploy.id}"
        claim: dict[str, Any] = {
            "service": event.service,
            "alert": event.alertname,
            "reason": reason,
            "at": now,
            "outcome": None,
        }
        try:
            version = store.kv_put(namespace, deploy.id, claim, expect_version=0)
        except (StateConflictError, StateUnavailableError):
            return None  # another monitor (or an earlier run) did it: once per deploy
        action = self._roll_back(event.service, deploy, reason, claim)
        # failing, the claim stands; only its outcome is not recorded
        with contextlib.suppress(StateConflictError, StateUnavailableError):
            store.kv_put(namespace, deploy.id, claim, expect_version=version)
        return action

    def _roll_back(
        self, service: str, deploy: DeployRecord, reason: str, claim: dict[str, Any]
    ) -> str:
        from rollsafe.deploy.operations import manual_rollback

        try:
            result = manual_rollback(
                self._env,
                service,
                to=None,
                platform=self._platform,
                journal=self._journal,
                tokens=self._tokens,
                reason=reason,
            )
        except RollsafeError as exc:
            claim["outcome"] = "refused"
            claim["message"] = exc.message
            return f"Automatic rollback of deploy {deploy.id} refused: {exc.message}"
        target = result.record.revision if result.record else None
        claim.update(
            outcome=str(result.outcome),
            target=target,
            rollback_id=result.record.id if result.record else None,
            message=result.message,
        )
        if result.exit_code == 0:
            return (
                f"rollsafe rolled {service} back to {target} (deploy {deploy.id} of "
                f"{deploy.revision} was rolled back; {reason})."
            )
        return (
            f"Automatic rollback of deploy {deploy.id} to {target} failed "
            f"({result.outcome}: {result.message})."
        )
