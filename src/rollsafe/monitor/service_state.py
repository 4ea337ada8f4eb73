"""The service's own state, from the platform and Cloud Run's system log.

- ``RevisionNotReady`` (warning): the service's terminal condition failed (its last
  operation: a revision that never became ready), or the latest created revision is not
  the latest ready one and has failed, or has been starting for longer than ``grace``
  (default 120 s: a revision may take that long to pass its startup probe, so a deploy in
  progress is not an alert). Evidence ``run://SERVICE/REVISION#Ready``.
- ``InstancesRestarting`` (critical): at least ``RESTARTS`` (3) ``Container called exit(``
  lines (or ``Container terminated on signal``) of the service within ``window``.
- ``TrafficChangedOutsideRollsafe`` (warning): a revision serving traffic has no
  ``rollsafe.dev/deploy-id`` annotation: someone routed traffic with gcloud or the console.

``observe_service_state`` is stateless: ``lines`` are the service's recent lines (those
older than ``window`` are not counted). ``ServiceStateWatch`` keeps the exits of the
passes' lines itself and reads a service's revisions only when its traffic or latest
revisions changed, for a monitor that hands it each pass's new lines.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rollsafe.deploy.plan import ANNOTATION_DEPLOY_ID
from rollsafe.monitor.logs import LogEntryLine
from rollsafe.monitor.model import AlertName, Observation
from rollsafe.platforms.base import Platform, RevisionInfo, ServiceInfo
from rollsafe.platforms.logs import SYSTEM_LOG

__all__ = ["RESTARTS", "ServiceStateWatch", "is_exit_line", "observe_service_state"]

#: exits within the window that make InstancesRestarting fire
RESTARTS = 3
#: how long a latest created revision may stay neither ready nor failed
DEFAULT_GRACE = 120.0
_EXIT = re.compile(r"Container (?:called exit\(\d+\)|terminated on signal \d+)\.")


def is_exit_line(line: LogEntryLine) -> bool:
    """Cloud Run's line of an instance whose container ended."""
    return line.log_name == SYSTEM_LOG and bool(_EXIT.search(line.text))


def _age(created: datetime | None, now: float) -> float:
    return now - created.timestamp() if created is not None else 0.0


def _not_ready(
    service: str,
    info: ServiceInfo,
    revisions: Sequence[RevisionInfo],
    *,
    grace: float,
    now: float,
) -> Observation:
    latest = info.latest_created_revision
    latest_info = next((r for r in revisions if r.name == latest), None)
    problem = ""
    revision = latest
    if info.terminal_failed:
        problem = info.terminal_message or "the service's terminal condition failed"
    elif latest and latest != info.latest_ready_revision and latest_info is not None:
        if latest_info.failed:
            problem = latest_info.message or f"revision {latest} failed"
        elif not latest_info.ready and _age(latest_info.create_time, now) > grace:
            problem = (
                f"revision {latest} is still not ready {_age(latest_info.create_time, now):.0f} s"
                " after it was created"
            )
    name = AlertName.REVISION_NOT_READY.value
    if not problem:
        return Observation(
            service, name, True, "warning", f"{service}: its latest revision is ready", at=now
        )
    serving = info.latest_ready_revision or "none"
    return Observation(
        service=service,
        alertname=name,
        ok=False,
        severity="warning",
        summary=f"{service}: revision {revision} is not ready (serving: {serving})",
        description=problem[:500],
        revision=revision,
        evidence=(f"run://{service}/{revision}#Ready",),
        at=now,
    )


def _restarting(
    service: str, exits: Sequence[LogEntryLine], *, window: float, now: float
) -> Observation:
    recent = sorted((x for x in exits if now - window < x.at <= now), key=lambda x: x.at)
    name = AlertName.INSTANCES_RESTARTING.value
    count = len(recent)
    if count < RESTARTS:
        return Observation(
            service,
            name,
            True,
            "critical",
            f"{service}: {count} container exit(s) in the last {window:.0f} s",
            at=now,
            value=float(count),
        )
    newest = recent[-1]
    where = f" (revision {newest.revision})" if newest.revision else ""
    return Observation(
        service=service,
        alertname=name,
        ok=False,
        severity="critical",
        summary=f"{service}{where}: {count} container exits in the last {window:.0f} s",
        description=f"Instances of {service} keep ending; newest: {newest.text[:200]}",
        revision=newest.revision or None,
        evidence=tuple(x.evidence for x in recent[-10:]),
        at=now,
        value=float(count),
    )


