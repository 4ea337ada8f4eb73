"""Log alerts: ``monitor.log_alerts`` and the defaults that catch the incident.

A log alert fires while at least ``count`` matching lines arrived within ``window`` seconds
(its thresholds are (1, 1): the count in the window is the threshold). ``match`` is a
Python regular expression searched in each line's text (``textPayload``, or a
``jsonPayload``'s ``message``) as the ``ServiceLogReader`` delivers them, one pass after
another; the matcher keeps the matching lines of the longest window.

``filter`` is a Cloud Logging filter. It is evaluated by Cloud Logging itself, with a query
of its own per pass (``ServiceLogReader.matching``: the filter AND the service AND the
window), so it means exactly what it means on Google, on the emulator too; that costs one
query per filter alert and service per pass, where ``match`` costs none.

The defaults (``monitor.default_log_alerts: true``), each firing on one line in 5 minutes:

- ``StartupGuardFailed`` (critical): the start-up guard's line, ``start-up failed in phase
  ...`` (CRITICAL before the container exits 3; ERROR in degraded mode);
- ``ContainerExited`` (critical): Cloud Run's ``Container called exit(N).`` with N > 0, or
  ``Container terminated on signal 9.`` (killed, e.g. out of memory);
- ``StartupProbeFailed`` (critical): ``STARTUP TCP probe failed 1 time consecutively ...``
  (also ``Default STARTUP``, HTTP and GRPC probes);
- ``SecretConfigError`` (critical): a JWT or secret configuration error, e.g. ``JWT secret
  not configured``, ``JWT_SECRET_KEY is not set``, ``missing secret``.

A manifest alert with a default's name replaces that default.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from rollsafe.errors import RollsafeError
from rollsafe.manifest._monitor_resolved import ResolvedLogAlert, ResolvedMonitor
from rollsafe.monitor.logs import LogEntryLine
from rollsafe.monitor.model import Observation

__all__ = ["DEFAULT_LOG_ALERTS", "LogAlertMatcher", "LogFilterSource", "log_alerts_of"]

#: how many matching lines an observation cites as evidence (the newest)
MAX_EVIDENCE = 10
_EXCERPT = 200
_DEFAULT_WINDOW = 300.0

DEFAULT_LOG_ALERTS: tuple[ResolvedLogAlert, ...] = (
    ResolvedLogAlert(
        name="StartupGuardFailed",
        severity="critical",
        match=r"start-up failed in phase \w+",
        count=1,
        window=_DEFAULT_WINDOW,
    ),
    ResolvedLogAlert(
        name="ContainerExited",
        severity="critical",
        match=r"Container (?:called exit\([1-9]\d*\)|terminated on signal 9)\.",
        count=1,
        window=_DEFAULT_WINDOW,
    ),
    ResolvedLogAlert(
        name="StartupProbeFailed",
        severity="critical",
        match=r"STARTUP (?:TCP|HTTP|GRPC) probe failed",
        count=1,
        window=_DEFAULT_WINDOW,
    ),
    ResolvedLogAlert(
        name="SecretConfigError",
        severity="critical",
        match=(
            r"(?i)(?:jwt|secret|signing[ _]key)[\w .:'\"-]{0,40}?"
            r"\b(?:not configured|not set|unset|missing|is empty|undefined|too short)\b"
            r"|\b(?:missing|no)[ _](?:jwt|secret)"
        ),
        count=1,
        window=_DEFAULT_WINDOW,
    ),
)


class LogFilterSource(Protocol):
    """Evaluates a ``filter`` log alert (``ServiceLogReader`` is one)."""

    def matching(
        self, service: str, filter_: str, *, since: float, limit: int = 50
    ) -> list[LogEntryLine]: ...


def log_alerts_of(settings: ResolvedMonitor) -> tuple[ResolvedLogAlert, ...]:
    """A service's log alerts: the defaults (unless ``default_log_alerts`` is off) and the
    manifest's, a manifest alert replacing a default of the same name."""
    mine = {a.name: a for a in settings.log_alerts}
    defaults = DEFAULT_LOG_ALERTS if settings.default_log_alerts else ()
    return tuple(a for a in defaults if a.name not in mine) + tuple(mine.values())


@dataclass(frozen=True, slots=True)
class _Match:
    at: float
    evidence: str
    revision: str
    text: str


