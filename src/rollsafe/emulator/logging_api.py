"""Cloud Logging API v2 (REST) of the emulator: entries, logs, sinks and log-based metrics.

- ``POST /v2/entries:write``: entries of any log and monitored resource type, with the
  request-level defaults (``logName``, ``resource``, ``labels``), ``partialSuccess`` and
  ``dryRun`` of the real API (see ``_logging_entries``).
- ``POST /v2/entries:list`` with ``{resourceNames: ["projects/P"], filter, orderBy,
  pageSize, pageToken}``: ``google.logging.v2.LogEntry`` JSON with the stored resource,
  labels, ``httpRequest``, ``trace``, ``insertId`` and ``receiveTimestamp``. ``orderBy`` is
  ``timestamp asc`` (the default) or ``timestamp desc``; ``pageSize`` defaults to 50 and is
  capped at 1000, as Google documents. Filters: see ``_logging_filter``.
- ``GET /v2/projects/P/logs`` (``logNames``) and ``DELETE /v2/projects/P/logs/LOG_ID`` (the
  log ID URL-encoded; deleting removes every entry of the log).
- ``/v2/projects/P/sinks[/S]`` and ``/v2/projects/P/metrics[/M]``: CRUD of ``LogSink`` and
  ``LogMetric`` (see ``_logging_config``), with the ``_Default`` and ``_Required`` sinks.

The high-level ``google.cloud.logging.Client(_use_grpc=False)`` and ``gcloud logging`` speak
this REST API. The GAPIC ``LoggingServiceV2Client`` of google-cloud-logging ships gRPC
transports only, so it cannot reach this (HTTP/1.1) server. Any other Logging path answers
501 UNIMPLEMENTED through the app's fallback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from google.cloud.logging_v2 import types as logging_types
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rollsafe.emulator._google import (
    invalid_argument,
    not_found,
    parse_message,
    to_dict,
    wants_int_enums,
)
from rollsafe.emulator._logging_config import LoggingConfig
from rollsafe.emulator._logging_entries import list_entries, write_entries
from rollsafe.emulator._logging_names import log_name, page_names, split_log_name
from rollsafe.emulator.logs import LogSink
from rollsafe.emulator.state import EmulatorState

__all__ = ["routes"]

Handler = Callable[[Request], Awaitable[Response]]


def _reply(message: Any, request: Request) -> Response:
    # Google leaves defaults out; an empty nextPageToken must be absent or the high-level
    # client's pager asks for the same page forever
    if message is None:
        return JSONResponse({})
    return JSONResponse(to_dict(message, int_enums=wants_int_enums(request), defaults=False))


def _page_size(request: Request) -> int:
    raw = request.query_params.get("pageSize", "0")
    try:
        return int(raw)
    except ValueError:
        raise invalid_argument(f"Invalid value for pageSize: {raw!r}.") from None


def routes(state: EmulatorState) -> list[BaseRoute]:
    """The Logging v2 routes; sinks and metrics keep their tables in the state's database."""
    config = LoggingConfig(state.db)
    logs = state.logs

    def handler(work: Callable[[Request, bytes], Any]) -> Handler:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            result = await run_in_threadpool(work, request, body)
            return _reply(result, request)

        return endpoint

    def project(request: Request) -> str:
        return str(request.path_params["project"])

    def page(request: Request) -> tuple[int, str]:
        return _page_size(request), request.query_params.get("pageToken", "")

    return [
        Route(
            "/v2/entries:list",
            handler(lambda r, b: list_entries(logs, b)),
            methods=["POST"],
            name="logging-list",
        ),
        Route(
            "/v2/entries:write",
            handler(lambda r, b: write_entries(logs, b)),
            methods=["POST"],
            name="logging-write",
        ),
        Route(
            "/v2/projects/{project}/logs",
            handler(lambda r, b: _list_logs(logs, project(r), *page(r))),
            methods=["GET"],
        ),
        Route(
            "/v2/projects/{project}/logs/{log:path}",
            handler(lambda r, b: _delete_log(logs, project(r), r.path_params["log"])),
            methods=["DELETE"],
        ),
        Route(
            "/v2/projects/{project}/sinks",
            handler(lambda r, b: config.list_sinks(project(r), *page(r))),
            methods=["GET"],
        ),
        Route(
            "/v2/projects/{project}/sinks",
            handler(
                lambda r, b: config.create_sink(project(r), parse_message(logging_types.LogSink, b))
            ),
            methods=["POST"],
        ),
        Route(
            "/v2/projects/{project}/sinks/{sink}",
            handler(lambda r, b: config.get_sink(project(r), r.path_params["sink"])),
            methods=["GET"],
        ),
        Route(
            "/v2/projects/{project}/sinks/{sink}",
            handler(
                lambda r, b: config.update_sink(
                    project(r),
                    r.path_params["sink"],
                    parse_message(logging_types.LogSink, b),
                    r.query_params.get("updateMask", ""),
                )
            ),
            methods=["PUT", "PATCH"],
        ),
        Route(
            "/v2/projects/{project}/sinks/{sink}",
            handler(lambda r, b: config.delete_sink(project(r), r.path_params["sink"])),
            methods=["DELETE"],
        ),
        Route(
            "/v2/projects/{project}/metrics",
            handler(lambda r, b: config.list_metrics(project(r), *page(r))),
            methods=["GET"],
        ),
        Route(
            "/v2/projects/{project}/metrics",
            handler(
                lambda r, b: config.create_metric(
                    project(r), parse_message(logging_types.LogMetric, b)
                )
            ),
            methods=["POST"],
        ),
        Route(
            "/v2/projects/{project}/metrics/{metric:path}",
            handler(lambda r, b: config.get_metric(project(r), r.path_params["metric"])),
            methods=["GET"],
        ),
        Route(
            "/v2/projects/{project}/metrics/{metric:path}",
            handler(
                lambda r, b: config.update_metric(
                    project(r),
                    r.path_params["metric"],
                    parse_message(logging_types.LogMetric, b),
                )
            ),
            methods=["PUT"],
        ),
        Route(
            "/v2/projects/{project}/metrics/{metric:path}",
            handler(lambda r, b: config.delete_metric(project(r), r.path_params["metric"])),
            methods=["DELETE"],
        ),
    ]


def _list_logs(
    logs: LogSink, project: str, page_size: int, page_token: str
) -> logging_types.ListLogsResponse:
    selected, token = page_names(logs.log_names(project), page_size, page_token)
    return logging_types.ListLogsResponse(log_names=selected, next_page_token=token)


def _delete_log(logs: LogSink, project: str, raw_log_id: str) -> None:
    # the server decodes %2F in the path, so the log ID arrives with its slashes
    full = f"projects/{project}/logs/{raw_log_id}"
    _, log_id = split_log_name(full)
    if not logs.delete_log(log_name(project, log_id)):
        raise not_found(f"Log {full} does not exist")
