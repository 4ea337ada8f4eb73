"""Collecting the evidence of one window: every source read through its adapter.

``EvidenceCollector.collect`` reads, in this order: Cloud Run (each service and its
revisions), the deploy journal, Secret Manager (the versions of the secrets the services
use; the values that matter are read to measure them, then forgotten), Cloud Logging
(requests, error lines, Cloud Run's system log), the monitor's alerts and probes, the drift
and check findings of now, and the manifest's settings. A source that cannot be read is
noted in ``EvidenceSet.unreadable`` and the others go on: the report says what it could not
read. Everything is read-only.

Every secret value read is scrubbed (``***``) from every excerpt, source and datum before
the set is returned. The evidence is sorted by (time, or the window's start when it has
none; source) and numbered ``E1``, ``E2``, ...: the same records give the same ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from rollsafe.check.engine import select_services
from rollsafe.incidents._findings_evidence import add_check, add_drift, add_manifest
from rollsafe.incidents._gather import Pile, Scrubber
from rollsafe.incidents._journal_evidence import add_journal
from rollsafe.incidents._log_evidence import add_logs
from rollsafe.incidents._monitor_evidence import add_monitor
from rollsafe.incidents._run_evidence import add_revisions, read_services
from rollsafe.incidents._secret_evidence import add_secrets
from rollsafe.incidents.model import Evidence, EvidenceSet
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.platforms import Platform
from rollsafe.platforms.logs import CloudLoggingRevisionLogs
from rollsafe.state.base import StateStore
from rollsafe.stores import SecretStore

__all__ = ["EvidenceCollector", "number"]


def number(pieces: list[Evidence], since: float) -> list[Evidence]:
    """``pieces`` sorted by (time or ``since``, source, excerpt) and given ids ``E1``..."""
    ordered = sorted(
        pieces,
        key=lambda e: (e.time if e.time is not None else since, e.source, e.excerpt),
    )
    return [replace(piece, id=f"E{i}") for i, piece in enumerate(ordered, 1)]


class EvidenceCollector:
    """Reads the evidence of an environment's services over a window.

    ``logs`` None: Cloud Logging is not read (noted as unreadable). ``clock`` gives "now": the
    end of a deploy that has not ended.
    """

    def __init__(
        self,
        env: ResolvedEnvironment,
        *,
        state: StateStore,
        platform: Platform,
        logs: CloudLoggingRevisionLogs | None,
        secrets: SecretStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.env = env
        self.state = state
        self.platform = platform
        self.logs = logs
        self.secrets = secrets
        self._clock = clock

    def __repr__(self) -> str:
        return f"EvidenceCollector(env={self.env.name!r})"

    def collect(self, services: Sequence[str], since: float, until: float) -> EvidenceSet:
        """The evidence of ``services`` (empty: all of the environment's) in
        ``[since, until]``. Raises ``UsageError`` for an unknown service only."""
        names = select_services(self.env, services)
        pile = Pile(since=since, until=until, now=self._clock())
        requests: dict[str, dict[str, Any]] = {}
        scrub = Scrubber()
        try:
            view = read_services(self.platform, names, pile)
            add_journal(self.state, self.env.name, names, pile)
            add_secrets(self.env, self.secrets, names, view, pile, scrub)
            if self.logs is None:
                pile.cannot_read("Cloud Logging", "no log client was given")
            else:
                add_logs(self.logs, self.env.gcp_project, names, view, pile, scrub, requests)
            add_monitor(self.state, self.env.name, names, pile)
            add_revisions(view, pile)
            add_drift(self.env, self.secrets, self.platform, names, pile)
            add_check(self.env, self.secrets, names, pile)
            add_manifest(self.env, names, pile)
            pieces = [scrub.evidence(piece) for piece in pile.pieces]
            unreadable = [(scrub.text(what), scrub.text(why)) for what, why in pile.unreadable]
        finally:
            scrub.clear()
        return EvidenceSet(
            env=self.env.name,
            services=tuple(names),
            since=since,
            until=until,
            evidence=number(pieces, since),
            requests=requests,
            unreadable=unreadable,
            manifest=str(self.env.manifest_path),
            strict=self.env.strict,
        )