class LogAlertMatcher:
    """Matches the lines of each pass against every service's log alerts.

    ``settings(service)`` gives a service's ``ResolvedMonitor``; ``filters`` evaluates
    ``filter`` alerts (None: they are not evaluated and give no observation).
    """

    def __init__(
        self,
        settings: Callable[[str], ResolvedMonitor],
        *,
        filters: LogFilterSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.filters = filters
        self._clock = clock
        self._patterns: dict[str, re.Pattern[str]] = {}
        #: (service, alert name) -> matching lines, oldest first
        self._matches: dict[tuple[str, str], deque[_Match]] = {}
        #: the ``log://`` ids of the lines of the last ``feed`` that matched an alert
        self.last_matched: set[str] = set()

    def _pattern(self, alert: ResolvedLogAlert) -> re.Pattern[str]:
        assert alert.match is not None
        found = self._patterns.get(alert.match)
        if found is None:
            try:
                found = re.compile(alert.match)
            except re.error as exc:  # the manifest checks this; a default never fails
                raise RollsafeError(
                    f"log alert {alert.name}: `match` is not a regular expression: {exc}",
                    hint="fix monitor.log_alerts in the manifest",
                ) from exc
            self._patterns[alert.match] = found
        return found

    def feed(self, lines: Iterable[LogEntryLine]) -> None:
        """Keep the lines that match a ``match`` alert of their service; ``last_matched``
        holds the evidence ids of this feed's matching lines (error lines for templates,
        whatever their severity)."""
        alerts: dict[str, tuple[ResolvedLogAlert, ...]] = {}
        self.last_matched = set()
        for line in lines:
            if line.service not in alerts:
                alerts[line.service] = tuple(
                    a for a in log_alerts_of(self.settings(line.service)) if a.match is not None
                )
            for alert in alerts[line.service]:
                if self._pattern(alert).search(line.text):
                    kept = self._matches.setdefault((line.service, alert.name), deque())
                    kept.append(_Match(line.at, line.evidence, line.revision, line.text))
                    self.last_matched.add(line.evidence)

    def observe(self, service: str, now: float | None = None) -> list[Observation]:
        """One observation per log alert of ``service``: failing while at least ``count``
        matching lines arrived within ``window``."""
        now = self._clock() if now is None else now
        found: list[Observation] = []
        for alert in log_alerts_of(self.settings(service)):
            if alert.match is not None:
                matches = self._recent(service, alert, now)
            elif self.filters is not None and alert.filter is not None:
                try:
                    lines = self.filters.matching(
                        service,
                        alert.filter,
                        since=now - alert.window,
                        limit=max(alert.count, MAX_EVIDENCE),
                    )
                except RollsafeError:
                    continue  # unknown this pass: the alert keeps its state
                matches = sorted(
                    (_Match(x.at, x.evidence, x.revision, x.text) for x in lines),
                    key=lambda m: m.at,
                )
            else:
                continue
            found.append(_observation(service, alert, matches, now))
        return found

    def _recent(self, service: str, alert: ResolvedLogAlert, now: float) -> list[_Match]:
        kept = self._matches.get((service, alert.name))
        if not kept:
            return []
        edge = now - alert.window
        # lines arrive about in time order; a late one out of order is filtered below
        while kept and kept[0].at <= edge:
            kept.popleft()
        return sorted((m for m in kept if edge < m.at <= now), key=lambda m: m.at)


def _observation(
    service: str, alert: ResolvedLogAlert, matches: list[_Match], now: float
) -> Observation:
    count = len(matches)
    failing = count >= alert.count
    window = f"{alert.window:.0f} s"
    newest = matches[-1] if matches else None
    revision = newest.revision or None if newest else None
    if failing and newest is not None:
        where = f" (revision {revision})" if revision else ""
        summary = f"{service}{where}: {count} log line(s) match {alert.name} in the last {window}"
        excerpt = " ".join(newest.text.split())[:_EXCERPT]
        description = (
            f"{count} line(s) of {service}'s logs matched log alert {alert.name} within"
            f" {window} (threshold {alert.count}); newest{where}: {excerpt}"
        )
    else:
        summary = f"{service}: {count} log line(s) match {alert.name} in the last {window}"
        description = f"fewer than {alert.count} line(s) matched {alert.name} within {window}"
    return Observation(
        service=service,
        alertname=alert.name,
        ok=not failing,
        severity=alert.severity,
        summary=summary,
        description=description,
        revision=revision if failing else None,
        evidence=tuple(m.evidence for m in matches[-MAX_EVIDENCE:]) if failing else (),
        at=now,
        thresholds=(1, 1),
        value=float(count),
    )
