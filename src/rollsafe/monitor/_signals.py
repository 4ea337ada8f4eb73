"""What the engine reads besides probes: the environment's logs, once per pass, turned
into 5xx windows, log alerts and Drain3's error templates."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rollsafe.manifest._monitor_resolved import ResolvedMonitor
from rollsafe.manifest.resolved import ResolvedHealth
from rollsafe.monitor._evaluate import error_rate_observation
from rollsafe.monitor.model import Observation

if TYPE_CHECKING:
    from rollsafe.monitor.logs import LogEntryLine, RequestSample, ServiceLogReader
    from rollsafe.state.base import StateStore

__all__ = ["MIN_LOG_PERIOD", "LogSignals", "ServiceTarget"]

#: the log reader runs at most this often, whatever the intervals
MIN_LOG_PERIOD = 1.0

#: a service's newest succeeded deploy: (deploy id, finished), or (None, None)
LastDeploy = Callable[[str], tuple[str | None, float | None]]


class ServiceTarget:
    """One monitored service: where it is, what serves, when it is due next."""

    def __init__(self, name: str, url: str | None, health: ResolvedHealth) -> None:
        self.name = name
        self.url = url
        self.health = health
        #: the revision with the most traffic (None: unknown, or a plain target)
        self.revision: str | None = None
        self.due = 0.0
        #: None until looked up; False once found not deployed (said once)
        self.deployed: bool | None = None
        #: log lines read since this service's last turn (the state watch counts exits)
        self.lines: list[LogEntryLine] = []


class LogSignals:
    """The environment's logs, read incrementally by ``reader`` at most once a second:
    request samples into per-revision windows (``High5xxRate``), container and system
    lines into the log alerts and Drain3's templates (``NewErrorTemplate``)."""

    def __init__(
        self,
        reader: ServiceLogReader,
        store: StateStore,
        env: str,
        *,
        settings: Callable[[str], ResolvedMonitor],
        last_deploy: LastDeploy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from rollsafe.monitor.log_alerts import LogAlertMatcher
        from rollsafe.monitor.logs import RequestWindow
        from rollsafe.monitor.templates import ErrorTemplates

        self.reader = reader
        self.window = RequestWindow()
        # `filter:` log alerts are asked of the Logging API through the reader
        self.matcher = LogAlertMatcher(settings, filters=reader, clock=clock)
        self.templates = ErrorTemplates(store, env, clock=clock)
        self._settings = settings
        self._last_deploy = last_deploy
        self._last_read = 0.0

    def read(
        self, services: Sequence[str], now: float
    ) -> tuple[list[RequestSample], list[LogEntryLine]]:
        """This pass's new request samples and log lines (none when the last read was less
        than a second ago). Raises the reader's ``RollsafeError``s."""
        if now - self._last_read < MIN_LOG_PERIOD:
            return [], []
        self._last_read = now
        requests, lines = self.reader.read(services)
        self.window.add(requests)
        self.window.prune(now)
        self.matcher.feed(lines)
        return list(requests), list(lines)

    def observe(self, service: str, now: float) -> list[Observation]:
        """A due service's 5xx rate, log alerts, and its error templates' resolve."""
        settings = self._settings(service)
        found: list[Observation] = []
        stats = self.window.stats(service, settings.window, now)
        rate = error_rate_observation(service, stats, settings, now)
        if rate is not None:
            found.append(rate)
        found.extend(self.matcher.observe(service, now))
        templated = self.templates.observe(service, now)
        if templated is not None:
            found.append(templated)
        return found

    def new_templates(self, lines: Sequence[Any]) -> list[Observation]:
        """Error lines (and lines a log alert matched) into Drain3's templates; one first
        seen after a deploy is an observation naming that deploy."""
        deploys: dict[str, tuple[str | None, float | None]] = {}
        found = []
        # error lines, and the lines a log alert matched whatever their severity
        matched = self.matcher.last_matched
        for line in lines:
            if not (self.templates.wants(line) or line.evidence in matched):
                continue
            if line.service not in deploys:
                deploys[line.service] = self._last_deploy(line.service)
            deploy_id, deployed_at = deploys[line.service]
            observation = self.templates.add(line, deploy_id, deployed_at)
            if observation is not None:
                found.append(observation)
        return found

    def flush(self) -> None:
        """Write Drain3's state not yet written (at the end)."""
        self.templates.flush()
