"""Reading the two live sides in batches, counting every call.

Secret Manager allows 600 *read* requests (listings, metadata) a minute per project and
90,000 accesses, so the store is read as little as the comparison allows: one listing of
secrets, at most one listing of versions per referenced secret, and an access only for each
distinct version a serving revision pins (for ``weak_secret``). Reads can be paced to a
budget per minute (``ReadPacer``). The platform is read with one ``get_service`` and, for a
deployed service, one ``list_revisions``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from rollsafe.drift.model import ApiCalls, Side
from rollsafe.platforms import ALL_USERS, Platform, RevisionInfo, ServiceInfo
from rollsafe.stores import (
    SecretNotFoundError,
    SecretStore,
    SecretValue,
    SecretVersionInfo,
    VersionNotFoundError,
    VersionState,
    VersionUnavailableError,
    latest_version,
)

__all__ = [
    "WORKERS",
    "ReadPacer",
    "RefState",
    "ServiceView",
    "StoreView",
    "read_platform",
    "read_store",
]

#: calls in flight at once, per side (the check engine uses the same bound)
WORKERS = 8

T = TypeVar("T")
R = TypeVar("R")


def _parallel(func: Callable[[T], R], items: list[T]) -> list[R]:
    if len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(min(WORKERS, len(items))) as pool:
        return list(pool.map(func, items))


class ReadPacer:
    """At most ``per_minute`` reads in any 60 seconds: a read past the budget waits.

    ``None`` means no limit (the emulator, a dotenv file). ``clock`` and ``sleep`` are
    injectable so tests need not wait.
    """

    def __init__(
        self,
        per_minute: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute is not None and per_minute < 1:
            raise ValueError("a read budget is at least 1 a minute")
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._times: deque[float] = deque()
        self.waited = 0.0

    def acquire(self) -> None:
        if self.per_minute is None:
            return
        # one reader at a time while waiting keeps the window exact across threads
        with self._lock:
            now = self._clock()
            while self._times and now - self._times[0] >= 60.0:
                self._times.popleft()
            if len(self._times) >= self.per_minute:
                pause = 60.0 - (now - self._times[0])
                self._sleep(pause)
                self.waited += pause
                now = self._clock()
                self._times.popleft()
            self._times.append(now)


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A service as the platform has it: ``None`` info when it does not exist.

    ``serving`` holds the revisions with a share of traffic, largest share first;
    ``public``: whether ``allUsers`` may invoke it (None when it does not exist).
    """

    name: str
    info: ServiceInfo | None
    serving: tuple[tuple[RevisionInfo, int], ...] = ()
    public: bool | None = None


def read_platform(platform: Platform, names: list[str], calls: ApiCalls) -> dict[str, ServiceView]:
    """One ``get_service`` per service; one ``get_iam_policy`` per existing one and one
    ``list_revisions`` per deployed one."""

    def one(name: str) -> ServiceView:
        info = platform.get_service(name)
        calls.add("run", "get_service")
        if info is None:
            return ServiceView(name, info)
        public = ALL_USERS in platform.get_invokers(name)
        calls.add("run", "get_iam_policy")
        split = info.split()
        if not split:
            return ServiceView(name, info, public=public)
        revisions = {r.name: r for r in platform.list_revisions(name)}
        calls.add("run", "list_revisions")
        ordered = sorted(split.items(), key=lambda kv: (-kv[1], kv[0]))
        serving = tuple((revisions[rev], pct) for rev, pct in ordered if rev in revisions)
        return ServiceView(name, info, serving, public)

    return dict(zip(names, _parallel(one, names), strict=True))


