"""Cloud Run's side: each service's URL and traffic, and its revisions' conditions.

``read_services`` reads every service once (``get_service``, ``list_revisions``) before the
other sources, which need the service URL (a request on a tag URL is not a user's) and the
revisions' secret mappings; ``add_revisions`` then turns the revisions that take part into
``revision`` evidence (``run://SERVICE/REVISION#Ready``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rollsafe.incidents._gather import Pile, reading, seconds, when
from rollsafe.incidents.model import EvidenceKind
from rollsafe.platforms import Platform, RevisionInfo, ServiceInfo
from rollsafe.startup.contract import CONTRACT_VAR

__all__ = ["ANNOTATION_DEPLOY_ID", "RunView", "add_revisions", "read_services"]

#: written by ``rollsafe deploy`` on every revision it creates (``deploy.plan``)
ANNOTATION_DEPLOY_ID = "rollsafe.dev/deploy-id"


@dataclass
class RunView:
    """What Cloud Run says now about the services of a report."""

    services: dict[str, ServiceInfo] = field(default_factory=dict)
    #: newest first, as ``list_revisions`` answers
    revisions: dict[str, list[RevisionInfo]] = field(default_factory=dict)

    def host(self, service: str) -> str | None:
        """The service URL's ``host[:port]`` (lower case), or None when unknown."""
        info = self.services.get(service)
        return urlsplit(info.url).netloc.lower() if info and info.url else None

    def relevant(self, service: str, since: float, until: float) -> list[RevisionInfo]:
        """The revisions that may have served in the window: serving now, created in it,
        the newest created before it (it served at its start) and the latest created."""
        found = self.revisions.get(service, [])
        info = self.services.get(service)
        serving = set(info.split()) if info else set()
        latest = info.latest_created_revision if info else None
        chosen: list[RevisionInfo] = []
        before_seen = False
        for rev in found:
            created = seconds(rev.create_time)
            in_window = created is not None and since <= created <= until
            first_before = created is not None and created < since and not before_seen
            if first_before:
                before_seen = True
            if rev.name in serving or rev.name == latest or in_window or first_before:
                chosen.append(rev)
        return chosen


def read_services(platform: Platform, services: Sequence[str], pile: Pile) -> RunView:
    """One ``get_service`` and one ``list_revisions`` per service; a service that cannot be
    read is noted and left out."""
    view = RunView()
    for name in services:
        with reading(pile, f"Cloud Run service {name}"):
            info = platform.get_service(name)
            if info is None:
                pile.cannot_read(f"Cloud Run service {name}", "it does not exist (not deployed)")
                continue
            view.services[name] = info
            view.revisions[name] = platform.list_revisions(name)
    return view


def _secrets(rev: RevisionInfo) -> dict[str, dict[str, str]]:
    return {
        var: {"secret": ref.secret, "version": ref.version}
        for var, ref in sorted(rev.secrets.items())
    }


def _excerpt(rev: RevisionInfo, deploy_id: str | None, traffic: int) -> str:
    ready = "Ready" if rev.ready else ("failed" if rev.failed else "not ready")
    parts = [f"{rev.name} created {when(seconds(rev.create_time))}: {ready}"]
    if rev.message and not rev.ready:
        parts[0] += f" ({rev.message})"
    parts.append(f"deploy-id {deploy_id}" if deploy_id else "no rollsafe.dev/deploy-id annotation")
    mapped = ", ".join(
        f"{var}={ref.secret}:{ref.version}" for var, ref in sorted(rev.secrets.items())
    )
    if mapped:
        parts.append(f"secrets {mapped}")
    parts.append(f"traffic now {traffic}%")
    return "; ".join(parts)


def add_revisions(view: RunView, pile: Pile) -> None:
    """``revision`` evidence for each relevant revision and each one other evidence names."""
    for service, revisions in view.revisions.items():
        info = view.services[service]
        split = info.split()
        wanted = {r.name for r in view.relevant(service, pile.since, pile.until)}
        wanted |= pile.revisions.get(service, set())
        for rev in revisions:
            if rev.name not in wanted:
                continue
            deploy_id = rev.annotations.get(ANNOTATION_DEPLOY_ID) or None
            traffic = split.get(rev.name, 0)
            pile.add(
                EvidenceKind.REVISION,
                seconds(rev.create_time),
                f"run://{service}/{rev.name}#Ready",
                _excerpt(rev, deploy_id, traffic),
                {
                    "service": service,
                    "revision": rev.name,
                    "created": seconds(rev.create_time),
                    "ready": rev.ready,
                    "failed": rev.failed,
                    "message": rev.message or None,
                    "deploy_id": deploy_id,
                    "secrets": _secrets(rev),
                    "traffic": traffic,
                    "serving": traffic > 0,
                    # whether the start-up guard gets its contract (the name, never the value)
                    "contract": CONTRACT_VAR in rev.env,
                },
            )
