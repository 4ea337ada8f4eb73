"""What the monitor leaves for the status page besides probes and alerts.

- the heartbeat, kv ``monitor/heartbeat/{env}`` key ``monitor``: ``{"at", "interval",
  "holder"}``, written every pass: the page says its data may be stale when it is older
  than 3 intervals;
- service snapshots, kv ``monitor/services/{env}`` key ``{service}``: ``{"url",
  "traffic": [{"revision", "percent", "tag"}], "latest_ready", "updated"}``, written
  when the service's URL, traffic or latest ready revision changes;
- drift snapshots, kv ``drift/last/{env}`` key ``{service}``: ``{"at", "findings":
  [DriftFinding.to_dict(), ...]}``, written after each drift run (the monitor runs one at
  start and every 15 minutes off its loop, ``DriftWatch``; ``rollsafe drift`` writes it
  too).

A write the store refuses is logged once per outage and never stops the monitor. None of
these hold a secret value or a receiver URL: a drift finding holds names and versions only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from rollsafe.errors import RollsafeError
from rollsafe.state.base import StateError, StateStore

if TYPE_CHECKING:
    from rollsafe.drift.model import DriftReport
    from rollsafe.platforms.base import ServiceInfo

__all__ = [
    "DRIFT_EVERY",
    "DriftWatch",
    "ServiceSnapshots",
    "drift_namespace",
    "heartbeat_namespace",
    "services_namespace",
    "write_drift_snapshot",
    "write_heartbeat",
]

_log = logging.getLogger("rollsafe.monitor")

#: seconds between the monitor's drift runs
DRIFT_EVERY = 15 * 60.0
HEARTBEAT_KEY = "monitor"


def heartbeat_namespace(env: str) -> str:
    """The kv namespace of ``env``'s monitor heartbeat (one key: ``monitor``)."""
    return f"monitor/heartbeat/{env}"


def services_namespace(env: str) -> str:
    """The kv namespace of ``env``'s service snapshots (one key per service)."""
    return f"monitor/services/{env}"


def drift_namespace(env: str) -> str:
    """The kv namespace of ``env``'s last drift findings (one key per service)."""
    return f"drift/last/{env}"


def write_heartbeat(store: StateStore, env: str, at: float, interval: float, holder: str) -> None:
    """Say the monitor of ``env`` was alive at ``at``; ``StateError`` when refused."""
    store.kv_put(
        heartbeat_namespace(env),
        HEARTBEAT_KEY,
        {"at": at, "interval": interval, "holder": holder},
    )


def _snapshot(info: ServiceInfo) -> dict[str, Any]:
    return {
        "url": info.url,
        "traffic": [
            {"revision": t.revision, "percent": t.percent, "tag": t.tag} for t in info.traffic
        ],
        "latest_ready": info.latest_ready_revision,
    }


class ServiceSnapshots:
    """Writes a service's snapshot when it differs from the last one written."""

    def __init__(self, store: StateStore, env: str, *, clock: Callable[[], float] = time.time):
        self.store = store
        self._ns = services_namespace(env)
        self._clock = clock
        self._last: dict[str, dict[str, Any]] = {}
        self.state_error: str | None = None

    def observe(self, service: str, info: ServiceInfo) -> bool:
        """Record ``info`` of ``service``; True when a snapshot was written."""
        made = _snapshot(info)
        if self._last.get(service) == made:
            return False
        try:
            self.store.kv_put(self._ns, service, {**made, "updated": self._clock()})
        except StateError as exc:
            if self.state_error is None:
                _log.warning("service snapshot not saved (retried next pass): %s", exc)
            self.state_error = exc.message
            return False
        self.state_error = None
        self._last[service] = made
        return True


def write_drift_snapshot(
    store: StateStore, report: DriftReport, *, at: float, services: Iterable[str] | None = None
) -> int:
    """Write ``report``'s findings per compared service (an empty list for a service
    without drift, so the page knows it was looked at); return how many keys were written.
    ``StateError`` when the store refuses."""
    names = list(services) if services is not None else list(report.services)
    by_service: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for finding in report.findings:
        if finding.service in by_service:
            by_service[finding.service].append(finding.to_dict())
    ns = drift_namespace(report.env)
    for name, findings in by_service.items():
        store.kv_put(ns, name, {"at": at, "findings": findings})
    return len(by_service)


class DriftWatch:
    """Runs ``run`` (a drift run of the environment) in a background thread at start and
    every ``every`` seconds, and writes each report's snapshot; a failing run is logged
    (once until one succeeds), never fatal, and never holds up the monitor's loop."""

    def __init__(
        self,
        store: StateStore,
        run: Callable[[], DriftReport],
        *,
        every: float = DRIFT_EVERY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._run = run
        self._every = every
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.last_error: str | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="rollsafe-drift", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self._every)

    def run_once(self) -> bool:
        """One drift run and its snapshot; False when it failed (logged)."""
        try:
            report = self._run()
            write_drift_snapshot(self.store, report, at=self._clock())
        except RollsafeError as exc:
            if self.last_error != exc.message:
                _log.warning("drift snapshot not taken (tried again later): %s", exc.message)
            self.last_error = exc.message
            return False
        except Exception as exc:  # a background thread must never die silently
            text = f"{type(exc).__name__}: {exc}"
            if self.last_error != text:
                _log.warning("drift snapshot not taken (tried again later): %s", text)
            self.last_error = text
            return False
        self.last_error = None
        self.runs += 1
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (a run in progress finishes on its own: it is a daemon)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