def _outside(
    service: str, info: ServiceInfo, revisions: Sequence[RevisionInfo], now: float
) -> Observation:
    by_name = {r.name: r for r in revisions}
    strangers = sorted(
        rev
        for rev in info.split()
        if rev in by_name and not by_name[rev].annotations.get(ANNOTATION_DEPLOY_ID)
    )
    name = AlertName.TRAFFIC_OUTSIDE_ROLLSAFE.value
    if not strangers:
        return Observation(
            service, name, True, "warning", f"{service}: its traffic is rollsafe's", at=now
        )
    split = info.split()
    shares = ", ".join(f"{rev} {split[rev]}%" for rev in strangers)
    return Observation(
        service=service,
        alertname=name,
        ok=False,
        severity="warning",
        summary=f"{service}: traffic goes to a revision rollsafe did not deploy ({shares})",
        description=(
            f"Revision(s) {shares} of {service} serve traffic without the"
            f" {ANNOTATION_DEPLOY_ID} annotation: traffic was changed outside rollsafe."
        ),
        revision=strangers[0],
        evidence=tuple(f"run://{service}/{rev}#traffic" for rev in strangers),
        at=now,
    )


def _judge(
    service: str,
    info: ServiceInfo,
    revisions: Sequence[RevisionInfo],
    exits: Sequence[LogEntryLine],
    *,
    window: float,
    now: float,
    grace: float,
) -> list[Observation]:
    return [
        _not_ready(service, info, revisions, grace=grace, now=now),
        _restarting(service, exits, window=window, now=now),
        _outside(service, info, revisions, now),
    ]


def observe_service_state(
    platform: Platform,
    service: str,
    lines: Iterable[LogEntryLine],
    *,
    window: float,
    now: float,
    grace: float = DEFAULT_GRACE,
) -> list[Observation]:
    """``RevisionNotReady``, ``InstancesRestarting`` and ``TrafficChangedOutsideRollsafe``
    of ``service`` (each ok or not); empty when the service does not exist. Raises the
    platform's ``PlatformError``."""
    info = platform.get_service(service)
    if info is None:
        return []
    exits = [line for line in lines if line.service == service and is_exit_line(line)]
    revisions = platform.list_revisions(service)
    return _judge(service, info, revisions, exits, window=window, now=now, grace=grace)


@dataclass
class _Seen:
    key: tuple[object, ...] = ()
    revisions: list[RevisionInfo] = field(default_factory=list)
    exits: deque[LogEntryLine] = field(default_factory=deque)


class ServiceStateWatch:
    """``observe_service_state`` for a monitor that passes each pass's new lines: keeps
    every service's exit lines over the window, and its revisions until its traffic or
    latest revisions change (one ``get_service`` per pass, ``list_revisions`` rarely)."""

    def __init__(self, *, grace: float = DEFAULT_GRACE) -> None:
        self.grace = grace
        self._seen: dict[str, _Seen] = {}

    def observe(
        self,
        platform: Platform,
        service: str,
        lines: Iterable[LogEntryLine],
        *,
        window: float,
        now: float,
    ) -> list[Observation]:
        """Like ``observe_service_state``; ``lines`` are the lines read since the last call."""
        seen = self._seen.setdefault(service, _Seen())
        seen.exits.extend(x for x in lines if x.service == service and is_exit_line(x))
        while seen.exits and seen.exits[0].at <= now - window:
            seen.exits.popleft()
        info = platform.get_service(service)
        if info is None:
            return []
        key = (
            info.latest_created_revision,
            info.latest_ready_revision,
            info.terminal_failed,
            tuple(sorted(info.split().items())),
        )
        latest = next((r for r in seen.revisions if r.name == info.latest_created_revision), None)
        settled = latest is not None and (latest.ready or latest.failed)
        if key != seen.key or not settled:
            seen.revisions = platform.list_revisions(service)
            seen.key = key
        return _judge(
            service,
            info,
            seen.revisions,
            list(seen.exits),
            window=window,
            now=now,
            grace=self.grace,
        )
