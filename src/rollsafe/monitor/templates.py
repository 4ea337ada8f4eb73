"""Error lines grouped into templates with Drain3: what changed after a deploy.

Each service has its own ``drain3.TemplateMiner`` (ids, numbers, hex and addresses masked
first). A line that makes a new template (Drain3's ``cluster_created``) after a rollsafe
deploy of that service is flagged: a ``NewErrorTemplate`` observation (severity info)
naming the template and the deploy id, with the line's ``log://`` id as evidence.

Only what was watched counts: a template is "new after the deploy" only if the monitor was
already learning this environment's lines before the deploy (kv key ``@since``, written
once), so a monitor started long after a deploy does not flag every error it then sees
for the first time.

State: each miner's Drain3 snapshot lives in the StateStore (kv ``monitor/templates/{env}``,
key ``SERVICE``) through a Drain3 ``PersistenceHandler``, so a restarted monitor knows the
templates it had seen and does not flag them again. A new template is saved at once; a
template that only changed (a token became ``<*>``) is saved at most every ``save_every``
seconds, and at ``flush()``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from rollsafe.errors import RollsafeError
from rollsafe.monitor.logs import LogEntryLine
from rollsafe.monitor.model import AlertName, Observation
from rollsafe.state.base import StateStore

__all__ = ["ErrorTemplates", "templates_namespace"]

_HINT = "pip install 'rollsafe[monitor]'"
#: the kv key of when the environment's templates started being learnt
_SINCE_KEY = "@since"
#: how long a NewErrorTemplate stays failing before ``observe`` resolves it
DEFAULT_HOLD = 300.0
_MASKS = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "UUID"),
    (r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b", "IP"),
    (r"\b0x[0-9a-fA-F]+\b|\b[0-9a-fA-F]{12,}\b", "HEX"),
    (r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w.])", "NUM"),
)


def templates_namespace(env: str) -> str:
    """The kv namespace of an environment's Drain3 state."""
    return f"monitor/templates/{env}"


def _drain3() -> Any:
    try:
        import drain3
        import drain3.masking
        import drain3.persistence_handler
        import drain3.template_miner_config
    except ImportError as exc:  # the monitor extra is not installed
        raise RollsafeError(
            "grouping error lines into templates needs drain3, which is not installed",
            hint=_HINT,
        ) from exc
    return drain3


class _Miner:
    """One service's miner, its kv record and when it started learning."""

    def __init__(self, store: StateStore, namespace: str, service: str, now: float) -> None:
        """``now``: when the environment's learning started."""
        drain3 = _drain3()
        self.store = store
        self.namespace = namespace
        self.service = service
        found = store.kv_get(namespace, service)
        record = found[0] if found is not None and isinstance(found[0], dict) else {}
        self.since = float(record.get("since") or now)
        self._state: str | None = record.get("state")
        self.dirty = False
        self.saved_at = now

        miner = self
        handler: Any = drain3.persistence_handler.PersistenceHandler

        class KvPersistence(handler):  # type: ignore[misc]
            """Drain3's snapshots kept in the StateStore's kv, beside ``since``."""

            def save_state(self, state: bytes) -> None:
                miner._state = base64.b64encode(state).decode("ascii")
                miner.dirty = True

            def load_state(self) -> bytes | None:
                return base64.b64decode(miner._state) if miner._state else None

        config = drain3.template_miner_config.TemplateMinerConfig()
        config.snapshot_compress_state = True
        config.snapshot_interval_minutes = 10**6  # rollsafe decides when to write
        config.drain_max_clusters = 1000
        config.masking_instructions = [
            drain3.masking.MaskingInstruction(pattern, name) for pattern, name in _MASKS
        ]
        self.miner = drain3.TemplateMiner(KvPersistence(), config)
        if found is None:
            self.dirty = True  # record ``since`` now: it is what makes later templates "new"

    def save(self, now: float) -> None:
        value = {"since": self.since, "state": self._state}
        self.store.kv_put(self.namespace, self.service, value)
        self.dirty = False
        self.saved_at = now


