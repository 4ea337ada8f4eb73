"""Google API conventions the emulator speaks: JSON error shape, proto-plus JSON, enums."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any, TypeVar

import proto  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "GoogleError",
    "already_exists",
    "error_response",
    "failed_precondition",
    "invalid_argument",
    "message_response",
    "not_found",
    "parse_message",
    "to_dict",
    "unimplemented",
    "wants_int_enums",
]

M = TypeVar("M", bound=proto.Message)

#: what Google's front end answers for a method it does not serve (gRPC UNIMPLEMENTED)
UNIMPLEMENTED_MESSAGE = "Method not found."


class GoogleError(Exception):
    """An API error, rendered as Google's JSON error body by the app's exception handler."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        #: ``google.rpc.Status`` details (JSON objects with ``@type``), rendered when present
        self.details: list[dict[str, Any]] = []


def not_found(message: str) -> GoogleError:
    return GoogleError(404, "NOT_FOUND", message)


def unimplemented(method: str, path: str) -> GoogleError:
    """501 UNIMPLEMENTED for a method Google serves and the emulator does not: never 404,
    which means "no such resource" and would make ``exists()`` checks lie."""
    return GoogleError(501, "UNIMPLEMENTED", f"{UNIMPLEMENTED_MESSAGE} ({method} {path})")


def already_exists(message: str) -> GoogleError:
    return GoogleError(409, "ALREADY_EXISTS", message)


def invalid_argument(message: str) -> GoogleError:
    return GoogleError(400, "INVALID_ARGUMENT", message)


def failed_precondition(message: str) -> GoogleError:
    # Google maps FAILED_PRECONDITION to HTTP 400 (google.rpc.Code); 412 would make the Python
    # clients raise PreconditionFailed here and BadRequest against Google
    return GoogleError(400, "FAILED_PRECONDITION", message)


def error_response(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """``{"error": {"code", "message", "status"[, "details"]}}`` as Google APIs answer."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=code)


def wants_int_enums(request: Request) -> bool:
    """The Python clients send ``$alt=json;enum-encoding=int``; gcloud sends nothing."""
    return "enum-encoding=int" in request.query_params.get("$alt", "")


def to_dict(
    message: proto.Message, *, int_enums: bool = False, defaults: bool = True
) -> dict[str, Any]:
    """The REST JSON of a proto-plus message: camelCase, int64 as strings, RFC 3339 times.

    ``defaults=False`` leaves out fields at their default value, as Google's servers do; an
    empty ``nextPageToken`` must be absent, or pagers that test for ``None`` never stop.
    """
    text = type(message).to_json(
        message,
        use_integers_for_enums=int_enums,
        preserving_proto_field_name=False,
        indent=None,
        always_print_fields_with_no_presence=defaults,
    )
    data: dict[str, Any] = json.loads(text)
    return data


def message_response(
    message: proto.Message, request: Request, *, status_code: int = 200
) -> Response:
    """A JSON response with the message serialised as the caller expects enums."""
    body = to_dict(message, int_enums=wants_int_enums(request))
    return JSONResponse(body, status_code=status_code)


def parse_message(cls: type[M], body: bytes) -> M:
    """Parse a request body into a proto-plus message; bad JSON is INVALID_ARGUMENT."""
    if not body.strip():
        empty: M = cls()
        return empty
    try:
        parsed: M = cls.from_json(body, ignore_unknown_fields=True)
        return parsed
    except Exception as exc:  # protobuf raises ParseError, ValueError, TypeError ...
        raise invalid_argument(_parse_problem(cls.__name__, str(exc))) from exc


_FIELD = re.compile(r"Failed to parse (\w+) field")


def _parse_problem(kind: str, detail: str) -> str:
    # protobuf's messages quote the offending value, which may be a secret payload: keep the
    # field path and drop the value
    fields = _FIELD.findall(detail)
    reason = HTTPStatus.BAD_REQUEST.phrase
    if fields:
        return f"{reason}: invalid value for field {'.'.join(fields)} of {kind}"
    if detail.startswith("Failed to load JSON"):
        return f"{reason}: the body of {kind} is not valid JSON"
    return f"{reason}: invalid JSON body for {kind}"
