"""The monitor's loop: every pass, signals of each due service become observations, the
``AlertBook`` turns them into events, the ``Notifier`` sends them off the loop.

One pass:

1. the services that are due (each at its ``monitor.interval``) are looked up on the
   platform (a service that is not deployed is reported once, never alerted) and probed
   concurrently (asyncio), the probes' lag recorded;
2. the environment's logs are read once for all services (at most once a second):
   request samples feed the 5xx windows, container and system lines the log alerts,
   Drain3's templates and the service-state watch;
3. each due service's observations (``ServiceDown``, ``High5xxRate``, log alerts, state
   alerts, new error templates) go to the ``AlertBook``; its firing down or 5xx events may
   roll a fresh deploy back (``monitor.rollback_within``), which the event then says;
4. the events go to the ``Notifier`` (which never blocks), and each state change is one
   ``MonitorLine`` to the listener;
5. what the incident report needs is recorded: every firing and resolved event (with its
   action) in the ``AlertHistory``, every probe result in the ``ProbeRecorder``'s
   one-minute buckets (flushed each pass, and on ``close``), each closed minute folded
   into the service's hourly and daily rollups (``rollups``). From the first pass this
   monitor leads, and every hour after, what is past ``monitor.retention`` is pruned
   (the buckets a batch of services per pass);
6. for the status page (``snapshots``): a heartbeat every pass, a service's URL and
   traffic when they change, and (with ``drift``) the drift findings, from a run at
   start and every 15 minutes in a background thread.

Only the leader (``Leader``) runs passes; a standby idles and tries to take over every
interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rollsafe.errors import RollsafeError
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.manifest._monitor_resolved import ResolvedMonitor, ResolvedRetention
from rollsafe.manifest.resolved import ResolvedHealth
from rollsafe.monitor._evaluate import new_requests, probe_observation
from rollsafe.monitor._output import LineState, MonitorLine, PassResult
from rollsafe.monitor._signals import LogSignals, ServiceTarget
from rollsafe.monitor.leader import LeadershipLostError
from rollsafe.monitor.model import AlertEvent, AlertStatus, Observation

if TYPE_CHECKING:
    from rollsafe.drift.model import DriftReport
    from rollsafe.monitor.leader import Leader
    from rollsafe.monitor.logs import ServiceLogReader
    from rollsafe.monitor.metrics import MonitorMetrics
    from rollsafe.monitor.receivers import Receiver
    from rollsafe.platforms import Platform
    from rollsafe.platforms.idtoken import IdTokens
    from rollsafe.state.base import StateStore
    from rollsafe.state.journal import DeployJournal

__all__ = ["MonitorEngine", "MonitorLine", "PassResult"]

#: how long ``close`` waits for the receivers to send what is queued
FLUSH_SECONDS = 3.0
#: services whose old probe buckets one pass prunes (a few dozen key lists each)
PRUNE_BATCH = 20
#: seconds between two rounds of pruning
PRUNE_EVERY = 3600.0

Listener = Callable[[MonitorLine], None]
_log = logging.getLogger("rollsafe.monitor")


def _ignore(_line: MonitorLine) -> None:
    """No one listens."""


class MonitorEngine:
    """Watches the services of ``env`` (or the plain ``targets``, service -> URL).

    ``store`` keeps the alert state, sent-markers, log cursors and templates (the shared
    state store, so a restarted or standby monitor goes on where this one stopped).
    Without ``platform`` only ``targets`` are watched (no state watch, no rollback);
    without ``logs`` no logs are read; without ``journal`` nothing is deploy-aware.
    The engine's ``Notifier`` closes the ``receivers`` (in ``close``).
    ``probe_concurrency`` bounds the probes in flight (default: ``AsyncProber``'s).
    ``drift`` runs drift for the environment (e.g. ``run_drift`` with its store and
    platform): the monitor calls it in a background thread at start and every 15 minutes
    and keeps the findings for the status page; None: no drift snapshots.
    """

    def __init__(
        self,
        env: ResolvedEnvironment,
        *,
        store: StateStore,
        journal: DeployJournal | None = None,
        platform: Platform | None = None,
        tokens: IdTokens | None = None,
        logs: ServiceLogReader | None = None,
        receivers: Sequence[Receiver] = (),
        listener: Listener | None = None,
        metrics: MonitorMetrics | None = None,
        targets: Mapping[str, str] | None = None,
        default_monitor: ResolvedMonitor | None = None,
        leader: Leader | None = None,
        clock: Callable[[], float] = time.time,
        probe_concurrency: int | None = None,
        drift: Callable[[], DriftReport] | None = None,
    ) -> None:
        if platform is None and targets is None:
            raise RollsafeError("the monitor needs a platform or a list of targets")
        self.env = env
        self._store = store
        self._journal = journal
        self._platform = platform
        self._tokens = tokens
        self._listener = listener or _ignore
        self._metrics = metrics
        self._default = default_monitor or ResolvedMonitor()
        self._leader = leader
        self._clock = clock
        self._fixed = targets is not None
        names = list(targets) if targets is not None else list(env.services)
        self._targets = {
            name: ServiceTarget(name, (targets or {}).get(name), self._health(name))
            for name in names
        }
        self._loop = asyncio.new_event_loop()
        self._prober: Any = None
        self._probe_concurrency = probe_concurrency
        self._statuses: dict[str, str] = {}
        #: the last error said per source, so that an outage is said once, not every pass
        self._errors: dict[str, str] = {}
        from rollsafe.monitor.alerts import AlertBook

        self._book = AlertBook(store, env.name, settings=self.settings, clock=clock)
        from rollsafe.monitor.history import AlertHistory
        from rollsafe.monitor.rollups import RollupWriter
        from rollsafe.monitor.samples import ProbeRecorder
        from rollsafe.monitor.snapshots import DriftWatch, ServiceSnapshots

        self._history = AlertHistory(store, env.name, clock=clock)
        self._rollups = RollupWriter(store, env.name, retention_of=self._retention)
        self._recorder = ProbeRecorder(store, env.name, rollups=self._rollups)
        #: services whose old probe buckets are still to prune (None: not started yet)
        self._unpruned: list[str] | None = None
        self._pruned_at = 0.0
        self._snapshots = ServiceSnapshots(store, env.name, clock=clock)
        self._drift = DriftWatch(store, drift, clock=clock) if drift is not None else None
        self._heartbeat_error: str | None = None
        #: who writes the heartbeat: ``USER@HOST (pid N)``
        self._holder = f"{_user()}@{socket.gethostname()} (pid {os.getpid()})"
        self._receivers = list(receivers)
        #: made once this monitor leads: a standby must not send the leader's outbox
        self._notifier: Any = None
        if leader is None or leader.is_leader:
            self._start_notifier()
        self._signals: LogSignals | None = None
        if logs is not None:
            self._signals = LogSignals(
                logs,
                store,
                env.name,
                settings=self.settings,
                last_deploy=self._last_deploy,
                clock=clock,
            )
        self._rollback = self._auto_rollback()
        self._state_watch: Any = None
        if platform is not None and targets is None:
            from rollsafe.monitor.service_state import ServiceStateWatch

            self._state_watch = ServiceStateWatch()
        self._standby_said = False

    # -- parts -----------------------------------------------------------------------
    def settings(self, service: str) -> ResolvedMonitor:
        """The ``monitor:`` settings of ``service`` (``default_monitor`` for targets)."""
        found = self.env.services.get(service)
        return found.monitor if found is not None else self._default

    def _retention(self, service: str) -> ResolvedRetention:
        return self.settings(service).retention

    def _health(self, service: str) -> ResolvedHealth:
        found = self.env.services.get(service)
        return found.health if found is not None else ResolvedHealth()

    def _start_notifier(self) -> None:
        if not self._receivers or self._notifier is not None:
            return
        from rollsafe.monitor.notify import Notifier

        self._notifier = Notifier(
            self._receivers,
            self._store,
            self.env.name,
            on_report=self._report,
            # what fires already (before a restart, or under the old leader): Alertmanager
            # keeps hearing about it
            firing=self._book.firing_events(),
        )

    def _auto_rollback(self) -> Any:
        if self._platform is None or self._journal is None:
            return None
        if not any(s.monitor.rollback_within for s in self.env.services.values()):
            return None
        from rollsafe.monitor.rollback import AutoRollback

        return AutoRollback(
            self.env,
            platform=self._platform,
            journal=self._journal,
            tokens=self._tokens,
            clock=self._clock,
        )

    def _report(self, text: str) -> None:
        """A receiver's failure or recovery, from the Notifier's threads (never its URL)."""
        state = LineState.INFO if "delivers again" in text else LineState.ERROR
        self._emit(MonitorLine(self._clock(), "-", "ReceiverFailing", state, text))

    def _emit(self, line: MonitorLine, result: PassResult | None = None) -> None:
        if result is not None:
            result.lines.append(line)
        self._listener(line)

    # -- the loop --------------------------------------------------------------------
    @property
    def tick(self) -> float:
        """Seconds between passes: the shortest interval of the monitored services."""
        return max(1.0, min((self.settings(n).interval for n in self._targets), default=30.0))

    def run(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set (a standby waits to lead instead).

        A pass that fails (the state store or Cloud Logging unreachable) is reported as an
        ``error`` line, once until a pass succeeds again, and the monitor goes on.
        """
        while not stop.is_set():
            started = time.monotonic()
            try:
                if self._leads():
                    self.run_once()
                self._recovered("pass")
            except LeadershipLostError:
                raise
            except RollsafeError as exc:
                text = f"this pass failed, the monitor goes on: {exc.message}"
                self._error("pass", self._line("-", "Monitor", LineState.ERROR, text))
            stop.wait(max(0.0, self.tick - (time.monotonic() - started)))

    def _leads(self) -> bool:
        if self._leader is None:
            return True
        if self._leader.is_leader:
            self._leader.confirm()  # LeadershipLostError: stop rather than notify twice
            return True
        if self._leader.poll():
            # what the old leader left: alert states, then its outbox and what fires
            self._book.reload()
            self._start_notifier()
            self._emit(
                MonitorLine(self._clock(), "-", "Leader", LineState.INFO, "this monitor leads")
            )
            self._standby_said = False
            return True
        if not self._standby_said and self._leader.holder is not None:
            text = f"standby: the leader is {self._leader.holder.describe()}"
            self._emit(MonitorLine(self._clock(), "-", "Leader", LineState.INFO, text))
            self._standby_said = True
        return False

    def run_once(self) -> PassResult:
        """One pass over the services that are due (all of them on the first pass)."""
        now = self._clock()
        result = PassResult(at=now)
        if not self._leads():
            result.leader = False
            result.failing = self._firing()
            return result
        started = time.monotonic()
        if self._drift is not None:
            self._drift.start()  # its first run now, off the loop
        self._prune(now)
        due = [t for t in self._targets.values() if t.due <= now]
        if not self._fixed:
            due = [t for t in due if self._lookup(t, result)]
        requests, lines = self._read_logs(now, result)
        for line in lines:
            if line.service in self._targets:
                self._targets[line.service].lines.append(line)
        observations: list[Observation] = []
        for sample, target in self._probe(due, now):
            observations.append(probe_observation(sample, target.revision))
            self._recorder.add(
                sample.service,
                sample.at,
                bool(sample.ok),
                sample.status,
                sample.latency,
                target.revision,
            )
        for target in due:
            target.due = now + self.settings(target.name).interval
            observations.extend(self._observe(target, now))
        if self._signals is not None:
            observations.extend(self._signals.new_templates(lines))
        self._evaluate(observations, result)
        self._recorder.flush(self._clock())
        self._heartbeat()
        if self._metrics is not None:
            for (service, revision), (count, errors) in new_requests(requests).items():
                self._metrics.observe_requests(service, revision, count, errors)
        result.seconds = time.monotonic() - started
        if self._metrics is not None:
            self._metrics.mark_pass(now, result.seconds)
        return result

    # -- signals ---------------------------------------------------------------------
    def _lookup(self, target: ServiceTarget, result: PassResult) -> bool:
        """Refresh ``target``'s URL and serving revision; False when it is not deployed
        (said once) or cannot be read (said, then tried again next interval)."""
        from rollsafe.platforms import PlatformError

        assert self._platform is not None
        try:
            info = self._platform.get_service(target.name)
        except PlatformError as exc:
            target.due = self._clock() + self.settings(target.name).interval
            line = self._line(target.name, "Platform", LineState.ERROR, str(exc))
            self._error(f"platform/{target.name}", line, result)
            return False
        self._recovered(f"platform/{target.name}")
        deployed = info is not None and bool(info.url)
        if not deployed:
            target.due = self._clock() + self.settings(target.name).interval
            if target.deployed is not False:
                text = f"{target.name} is not deployed in {self.env.name}: not monitored yet"
                self._emit(self._line(target.name, "-", LineState.INFO, text), result)
            target.deployed = False
            return False
        assert info is not None
        target.deployed = True
        target.url = info.url
        split = info.split()
        target.revision = max(split, key=lambda r: split[r]) if split else None
        self._snapshots.observe(target.name, info)
        return True

    def _probe(self, due: list[ServiceTarget], now: float) -> list[tuple[Any, ServiceTarget]]:
        probed = [t for t in due if t.url]
        if not probed:
            return []
        samples = self._loop.run_until_complete(self._probe_all(probed))
        if self._metrics is not None:
            for sample, target in zip(samples, probed, strict=True):
                self._metrics.observe_probe(sample)
                self._metrics.observe_lag(max(0.0, now - target.due) if target.due else 0.0)
        return list(zip(samples, probed, strict=True))

    async def _probe_all(self, targets: list[ServiceTarget]) -> list[Any]:
        from rollsafe.monitor.probe import AsyncProber, ProbeTarget

        if self._prober is None:
            if self._probe_concurrency is None:
                self._prober = AsyncProber(self._tokens)
            else:
                self._prober = AsyncProber(self._tokens, concurrency=self._probe_concurrency)
        probes = [
            ProbeTarget(t.name, t.url or "", t.health, private=self._private(t.name))
            for t in targets
        ]
        return list(await self._prober.probe_all(probes))

    def _private(self, service: str) -> bool:
        found = self.env.services.get(service)
        return found is not None and not found.public and self._tokens is not None

    def _read_logs(self, now: float, result: PassResult) -> tuple[list[Any], list[Any]]:
        if self._signals is None:
            return [], []
        services = [t.name for t in self._targets.values() if t.deployed is not False]
        try:
            found = self._signals.read(services, now)
        except RollsafeError as exc:
            self._error("logs", self._line("-", "Logs", LineState.ERROR, exc.message), result)
            return [], []
        self._recovered("logs")
        return found

    def _observe(self, target: ServiceTarget, now: float) -> list[Observation]:
        """A due service's observations besides its probe: 5xx, log and state alerts."""
        found: list[Observation] = []
        if self._signals is not None:
            found.extend(self._signals.observe(target.name, now))
        mine, target.lines = target.lines, []
        if self._state_watch is not None:
            from rollsafe.platforms import PlatformError

            window = self.settings(target.name).window
            with contextlib.suppress(PlatformError):
                found.extend(
                    self._state_watch.observe(
                        self._platform, target.name, mine, window=window, now=now
                    )
                )
        return found

    def _last_deploy(self, service: str) -> tuple[str | None, float | None]:
        """The newest succeeded deploy of ``service``: (id, finished), or (None, None)."""
        if self._journal is None:
            return None, None
        from rollsafe.state.base import StateUnavailableError

        with contextlib.suppress(StateUnavailableError):
            for record in self._journal.history(self.env.name, service, limit=20):
                if record.outcome == "succeeded":
                    return record.id, record.finished or record.started
        return None, None

    def _error(self, source: str, line: MonitorLine, result: PassResult | None = None) -> None:
        """Say ``line`` unless ``source`` said the same last time (an outage, once)."""
        if self._errors.get(source) != line.summary:
            self._errors[source] = line.summary
            self._emit(line, result)

    def _recovered(self, source: str) -> None:
        self._errors.pop(source, None)

    def _prune(self, now: float) -> None:
        """From the first pass this monitor leads, and every ``PRUNE_EVERY`` after: what
        is past ``monitor.retention`` goes. The alert history (past the longest ``daily``
        of the services) and the rollups at once (one list of each namespace), the
        probe buckets (past each service's ``raw``) ``PRUNE_BATCH`` services a pass, so a
        thousand services do not hold up a pass."""
        if self._unpruned is None or (not self._unpruned and now - self._pruned_at >= PRUNE_EVERY):
            from rollsafe.monitor.rollups import prune_rollups

            self._pruned_at = now
            daily = max((self._retention(n).daily for n in self._targets), default=90 * 86400.0)
            self._history.prune(now - daily)
            prune_rollups(self._store, self.env.name, now, retention_of=self._retention)
            self._unpruned = list(self._targets)
        if self._unpruned:
            batch = self._unpruned[:PRUNE_BATCH]
            del self._unpruned[:PRUNE_BATCH]
            for name in batch:
                self._recorder.prune([name], self._pruned_at - self._retention(name).raw)

    def _heartbeat(self) -> None:
        """Say this monitor is alive (the status page's staleness); never fatal."""
        from rollsafe.monitor.snapshots import write_heartbeat
        from rollsafe.state.base import StateError

        try:
            write_heartbeat(self._store, self.env.name, self._clock(), self.tick, self._holder)
        except StateError as exc:
            if self._heartbeat_error is None:
                _log.warning("monitor heartbeat not saved (retried each pass): %s", exc)
            self._heartbeat_error = exc.message
            return
        self._heartbeat_error = None

    # -- evaluation ------------------------------------------------------------------
    def _evaluate(self, observations: list[Observation], result: PassResult) -> None:
        result.observations = observations
        events = list(self._book.observe(observations))
        if self._rollback is not None:
            events = [self._act(event) for event in events]
        result.events = events
        if events and self._notifier is not None:
            self._notifier.submit(events)
        active = self._book.active()
        # for the incident report; a store that refuses it is logged, never fatal
        self._history.record(events, fired_at=_fired_at(active) if events else None)
        if self._metrics is not None:
            self._metrics.set_alerts(active)
        summaries = {(o.service, o.alertname): o for o in observations}
        self._pending_lines(active, summaries, result)
        for event in events:
            self._emit(MonitorLine.of_event(event, self._clock()), result)
        # an info alert (a new error template) is worth knowing, not a failure
        failing = {_key(o) for o in observations if not o.ok and o.severity != "info"}
        failing.update(self._firing(active))
        result.failing = sorted(failing)

    def _act(self, event: AlertEvent) -> AlertEvent:
        action = self._rollback.consider(event)
        return replace(event, action=action) if action else event

    def _pending_lines(
        self,
        active: list[dict[str, Any]],
        observed: dict[tuple[str, str], Observation],
        result: PassResult,
    ) -> None:
        """A line for each alert that became pending (firing and resolved come as events)."""
        statuses: dict[str, str] = {}
        for alert in active:
            labels = alert.get("labels", {})
            key = f"{labels.get('service')}/{labels.get('alertname')}"
            status = str(alert.get("status"))
            statuses[key] = status
            if status == AlertStatus.PENDING.value and self._statuses.get(key) != status:
                obs = observed.get((labels.get("service", ""), labels.get("alertname", "")))
                line = MonitorLine(
                    self._clock(),
                    str(labels.get("service")),
                    str(labels.get("alertname")),
                    LineState.PENDING,
                    obs.summary if obs else "failing",
                    severity=str(labels.get("severity", "")),
                    revision=labels.get("revision"),
                    evidence=obs.evidence if obs else (),
                )
                self._emit(line, result)
        self._statuses = statuses

    def _firing(self, active: list[dict[str, Any]] | None = None) -> list[str]:
        if active is None:
            active = self._book.active()
        return sorted(
            f"{a['labels'].get('service')}/{a['labels'].get('alertname')}"
            for a in active
            if str(a.get("status")) == AlertStatus.FIRING.value
            and a["labels"].get("severity") != "info"
        )

    def _line(self, service: str, alert: str, state: str, summary: str) -> MonitorLine:
        return MonitorLine(self._clock(), service, alert, state, summary)

    # -- lifetime --------------------------------------------------------------------
    def close(self, flush: float = FLUSH_SECONDS) -> None:
        """Write the probe buckets held, send what is queued (at most ``flush``
        seconds), close the prober and loop."""
        if self._drift is not None:
            self._drift.close()
        try:
            self._recorder.flush(self._clock(), force=True)
            if self._unpruned is not None:  # it led: the page reads what it just wrote
                self._heartbeat()
            if self._notifier is not None:
                self._notifier.flush(flush)
                self._notifier.close()
            else:
                for receiver in self._receivers:  # a standby never handed them over
                    receiver.close()
            if self._signals is not None:
                self._signals.flush()
        finally:
            if self._prober is not None:
                self._loop.run_until_complete(self._prober.aclose())
                self._prober = None
            self._loop.close()

    def __enter__(self) -> MonitorEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def _key(observation: Observation) -> str:
    return f"{observation.service}/{observation.alertname}"


def _fired_at(active: list[dict[str, Any]]) -> dict[str, float]:
    """``SERVICE/ALERTNAME`` -> when it fired, of the ``AlertBook``'s active alerts."""
    return {
        f"{a['service']}/{a['alertname']}": float(a["fired_at"])
        for a in active
        if a.get("fired_at") is not None
    }
