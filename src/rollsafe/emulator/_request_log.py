"""Request logs: one ``run.googleapis.com/requests`` entry per request through the router.

As Cloud Run's front end writes them: ``httpRequest`` (method, URL, status, sizes, latency,
user agent, remote IP, protocol), severity from the status (5xx ERROR, 4xx WARNING, else
INFO), the ``cloud_run_revision`` labels of the revision that answered, and a ``trace``.
Requests the front end refuses itself (403/401 without a valid token, 503 without a
revision) are logged too, with Cloud Run's own text.

The router only appends a tuple of raw bytes per request; every 0.25 s the entries are
built and written in batches, a slice at a time. The writer fills the columns that
``LogSink.write_entries`` fills, the way it does (the Logging API reads them back alike),
but cheaper: through ``write_entries`` a request costs about 60 us of CPU, most of it
building JSON in Python while holding the GIL the event loop needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import NamedTuple

from rollsafe.emulator.logs import LogSink

__all__ = ["DENIED_TEXT", "RequestLog", "RequestRecord"]

logger = logging.getLogger("rollsafe.emulator.router")

#: textPayload of the entries of requests Cloud Run refuses before any revision sees them
DENIED_TEXT = {
    403: (
        "The request was not authenticated. Either allow unauthenticated invocations or set"
        " the proper Authorization header. Read more at"
        " https://cloud.google.com/run/docs/securing/authenticating Additional troubleshooting"
        " documentation can be found at:"
        " https://cloud.google.com/run/docs/troubleshooting#unauthorized-client"
    ),
    401: (
        "The request was not authorized to invoke this service. Read more at"
        " https://cloud.google.com/run/docs/securing/authenticating Additional troubleshooting"
        " documentation can be found at: https://cloud.google.com/run/docs/troubleshooting#401"
    ),
}

# the columns that write_entries fills for such an entry; NULL resource_labels and
# receive_timestamp read back as the revision's labels and the entry's timestamp. SQLite
# renders httpRequest (merge-patching away the optional fields that are NULL), without the
# GIL: Python only hands over the values.
_INSERT = (
    "INSERT INTO log_entries (project, location, service, revision, log_name, severity,"
    " timestamp, text_payload, http_request, trace) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
    " json_patch(json_object('requestMethod', ?, 'requestUrl', ?, 'status', ?,"
    " 'requestSize', CAST(? AS TEXT), 'responseSize', CAST(? AS TEXT), 'remoteIp', ?,"
    " 'latency', rtrim(rtrim(printf('%.9f', ?), '0'), '.') || 's', 'protocol', ?),"
    " json_object('userAgent', ?, 'referer', ?)), ?)"
)
_COLUMNS, _, _VALUES = _INSERT.partition(" VALUES ")
#: rows per INSERT statement (19 parameters each, within SQLite's limit of 32766) and per
#: slice of the event loop's time
_CHUNK = 200


class RequestRecord(NamedTuple):
    """What the router knows of one request, raw; made an entry off the event loop."""

    service: str  # projects/P/locations/L/services/S
    revision: str  # full name, or "" when no revision was chosen
    started: float  # time.time() when the request head arrived
    latency: float  # seconds until the response was sent
    method: bytes
    host: bytes  # the Host field
    target: bytes  # path and query
    status: int
    request_size: int
    response_size: int
    user_agent: bytes
    remote_ip: bytes
    protocol: bytes  # HTTP/1.1
    trace_id: str
    referer: bytes
    text: str  # the router's own text when it answered itself (401/403/503), else ""


def _text(raw: bytes) -> str | None:
    return raw.decode("utf-8", "replace") if raw else None


class _Rows:
    """Turns records into rows for ``_INSERT``, caching what requests share."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], tuple[str, ...]] = {}
        self._seconds: dict[int, str] = {}

    def _route(self, service: str, revision: str) -> tuple[str, ...]:
        parts = service.split("/")
        project, location, name = parts[1], parts[3], parts[5]
        short = revision.rsplit("/", 1)[-1]
        log_name = f"projects/{project}/logs/run.googleapis.com%2Frequests"
        found = (project, location, name, short, log_name, f"projects/{project}/traces/")
        self._routes[(service, revision)] = found
        return found

    def _timestamp(self, moment: float) -> str:
        second = int(moment)
        prefix = self._seconds.get(second)
        if prefix is None:
            if len(self._seconds) > 64:
                self._seconds.clear()
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._seconds[second] = prefix
        return f"{prefix}.{int((moment - second) * 1e6):06d}Z"

    def row(self, record: RequestRecord) -> tuple[object, ...]:
        route = self._routes.get((record.service, record.revision))
        if route is None:
            route = self._route(record.service, record.revision)
        project, location, service, revision, log_name, traces = route
        status = record.status
        return (
            project,
            location,
            service,
            revision,
            log_name,
            500 if status >= 500 else 400 if status >= 400 else 200,  # ERROR, WARNING, INFO
            self._timestamp(record.started),
            record.text or None,
            record.method.decode("latin-1"),
            (b"http://" + record.host + record.target).decode("utf-8", "replace"),
            status,
            record.request_size,
            record.response_size,
            record.remote_ip.decode("latin-1"),
            record.latency,
            record.protocol.decode("latin-1"),
            _text(record.user_agent),
            _text(record.referer),
            traces + record.trace_id,
        )


class RequestLog:
    """Buffers request records and writes them in batches, on the event loop, in slices.

    Not on a thread: the rows take Python work, and a thread doing it contends for the GIL
    with the event loop at each of the loop's system calls (a convoy that cost the router
    more CPU than the writing itself, measured). In the loop, a slice of ``_CHUNK`` rows
    costs a few milliseconds, then the loop serves requests again.

    ``add`` must be called on the event loop; it starts the flushing task on first use.
    ``close`` writes what is left.
    """

    def __init__(self, sink: LogSink, *, interval: float = 0.25) -> None:
        self._sink = sink
        self._interval = interval
        self._buffer: list[RequestRecord] = []
        self._task: asyncio.Task[None] | None = None
        self._rows = _Rows()
        self._closed = False

    def __repr__(self) -> str:
        return f"RequestLog(pending={len(self._buffer)})"

    def add(self, record: RequestRecord) -> None:
        """Queue one request's record (cheap: the entry is built when the batch is written)."""
        self._buffer.append(record)
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> None:
        """Write what is buffered now, a slice at a time."""
        batch, self._buffer = self._buffer, []
        for start in range(0, len(batch), _CHUNK):
            self._write(batch[start : start + _CHUNK])
            await asyncio.sleep(0)  # let requests through between slices

    def _write(self, records: list[RequestRecord]) -> None:
        """One INSERT of many rows: one statement, one step, one commit."""
        try:
            rows = [self._rows.row(record) for record in records]
            sql = f"{_COLUMNS} VALUES {', '.join([_VALUES] * len(rows))}"
            with self._sink.db.transaction() as conn:
                conn.execute(sql, [value for row in rows for value in row])
        except Exception:  # a full disk must not take the router down
            logger.exception("could not write %d request log entries", len(records))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def close(self) -> None:
        """Stop the flushing task and write the remaining records."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        batch, self._buffer = self._buffer, []
        for start in range(0, len(batch), _CHUNK):
            self._write(batch[start : start + _CHUNK])