@dataclass(frozen=True, slots=True)
class RefState:
    """What ``secret:version`` points at in the store.

    ``info`` is the version it names (``latest``: the newest version, whatever its state,
    as Secret Manager resolves it); ``usable`` when that version exists and is enabled.
    """

    secret: str
    version: str
    exists: bool
    info: SecretVersionInfo | None
    latest: SecretVersionInfo | None
    latest_enabled: SecretVersionInfo | None

    @property
    def usable(self) -> bool:
        return self.info is not None and self.info.state is VersionState.ENABLED

    @property
    def source(self) -> str:
        return self.info.source if self.info else f"sm://{self.secret}"

    def problem(self) -> str | None:
        """Why an instance start would fail to read it, or ``None`` if it would not."""
        if not self.exists:
            return f"secret '{self.secret}' does not exist"
        if self.info is None:
            if self.version == "latest":
                return f"secret '{self.secret}' has no versions"
            return f"secret '{self.secret}' has no version {self.version}"
        if self.info.state is not VersionState.ENABLED:
            label = f"version {self.info.version}" + (
                " (latest)" if self.version == "latest" else ""
            )
            return f"{label} of secret '{self.secret}' is {self.info.state.value.lower()}"
        return None

    def side(self) -> Side:
        """The store side of a finding: existence, the version, its state, the newest ones."""
        side: Side = {"secret": self.secret, "exists": self.exists}
        if not self.exists:
            return side
        side["version"] = self.info.version if self.info else None
        side["state"] = self.info.state.value if self.info else None
        side["latest"] = self.latest.version if self.latest else None
        side["latest_enabled"] = self.latest_enabled.version if self.latest_enabled else None
        return side


class StoreView:
    """The store's secrets and the versions of the referenced ones, read once."""

    def __init__(
        self,
        description: str,
        existing: set[str],
        versions: dict[str, list[SecretVersionInfo]],
    ) -> None:
        self.description = description
        self.existing = existing
        self.versions = versions
        self.values: dict[tuple[str, int], SecretValue | None] = {}

    def ref(self, secret: str, version: str) -> RefState:
        if secret not in self.existing:
            return RefState(secret, version, False, None, None, None)
        versions = self.versions.get(secret, [])
        latest = latest_version(versions)
        enabled = latest_version([v for v in versions if v.state is VersionState.ENABLED])
        if version == "latest":
            info = latest
        else:
            number = int(version) if version.isdigit() else None
            info = next((v for v in versions if v.version == number), None)
        return RefState(secret, version, True, info, latest, enabled)

    def newer_than(self, secret: str, revision: RevisionInfo) -> list[SecretVersionInfo]:
        """Versions of ``secret`` created after ``revision`` was."""
        if revision.create_time is None:
            return []
        created = revision.create_time
        return [v for v in self.versions.get(secret, []) if v.create_time > created]

    def fetch(self, store: SecretStore, refs: Iterable[tuple[str, int]], calls: ApiCalls) -> None:
        """Access each distinct ``(secret, version)`` once; unreadable ones become ``None``."""

        def access(ref: tuple[str, int]) -> SecretValue | None:
            try:
                return store.access(ref[0], str(ref[1]))
            except (SecretNotFoundError, VersionNotFoundError, VersionUnavailableError):
                # changed since it was listed: the listing already judged the state
                return None
            finally:
                calls.add("secretmanager", "access")

        todo = sorted(set(refs) - set(self.values))
        self.values.update(zip(todo, _parallel(access, todo), strict=True))


def read_store(
    store: SecretStore,
    referenced: Iterable[str],
    calls: ApiCalls,
    pacer: ReadPacer | None = None,
) -> StoreView:
    """List the store once, then the versions of each referenced secret that exists."""
    pacer = pacer or ReadPacer(None)
    pacer.acquire()
    existing = set(store.list_secrets())
    calls.add("secretmanager", "list_secrets")
    names = sorted(set(referenced) & existing)

    def versions(name: str) -> list[SecretVersionInfo] | None:
        pacer.acquire()
        try:
            return store.list_versions(name)
        except SecretNotFoundError:
            return None  # deleted since the listing
        finally:
            calls.add("secretmanager", "list_versions")

    listed = dict(zip(names, _parallel(versions, names), strict=True))
    gone = {name for name, found in listed.items() if found is None}
    kept = {name: found for name, found in listed.items() if found is not None}
    return StoreView(store.description, existing - gone, kept)