class ErrorTemplates:
    """Drain3 templates of each service's error lines, kept in ``store`` per ``env``.

    ``add`` one line at a time (the caller chooses the lines: severity ERROR and above,
    and lines that matched a log alert); ``observe`` resolves a service's
    ``NewErrorTemplate`` once ``hold`` seconds passed without another new template.
    Raises ``RollsafeError`` with an install hint when drain3 is missing.
    """

    def __init__(
        self,
        store: StateStore,
        env: str,
        *,
        hold: float = DEFAULT_HOLD,
        save_every: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _drain3()  # the install hint now, not at the first error line
        self.store = store
        self.env = env
        self.hold = hold
        self.save_every = save_every
        self._clock = clock
        self._miners: dict[str, _Miner] = {}
        namespace = templates_namespace(env)
        found = store.kv_get(namespace, _SINCE_KEY)
        if found is None or not isinstance(found[0], int | float):
            self.since = clock()
            store.kv_put(namespace, _SINCE_KEY, self.since)
        else:
            self.since = float(found[0])
        #: service -> when its last new template was flagged (for ``observe``)
        self._flagged: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"ErrorTemplates(env={self.env!r}, services={len(self._miners)})"

    @staticmethod
    def wants(line: LogEntryLine) -> bool:
        """Whether a line is an error line (severity ERROR or above)."""
        return line.level >= 500

    def _miner(self, service: str) -> _Miner:
        miner = self._miners.get(service)
        if miner is None:
            miner = _Miner(self.store, templates_namespace(self.env), service, self.since)
            self._miners[service] = miner
        return miner

    def templates(self, service: str) -> list[str]:
        """The templates learnt for ``service`` so far."""
        return [c.get_template() for c in self._miner(service).miner.drain.clusters]

    def add(
        self, line: LogEntryLine, deploy_id: str | None, deployed_at: float | None
    ) -> Observation | None:
        """Learn ``line``; a ``NewErrorTemplate`` observation if it made a template that
        was first seen after deploy ``deploy_id`` (made at ``deployed_at``), else None."""
        miner = self._miner(line.service)
        result = miner.miner.add_log_message(" ".join(line.text.split()))
        now = self._clock()
        created = result["change_type"] == "cluster_created"
        if miner.dirty and (created or now - miner.saved_at >= self.save_every):
            miner.save(now)
        if not created or deploy_id is None or deployed_at is None:
            return None
        if line.at < deployed_at or deployed_at < miner.since:
            return None  # before the deploy, or nobody watched the time before it
        self._flagged[line.service] = now
        template = str(result["template_mined"])
        where = f" (revision {line.revision})" if line.revision else ""
        return Observation(
            service=line.service,
            alertname=AlertName.NEW_ERROR_TEMPLATE.value,
            ok=False,
            severity="info",
            summary=f"{line.service}{where}: a new kind of error line since deploy {deploy_id}",
            description=(
                f"Error template first seen after deploy {deploy_id}{where}: {template[:300]}"
            ),
            revision=line.revision or None,
            evidence=(line.evidence,),
            at=line.at,
            thresholds=(1, 1),
            value=float(result["cluster_id"]),
        )

    def observe(self, service: str, now: float | None = None) -> Observation | None:
        """``NewErrorTemplate`` resolved (ok) for ``service`` once ``hold`` seconds passed
        since its last new template; None otherwise."""
        now = self._clock() if now is None else now
        flagged = self._flagged.get(service)
        if flagged is None or now - flagged < self.hold:
            return None
        del self._flagged[service]
        return Observation(
            service=service,
            alertname=AlertName.NEW_ERROR_TEMPLATE.value,
            ok=True,
            severity="info",
            summary=f"{service}: no new kind of error line for {self.hold:.0f} s",
            at=now,
            thresholds=(1, 1),
        )

    def flush(self) -> None:
        """Write every miner whose state changed since it was last written."""
        now = self._clock()
        for miner in self._miners.values():
            if miner.dirty:
                miner.save(now)
