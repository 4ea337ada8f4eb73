"""A revision's logs, read through the Cloud Logging API: why it did not start.

Cloud Run answers a revision that does not start with a fixed message ("... failed to start
and listen on the port ... Logs for this revision might contain more information.") and
never quotes the application. What happened is in the revision's logs: Cloud Run's own
``run.googleapis.com/varlog/system`` entries (``Container called exit(3).``, a startup probe
that gave up) and the application's output on ``stdout``/``stderr``, where the start-up
guard's JSON line arrives as a CRITICAL entry. ``rollsafe deploy`` reads them here, with the
same code on Google and on the emulator.

During a canary, ``request_stats`` reads the service's request log
(``run.googleapis.com/requests``, one entry per request Cloud Run's front end served) over a
time window and counts, per revision, the requests, the 5xx answers and the latencies.

``CloudLoggingRevisionLogs`` uses the official ``google-cloud-logging`` client (its REST
transport), pointed at the emulator when an endpoint is given and at Google's defaults (ADC)
otherwise; vendor errors are mapped in ``_map_errors`` only. ``InMemoryRevisionLogs`` is the
twin for unit tests.
"""

from __future__ import annotations

import json
import re
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from rollsafe._adapter import Adapter
from rollsafe._gcp import import_google
from rollsafe.platforms.base import PlatformError, PlatformUnavailableError

__all__ = [
    "REQUEST_LOG",
    "SEVERITIES",
    "SYSTEM_LOG",
    "CloudLoggingRevisionLogs",
    "InMemoryRevisionLogs",
    "LogLine",
    "LoggedEntry",
    "RequestStats",
    "RevisionLogs",
    "StartFailure",
    "request_filter",
    "rfc3339",
    "start_filter",
]

#: the log Cloud Run writes its own words about an instance to (URL-encoded in logName)
SYSTEM_LOG = "run.googleapis.com/varlog/system"
#: the log of the requests Cloud Run's front end served (URL-encoded in logName)
REQUEST_LOG = "run.googleapis.com/requests"
#: how long ``start_failure`` keeps reading: entries reach Cloud Logging seconds late
DEFAULT_WAIT = 10.0
_POLL = 0.5

_EXIT = re.compile(r"Container (?:called exit\(\d+\)|terminated on signal \d+)\.")
_PROBE = re.compile(r"STARTUP (?:TCP|HTTP|GRPC) probe failed")


#: Cloud Logging's severities by name (``google.logging.type.LogSeverity``): read by the
#: monitor and written by the emulator
SEVERITIES = {
    "DEFAULT": 0,
    "DEBUG": 100,
    "INFO": 200,
    "NOTICE": 300,
    "WARNING": 400,
    "ERROR": 500,
    "CRITICAL": 600,
    "ALERT": 700,
    "EMERGENCY": 800,
}


@dataclass(frozen=True, slots=True)
class LogLine:
    """One entry, reduced to what a deploy reports.

    ``log`` is the short log id (``run.googleapis.com/varlog/system``); ``text`` is the
    ``textPayload``, or the ``message`` of a ``jsonPayload`` (else the payload as JSON).
    """

    log: str
    severity: str
    text: str


@dataclass(frozen=True, slots=True)
class StartFailure:
    """What the logs say about a failed start: Cloud Run's line and the guard's line."""

    #: ``Container called exit(3).``, ``Container terminated on signal 9.`` or the
    #: startup probe's failure line; None when the logs hold none (yet)
    platform: str | None = None
    #: the message of the first CRITICAL entry (the start-up guard's refusal)
    critical: str | None = None

    def describe(self) -> str | None:
        """``Container called exit(3). start-up guard (CRITICAL): ...``, or None."""
        parts = []
        if self.platform:
            parts.append(self.platform)
        if self.critical:
            parts.append(f"start-up guard (CRITICAL): {self.critical}")
        return " ".join(parts) or None


