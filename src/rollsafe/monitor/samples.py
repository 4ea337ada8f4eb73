"""The monitor's probe results, counted in one-minute buckets.

The incident report (``rollsafe why``) states how many probes failed and with which
statuses; the status page (issue 14) will draw on the same data. Every probe result goes
into a ``ProbeBucket`` of its service and minute (``ProbeRecorder.add``), kept in memory;
``flush`` (once per pass) writes the kv namespace ``monitor/probes/{env}``, key
``{service}/{bucket_start}``:

- a closed bucket (its minute is over) is written once, then forgotten, so a healthy
  service costs one write per minute however often it is probed. Each service writes at
  its own second of the next minute (a stable offset from its name), so a thousand
  services make a few writes per pass rather than a thousand at the turn of the minute
  (a SQLite store spends about 2.7 ms per write: 2.7 s at once would hold up the passes);
- the open bucket is written too when it holds a failure, so a report made during an
  outage counts the failures of the current minute (one write per pass while it fails);
- ``flush(force=True)`` (the engine's ``close``) writes what is left.

Every write is a compare-and-swap on the version last seen ("no key yet" for the first):
if another monitor (before a restart, or around a leader change) wrote the same minute, its
counts are read and added to, not overwritten; only that conflict costs a read. A write
the store refuses is logged (once per outage) and tried again with the next flush; it
never stops the monitor. Buckets older than ``monitor.retention.raw`` (2 days by
default) are pruned by the engine (``prune``, a batch of services per pass).

With a ``RollupWriter`` (``rollups=``), each bucket is folded into its service's hourly
and daily rollups (``rollsafe.monitor.rollups``) once it is closed and written: the
counts this recorder added since its last fold, so a conflict with another monitor's
counts, or a bucket written again, is never counted twice. Buckets also count their
probes per serving revision (``revisions``), for the status page's error rate per
revision.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from rollsafe.state.base import StateConflictError, StateError, StateStore

__all__ = [
    "ProbeBucket",
    "ProbeRecorder",
    "probes_namespace",
    "read_probe_buckets",
]

if TYPE_CHECKING:
    from rollsafe.monitor.rollups import RollupWriter

_log = logging.getLogger("rollsafe.monitor")

#: a bucket is at most an hour (readers look that far before ``since`` for its start)
_MAX_BUCKET = 3600
#: buckets held in memory while the store refuses writes (about 16 h of 100 services)
_MAX_HELD = 100_000
#: ``kv_list`` calls one read may make (decimal key prefixes; more: coarser prefixes)
_MAX_PREFIXES = 12
#: pruning lists whole blocks of this many seconds (about a day) below the cutoff
_PRUNE_BLOCK = 100_000


def probes_namespace(env: str) -> str:
    """The kv namespace of ``env``'s probe buckets."""
    return f"monitor/probes/{env}"


