"""``rollsafe monitor``: services watched after the deploy, alerts where people are,
rollback when a fresh deploy breaks.

The parts: ``MonitorEngine`` (the loop) turns signals (``AsyncProber``'s probes,
``ServiceLogReader``'s request and log lines, the service's own state, Drain3's error
templates) into ``Observation``s; ``AlertBook`` keeps each alert's state in the
``StateStore`` and yields ``AlertEvent``s; ``Notifier`` sends them to the receivers off the
loop; ``AutoRollback`` rolls a fresh deploy back; ``Leader`` elects one monitor of several;
``MonitorMetrics`` and ``MonitorServer`` expose ``/metrics``. For the incident report,
``AlertHistory`` keeps every announced alert (``read_alert_history``) and ``ProbeRecorder``
the probe results in one-minute buckets (``read_probe_buckets``).

Names load lazily: importing the model does not import the engine, Drain3 or httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "AlertEvent": "rollsafe.monitor.model",
    "AlertName": "rollsafe.monitor.model",
    "AlertStatus": "rollsafe.monitor.model",
    "EventKind": "rollsafe.monitor.model",
    "Notification": "rollsafe.monitor.model",
    "Observation": "rollsafe.monitor.model",
    "MonitorEngine": "rollsafe.monitor.engine",
    "MonitorLine": "rollsafe.monitor._output",
    "PassResult": "rollsafe.monitor._output",
    "AutoRollback": "rollsafe.monitor.rollback",
    "Leader": "rollsafe.monitor.leader",
    "MonitorRunningError": "rollsafe.monitor.leader",
    "AlertBook": "rollsafe.monitor.alerts",
    "Notifier": "rollsafe.monitor.notify",
    "Receiver": "rollsafe.monitor.receivers",
    "ReceiverError": "rollsafe.monitor.receivers",
    "InMemoryReceiver": "rollsafe.monitor.receivers",
    "open_receivers": "rollsafe.monitor.receivers",
    "AsyncProber": "rollsafe.monitor.probe",
    "ProbeSample": "rollsafe.monitor.probe",
    "ServiceLogReader": "rollsafe.monitor.logs",
    "MonitorMetrics": "rollsafe.monitor.metrics",
    "MonitorServer": "rollsafe.monitor.server",
    "AlertHistory": "rollsafe.monitor.history",
    "AlertRecord": "rollsafe.monitor.history",
    "history_namespace": "rollsafe.monitor.history",
    "read_alert_history": "rollsafe.monitor.history",
    "ProbeBucket": "rollsafe.monitor.samples",
    "ProbeRecorder": "rollsafe.monitor.samples",
    "probes_namespace": "rollsafe.monitor.samples",
    "read_probe_buckets": "rollsafe.monitor.samples",
}

__all__ = [
    "AlertBook",
    "AlertEvent",
    "AlertHistory",
    "AlertName",
    "AlertRecord",
    "AlertStatus",
    "AsyncProber",
    "AutoRollback",
    "EventKind",
    "InMemoryReceiver",
    "Leader",
    "MonitorEngine",
    "MonitorLine",
    "MonitorMetrics",
    "MonitorRunningError",
    "MonitorServer",
    "Notification",
    "Notifier",
    "Observation",
    "PassResult",
    "ProbeBucket",
    "ProbeRecorder",
    "ProbeSample",
    "Receiver",
    "ReceiverError",
    "ServiceLogReader",
    "history_namespace",
    "open_receivers",
    "probes_namespace",
    "read_alert_history",
    "read_probe_buckets",
]

if TYPE_CHECKING:
    from rollsafe.monitor._output import MonitorLine, PassResult
    from rollsafe.monitor.alerts import AlertBook
    from rollsafe.monitor.engine import MonitorEngine
    from rollsafe.monitor.history import (
        AlertHistory,
        AlertRecord,
        history_namespace,
        read_alert_history,
    )
    from rollsafe.monitor.leader import Leader, MonitorRunningError
    from rollsafe.monitor.logs import ServiceLogReader
    from rollsafe.monitor.metrics import MonitorMetrics
    from rollsafe.monitor.model import (
        AlertEvent,
        AlertName,
        AlertStatus,
        EventKind,
        Notification,
        Observation,
    )
    from rollsafe.monitor.notify import Notifier
    from rollsafe.monitor.probe import AsyncProber, ProbeSample
    from rollsafe.monitor.receivers import (
        InMemoryReceiver,
        Receiver,
        ReceiverError,
        open_receivers,
    )
    from rollsafe.monitor.rollback import AutoRollback
    from rollsafe.monitor.samples import (
        ProbeBucket,
        ProbeRecorder,
        probes_namespace,
        read_probe_buckets,
    )
    from rollsafe.monitor.server import MonitorServer


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rollsafe.monitor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