@dataclass(frozen=True, slots=True)
class RequestStats:
    """The requests one revision answered in a window: how many, how many 5xx, latencies."""

    revision: str
    requests: int = 0
    errors: int = 0
    #: seconds, one per request that logged a latency
    latencies: tuple[float, ...] = ()

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def p95(self) -> float | None:
        """The 95th percentile latency (nearest rank), or None without latencies."""
        return self.percentile(95)

    def percentile(self, q: int) -> float | None:
        """The ``q``th percentile latency (nearest rank), or None without latencies."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(1, -(-q * len(ordered) // 100))  # ceil(q/100 n)
        return ordered[rank - 1]


def _count(entries: list[tuple[str, int, float | None]]) -> dict[str, RequestStats]:
    """(revision, status, latency) per request -> stats per revision, in first-seen order."""
    counts: dict[str, tuple[int, int, list[float]]] = {}
    for revision, status, latency in entries:
        total, errors, latencies = counts.setdefault(revision, (0, 0, []))
        if latency is not None:
            latencies.append(latency)
        counts[revision] = (total + 1, errors + (status >= 500), latencies)
    return {
        rev: RequestStats(rev, total, errors, tuple(lat))
        for rev, (total, errors, lat) in counts.items()
    }


def _is_platform_line(line: LogLine) -> bool:
    return line.log == SYSTEM_LOG and bool(_EXIT.search(line.text) or _PROBE.search(line.text))


def summarize(lines: list[LogLine]) -> StartFailure:
    """The first exit or probe failure of the system log and the first CRITICAL entry."""
    platform = next((line.text for line in lines if _is_platform_line(line)), None)
    critical = next(
        (line.text for line in lines if line.severity in ("CRITICAL", "ALERT", "EMERGENCY")),
        None,
    )
    return StartFailure(platform, critical)


class RevisionLogs(Adapter):
    """Reads the entries of one revision that explain why it did not start."""

    description: str = "logs"

    @abstractmethod
    def start_entries(self, service: str, revision: str) -> list[LogLine]:
        """The revision's system-log entries and its entries at CRITICAL or above, oldest
        first. Raises ``PlatformError`` when the logs cannot be read."""

    def start_failure(
        self,
        service: str,
        revision: str,
        *,
        wait: float = DEFAULT_WAIT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> StartFailure:
        """Read until Cloud Run's exit or probe line shows up, for at most ``wait`` seconds
        (logs lag behind the operation on Google); whatever was found by then."""
        deadline = time.monotonic() + wait
        while True:
            found = summarize(self.start_entries(service, revision))
            if found.platform is not None or time.monotonic() >= deadline:
                return found
            sleep(_POLL)

    @abstractmethod
    def request_stats(
        self, service: str, start: float, end: float, *, exclude_host: str | None = None
    ) -> dict[str, RequestStats]:
        """Per revision, the requests of ``service`` whose timestamp is in ``[start, end)``
        (``time.time()`` seconds). Requests to ``exclude_host`` (a tag URL's host: the
        deploy's own probes) and requests no revision answered are left out. Raises
        ``PlatformError`` when the logs cannot be read."""


class InMemoryRevisionLogs(RevisionLogs):
    """The twin: entries kept in a list per (service, revision), added with ``add``."""

    description = "memory-logs"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, str], list[LogLine]] = {}
        self._requests: list[tuple[str, str, float, int, float, str]] = []

    def add(self, service: str, revision: str, line: LogLine) -> None:
        with self._lock:
            self._lines.setdefault((service, revision), []).append(line)

    def add_request(
        self,
        service: str,
        revision: str,
        *,
        at: float,
        status: int,
        latency: float = 0.01,
        host: str = "",
    ) -> None:
        """One request-log entry: ``revision`` answered ``status`` at ``at`` (time.time())."""
        with self._lock:
            self._requests.append((service, revision, at, status, latency, host))

    def request_stats(
        self, service: str, start: float, end: float, *, exclude_host: str | None = None
    ) -> dict[str, RequestStats]:
        with self._lock:
            rows = list(self._requests)
        return _count(
            [
                (revision, status, latency)
                for svc, revision, at, status, latency, host in rows
                if svc == service
                and revision
                and start <= at < end
                and not (exclude_host and host == exclude_host)
            ]
        )

    def start_entries(self, service: str, revision: str) -> list[LogLine]:
        with self._lock:
            lines = list(self._lines.get((service, revision), []))
        wanted = ("CRITICAL", "ALERT", "EMERGENCY")
        return [line for line in lines if line.log == SYSTEM_LOG or line.severity in wanted]


def start_filter(project: str, service: str, revision: str) -> str:
    """The Logging query for one revision's system entries and CRITICAL entries."""
    system = f"projects/{project}/logs/{SYSTEM_LOG.replace('/', '%2F')}"
    return (
        'resource.type="cloud_run_revision"'
        f' AND resource.labels.service_name="{service}"'
        f' AND resource.labels.revision_name="{revision}"'
        f' AND (logName="{system}" OR severity>=CRITICAL)'
    )


def _rfc3339(moment: float) -> str:
    whole = int(moment)
    micros = round((moment - whole) * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


def request_filter(project: str, service: str, start: float, end: float) -> str:
    """The Logging query for a service's request-log entries in ``[start, end)``."""
    log = f"projects/{project}/logs/{REQUEST_LOG.replace('/', '%2F')}"
    return (
        f'logName="{log}"'
        ' AND resource.type="cloud_run_revision"'
        f' AND resource.labels.service_name="{service}"'
        f' AND timestamp>="{_rfc3339(start)}" AND timestamp<"{_rfc3339(end)}"'
    )


def _latency(raw: Any) -> float | None:
    """``"0.123s"`` (the JSON form of a protobuf Duration) -> 0.123."""
    if isinstance(raw, str) and raw.endswith("s"):
        try:
            return float(raw[:-1])
        except ValueError:
            return None
    return None


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


@contextmanager
def _map_errors(what: str) -> Iterator[None]:
    """The one place google.api_core errors of the Logging client become rollsafe errors."""
    exceptions = import_google("google.api_core.exceptions")
    auth = import_google("google.auth.exceptions")
    try:
        yield
    except auth.DefaultCredentialsError as exc:
        raise PlatformError(
            f"{what}: no Google credentials ({exc})",
            hint="gcloud auth application-default login",
        ) from exc
    except (
        exceptions.ServiceUnavailable,
        exceptions.RetryError,
        exceptions.DeadlineExceeded,
    ) as exc:
        raise PlatformUnavailableError(
            f"{what}: Cloud Logging is unreachable ({exc.__class__.__name__})"
        ) from exc
    except exceptions.GoogleAPICallError as exc:
        raise PlatformError(f"{what}: {exc.message or exc}") from exc
    except (ConnectionError, OSError) as exc:
        raise PlatformUnavailableError(f"{what}: Cloud Logging is unreachable ({exc})") from exc


def _text(payload: Any) -> str:
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict):
        message = payload.get("message")
        return message if isinstance(message, str) else json.dumps(payload, sort_keys=True)
    return str(payload)


def _short_log(log_name: str) -> str:
    return unquote(log_name.rsplit("/logs/", 1)[-1])


def _reading_client(logging: Any) -> Any:
    """``logging.Client`` whose loggers never probe the GCE metadata server.

    ``list_entries`` makes a ``Logger`` per log name, and a logger without a resource asks
    the metadata server where it runs (seconds of timeouts off Google Cloud, traffic beyond
    the emulator). These loggers only label entries that were read, never write.
    """

    class ReadingClient(logging.Client):  # type: ignore[misc]
        def logger(self, name: str, *, labels: Any = None, resource: Any = None) -> Any:
            resource = resource or logging.Resource(type="global", labels={})
            return super().logger(name, labels=labels, resource=resource)

    return ReadingClient


class CloudLoggingRevisionLogs(RevisionLogs):
    """Cloud Logging of ``project`` through ``google.cloud.logging.Client`` (REST).

    ``endpoint`` points the client at the emulator (anonymous credentials); without it the
    client uses Google's endpoint and Application Default Credentials.
    """

    def __init__(self, project: str, *, endpoint: str | None = None) -> None:
        self.project = project
        self.endpoint = endpoint
        self.description = f"cloudlogging:{project}" + (f"@{endpoint}" if endpoint else "")
        import_google("google.cloud.logging")  # the install hint now, not mid-deploy
        # made when first needed: on Google it looks up credentials, and most deploys never
        # read a log
        self._client: Any = None

    def _logging_client(self) -> Any:
        if self._client is None:
            logging = import_google("google.cloud.logging")
            kwargs: dict[str, Any] = {"project": self.project, "_use_grpc": False}
            if self.endpoint:
                credentials = import_google("google.auth.credentials")
                kwargs["credentials"] = credentials.AnonymousCredentials()
                kwargs["client_options"] = {"api_endpoint": self.endpoint}
            self._client = _reading_client(logging)(**kwargs)
        return self._client

    def start_entries(self, service: str, revision: str) -> list[LogLine]:
        logging = import_google("google.cloud.logging")
        with _map_errors(f"read the logs of revision {revision}"):
            entries = self._logging_client().list_entries(
                resource_names=[f"projects/{self.project}"],
                filter_=start_filter(self.project, service, revision),
                order_by=logging.ASCENDING,
                max_results=200,
            )
            return [
                LogLine(
                    log=_short_log(entry.log_name or ""),
                    severity=str(entry.severity or "DEFAULT"),
                    text=_text(entry.payload),
                )
                for entry in entries
            ]

    def request_stats(
        self, service: str, start: float, end: float, *, exclude_host: str | None = None
    ) -> dict[str, RequestStats]:
        logging = import_google("google.cloud.logging")
        skip = exclude_host.lower() if exclude_host else None
        rows: list[tuple[str, int, float | None]] = []
        with _map_errors(f"read the request logs of {service}"):
            entries = self._logging_client().list_entries(
                resource_names=[f"projects/{self.project}"],
                filter_=request_filter(self.project, service, start, end),
                order_by=logging.ASCENDING,
                page_size=1000,
            )
            for entry in entries:
                labels = entry.resource.labels if entry.resource is not None else {}
                revision = (labels or {}).get("revision_name") or ""
                request = entry.http_request or {}
                status = request.get("status")
                if not revision or not isinstance(status, int):
                    continue  # refused by the front end, or not a request entry
                if skip and _host(str(request.get("requestUrl") or "")) == skip:
                    continue
                rows.append((revision, status, _latency(request.get("latency"))))
        return _count(rows)

    def entries(
        self,
        filter_: str,
        *,
        what: str,
        descending: bool = False,
        max_results: int | None = None,
    ) -> Iterator[LoggedEntry]:
        """Every entry of the project matching ``filter_``, by timestamp, read page by page
        (1,000 a page) up to ``max_results``; vendor errors raised as ``PlatformError``
        saying ``what`` failed. The monitor reads its incremental pages through this."""
        logging = import_google("google.cloud.logging")
        with _map_errors(what):
            found = self._logging_client().list_entries(
                resource_names=[f"projects/{self.project}"],
                filter_=filter_,
                order_by=logging.DESCENDING if descending else logging.ASCENDING,
                page_size=1000,
                max_results=max_results,
            )
            for entry in found:
                yield _logged(entry)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass(frozen=True, slots=True)
class LoggedEntry:
    """One entry as ``CloudLoggingRevisionLogs.entries`` reads it (a ``LogLine`` with the
    fields an incremental reader needs)."""

    log: str
    severity: str
    text: str
    insert_id: str
    #: RFC 3339 in UTC with microseconds (fixed width: compares as text)
    timestamp: str
    service: str
    revision: str
    #: ``httpRequest.status`` and ``.latency`` (seconds) of a request-log entry
    status: int | None = None
    latency: float | None = None
    #: ``httpRequest.requestUrl`` of a request-log entry (its host tells a tag URL apart)
    url: str | None = None

    @property
    def at(self) -> float:
        """The timestamp as ``time.time()`` seconds."""
        return datetime.fromisoformat(self.timestamp.replace("Z", "+00:00")).timestamp()


def rfc3339(moment: float) -> str:
    """``time.time()`` seconds as the fixed-width RFC 3339 a Logging filter takes."""
    return _rfc3339(moment)


def _logged(entry: Any) -> LoggedEntry:
    labels = (entry.resource.labels if entry.resource is not None else None) or {}
    request = entry.http_request or {}
    status = request.get("status")
    stamp = entry.timestamp
    when = (
        stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if isinstance(stamp, datetime)
        else _rfc3339(time.time())
    )
    return LoggedEntry(
        log=_short_log(entry.log_name or ""),
        severity=str(entry.severity or "DEFAULT"),
        text=_text(entry.payload) if entry.payload is not None else "",
        insert_id=str(entry.insert_id or ""),
        timestamp=when,
        service=str(labels.get("service_name") or ""),
        revision=str(labels.get("revision_name") or ""),
        status=status if isinstance(status, int) else None,
        latency=_latency(request.get("latency")),
        url=request.get("requestUrl") if isinstance(request.get("requestUrl"), str) else None,
    )