@dataclass
class ProbeBucket:
    """The probes of one service in ``[start, start + seconds)``.

    ``statuses`` counts the answers by HTTP status (``"200"``, ``"503"``) and ``"error"``
    for no answer; ``latency_sum``/``latency_max`` cover the probes that measured one
    (``latency_sum / total`` is the mean when every probe did). ``first_failed`` and
    ``last_failed`` are the times of the bucket's first and last failing probe.
    """

    service: str
    start: int
    total: int = 0
    failed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    latency_sum: float = 0.0
    latency_max: float = 0.0
    first_failed: float | None = None
    last_failed: float | None = None
    #: the bucket's length in seconds (the recorder's ``bucket``)
    seconds: int = 60
    #: serving revision -> [total, failed] of the probes made while it served
    revisions: dict[str, list[int]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The bucket's kv key: ``{service}/{start}``."""
        return f"{self.service}/{self.start:d}"

    @property
    def end(self) -> int:
        """The end of the bucket (exclusive)."""
        return self.start + self.seconds

    def add(
        self,
        at: float,
        ok: bool,
        status: int | None,
        latency: float | None,
        revision: str | None = None,
    ) -> None:
        """Count one probe result (made while ``revision`` served, if known)."""
        at = float(at)
        self.total += 1
        if revision:
            counts = self.revisions.setdefault(revision, [0, 0])
            counts[0] += 1
            counts[1] += 0 if ok else 1
        code = str(status) if status is not None else "error"
        self.statuses[code] = self.statuses.get(code, 0) + 1
        if latency is not None:
            self.latency_sum += latency
            self.latency_max = max(self.latency_max, latency)
        if not ok:
            self.failed += 1
            self.first_failed = at if self.first_failed is None else min(self.first_failed, at)
            self.last_failed = at if self.last_failed is None else max(self.last_failed, at)

    def merged(self, other: ProbeBucket) -> ProbeBucket:
        """This bucket's counts plus ``other``'s (the same service and minute)."""
        made = ProbeBucket.from_json(self.to_json())
        made.total += other.total
        made.failed += other.failed
        for code, count in other.statuses.items():
            made.statuses[code] = made.statuses.get(code, 0) + count
        made.latency_sum += other.latency_sum
        made.latency_max = max(made.latency_max, other.latency_max)
        made.first_failed = _least(made.first_failed, other.first_failed)
        made.last_failed = _most(made.last_failed, other.last_failed)
        for rev, (total, failed) in other.revisions.items():
            mine = made.revisions.setdefault(rev, [0, 0])
            made.revisions[rev] = [mine[0] + total, mine[1] + failed]
        return made

    def minus(self, other: ProbeBucket) -> ProbeBucket:
        """This bucket's counts without ``other``'s (counted in it before); the maxima and
        failure times stay, as they cannot be taken apart."""
        made = ProbeBucket.from_json(self.to_json())
        made.total = max(0, made.total - other.total)
        made.failed = max(0, made.failed - other.failed)
        for code, count in other.statuses.items():
            left = made.statuses.get(code, 0) - count
            if left > 0:
                made.statuses[code] = left
            else:
                made.statuses.pop(code, None)
        made.latency_sum = max(0.0, made.latency_sum - other.latency_sum)
        for rev, (total, failed) in other.revisions.items():
            mine = made.revisions.get(rev, [0, 0])
            rest = [max(0, mine[0] - total), max(0, mine[1] - failed)]
            if rest[0] > 0:
                made.revisions[rev] = rest
            else:
                made.revisions.pop(rev, None)
        return made

    def to_json(self) -> dict[str, Any]:
        """The bucket as stored (JSON types only)."""
        raw = {f.name: getattr(self, f.name) for f in fields(self)}
        raw["statuses"] = dict(self.statuses)
        raw["revisions"] = {k: list(v) for k, v in self.revisions.items()}
        return raw

    @classmethod
    def from_json(cls, raw: Any) -> ProbeBucket:
        """A bucket as stored; ``ValueError`` when ``raw`` is not one."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"a probe bucket is an object, not {type(raw).__name__}")
        try:
            statuses = raw.get("statuses") or {}
            revisions = raw.get("revisions") or {}
            return cls(
                service=str(raw["service"]),
                start=int(raw["start"]),
                total=int(raw.get("total") or 0),
                failed=int(raw.get("failed") or 0),
                statuses={str(k): int(v) for k, v in statuses.items()},
                latency_sum=float(raw.get("latency_sum") or 0.0),
                latency_max=float(raw.get("latency_max") or 0.0),
                first_failed=_float_or_none(raw.get("first_failed")),
                last_failed=_float_or_none(raw.get("last_failed")),
                seconds=int(raw.get("seconds") or 60),
                revisions={str(k): [int(v[0]), int(v[1])] for k, v in revisions.items()},
            )
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"not a probe bucket: {exc}") from exc


def _float_or_none(value: Any) -> float | None:
    return float(value) if value is not None else None


def _least(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _most(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass
class _Held:
    """A bucket in memory: what this recorder counted, what other writers' counts it
    found stored (``base``), its own counts as last written, and whether it changed since."""

    bucket: ProbeBucket
    #: when a closed bucket is written: its end plus its service's offset
    write_at: float = 0.0
    base: ProbeBucket | None = None
    #: this recorder's counts in the stored value, and that value's version
    written: ProbeBucket | None = None
    version: int = 0
    dirty: bool = True
    #: this recorder's counts already folded into the rollups
    folded: ProbeBucket | None = None


class ProbeRecorder:
    """Counts ``env``'s probe results into buckets of ``bucket`` seconds and writes them
    to ``store`` (see the module's docstring for when).

    Not thread-safe: the monitor's loop (its leader) is its only caller.
    """

    def __init__(
        self,
        store: StateStore,
        env: str,
        *,
        bucket: int = 60,
        rollups: RollupWriter | None = None,
    ) -> None:
        if not 1 <= bucket <= _MAX_BUCKET:
            raise ValueError(f"a probe bucket is 1 to {_MAX_BUCKET} seconds, not {bucket}")
        self.store = store
        self.env = env
        self.bucket = bucket
        self._ns = probes_namespace(env)
        self._rollups = rollups
        self._held: dict[str, _Held] = {}
        #: the store's last refusal while it lasts
        self.state_error: str | None = None
        self._dropped = False

    def add(
        self,
        service: str,
        at: float,
        ok: bool,
        status: int | None,
        latency: float | None,
        revision: str | None = None,
    ) -> None:
        """Count one probe of ``service`` made at ``at`` (epoch seconds), while
        ``revision`` served (if known)."""
        start = int(at // self.bucket) * self.bucket
        key = f"{service}/{start:d}"
        held = self._held.get(key)
        if held is None:
            offset = zlib.crc32(service.encode()) % self.bucket
            held = self._held[key] = _Held(ProbeBucket(service, start, seconds=self.bucket))
            held.write_at = start + self.bucket + offset
        held.bucket.add(at, ok, status, latency, revision)
        held.dirty = True

    def flush(self, now: float, *, force: bool = False) -> None:
        """Write the closed buckets whose turn it is (then forget them), the open ones
        that hold a failure, and, with ``force``, every bucket that changed since its last
        write."""
        wrote = refused = False
        for key, held in list(self._held.items()):
            closed = held.write_at <= now
            if held.dirty and (closed or force or held.bucket.failed > 0):
                if not self._write(key, held):
                    refused = True
                    continue  # kept: written again next flush
                wrote = True
            if (closed or force) and not held.dirty:
                self._fold(held, now)
            if closed:
                del self._held[key]
        self._bound()
        if self._rollups is not None:
            self._rollups.flush(now)
        if wrote and not refused:
            self.state_error = None

    def _fold(self, held: _Held, now: float) -> None:
        """Fold what this recorder counted in ``held`` since its last fold into the
        rollups (written, closed or forced: its counts are final here)."""
        if self._rollups is None:
            return
        own = held.bucket
        new = own.minus(held.folded) if held.folded is not None else own
        if new.total > 0:
            self._rollups.add(
                own.service,
                own.start,
                new.total,
                new.failed,
                new.latency_sum,
                own.latency_max,
                at=min(now, own.end),
            )
        held.folded = ProbeBucket.from_json(own.to_json())

    def _write(self, key: str, held: _Held) -> bool:
        own = held.bucket
        try:
            try:
                counted = own if held.base is None else held.base.merged(own)
                version = self.store.kv_put(
                    self._ns, key, counted.to_json(), expect_version=held.version
                )
            except StateConflictError:
                # another monitor wrote this minute too (a restart, a leader change): what
                # it counted stays, this recorder's counts replace their last written self
                found = self.store.kv_get(self._ns, key)
                stored = _bucket_or_none(found[0]) if found is not None else None
                base = stored.minus(held.written) if stored and held.written else stored
                counted = own if base is None else base.merged(own)
                version = self.store.kv_put(
                    self._ns,
                    key,
                    counted.to_json(),
                    expect_version=found[1] if found is not None else 0,
                )
                held.base = base
        except StateError as exc:
            if self.state_error is None:  # once per outage, not once per bucket
                _log.warning("probe results not saved (retried each pass): %s", exc)
            self.state_error = exc.message
            return False
        held.version = version
        held.written = ProbeBucket.from_json(own.to_json())
        held.dirty = False
        return True

    def _bound(self) -> None:
        """While the store refuses writes, hold at most ``_MAX_HELD`` buckets (the oldest
        go first): memory stays bounded through a long outage."""
        extra = len(self._held) - _MAX_HELD
        if extra <= 0:
            return
        oldest = sorted(self._held, key=lambda k: self._held[k].bucket.start)[:extra]
        for key in oldest:
            del self._held[key]
        if not self._dropped:
            _log.warning("probe results dropped: the state store refused them too long")
            self._dropped = True

    def prune(self, services: Iterable[str], older_than: float) -> int:
        """Delete the buckets of ``services`` that ended before ``older_than``; return
        how many. Lists only keys below the cutoff (decimal prefixes of whole
        ``_PRUNE_BLOCK``s, a few dozen ``kv_list`` calls per service), never the days
        kept. A refused read or delete is logged and stops the pruning (the next round
        goes on). The engine calls it with each service's ``monitor.retention.raw``;
        services gone from the manifest keep their buckets."""
        cutoff = int(older_than)
        pruned = 0
        try:
            for service in services:
                for prefix in _prune_prefixes(cutoff):
                    found = self.store.kv_list(self._ns, f"{service}/{prefix}")
                    for key, (raw, _version) in found.items():
                        bucket = _bucket_or_none(raw)
                        if bucket is None or bucket.service != service or bucket.end > cutoff:
                            continue
                        self.store.kv_delete(self._ns, key)
                        pruned += 1
        except StateError as exc:
            _log.warning("probe results not pruned: %s", exc)
        return pruned


def _bucket_or_none(raw: Any) -> ProbeBucket | None:
    try:
        return ProbeBucket.from_json(raw)
    except ValueError:
        return None


def _decompose(low: int, high: int) -> list[str]:
    """Decimal prefixes of the integers in ``[low, high)``, all of one digit count: each
    prefix stands for every number of that count starting with it."""
    prefixes: list[str] = []
    while low < high:
        step = 1
        while low % (step * 10) == 0 and low + step * 10 <= high:
            step *= 10
        prefixes.append(str(low // step))
        low += step
    return prefixes


def _prune_prefixes(cutoff: int) -> list[str]:
    """Prefixes of the keys' starts below ``cutoff`` with its digit count, in whole
    ``_PRUNE_BLOCK``s (the block holding the cutoff waits for a later start)."""
    if cutoff < _PRUNE_BLOCK * 10:
        return [""]  # a test's small clock: list the service's keys
    digits = len(str(cutoff))
    low = 10 ** (digits - 1) // _PRUNE_BLOCK
    high = cutoff // _PRUNE_BLOCK
    return _decompose(low, high) if low < high else []


def _read_prefixes(low: int, high: int) -> list[str]:
    """At most ``_MAX_PREFIXES`` prefixes covering the starts ``[low, high]`` (more than
    that: the blocks get coarser, and the reader drops what falls outside)."""
    if low < 0 or len(str(low)) != len(str(high)):
        return [""]
    digits = len(str(low))
    for power in range(digits):
        block = 10**power
        prefixes = _decompose(low // block, high // block + 1)
        if len(prefixes) <= _MAX_PREFIXES:
            return prefixes
    return [""]


def read_probe_buckets(
    store: StateStore, env: str, service: str, *, since: float, until: float
) -> list[ProbeBucket]:
    """The buckets of ``service`` in ``env`` that overlap ``[since, until]``, oldest
    first. A bucket is a minute: its failures may lie a little outside the window (its
    ``first_failed``/``last_failed`` say). Reads only the keys near the window (a few
    ``kv_list`` calls on key prefixes), never the whole 90 days. ``StateError`` when the
    store cannot be read."""
    ns = probes_namespace(env)
    low = max(0, int(since) - _MAX_BUCKET)
    high = max(low, int(until))
    found: dict[str, Any] = {}
    for prefix in _read_prefixes(low, high):
        for key, (raw, _version) in store.kv_list(ns, f"{service}/{prefix}").items():
            found[key] = raw
    buckets: list[ProbeBucket] = []
    for raw in found.values():
        bucket = _bucket_or_none(raw)
        if bucket is None or bucket.service != service:
            continue
        if bucket.start <= until and bucket.end > since:
            buckets.append(bucket)
    buckets.sort(key=lambda b: b.start)
    return buckets
