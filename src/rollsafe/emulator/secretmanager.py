"""Secret Manager API v1 (REST) of the emulator, and the secret lookup Cloud Run uses.

Paths and JSON shapes are those of ``google.cloud.secretmanager_v1``; requests are parsed and
responses rendered with its proto-plus types, so the shapes cannot drift:

- ``/v1/projects/P/secrets``: GET lists (``pageSize``: 0 or missing means 25, at most
  25000; ``pageToken``; ``filter``), POST creates (``?secretId=S``; 409 if it exists).
- ``/v1/projects/P/secrets/S``: GET, PATCH (``?updateMask=``), DELETE;
  ``/v1/projects/P/secrets/S:addVersion`` POST (``payload.dataCrc32c`` verified when given).
- ``/v1/projects/P/secrets/S/versions``: GET lists, newest first.
- ``/v1/projects/P/secrets/S/versions/V``: GET; ``:access`` GET; ``:enable``, ``:disable``,
  ``:destroy`` POST. ``V`` is a number, ``latest`` (the most recently created version,
  whatever its state, as Google resolves it) or an alias from the secret's
  ``versionAliases``.
- The same under ``/v1/projects/P/locations/L/`` for regional secrets.
- ``/v1/projects/P/secrets/S:getIamPolicy`` (GET, and POST as gcloud sends it),
  ``:setIamPolicy`` and ``:testIamPermissions`` POST: see ``_sm_iam``.
- ``/v1/projects/P/locations`` and ``/v1/projects/P/locations/L`` GET (the
  ``google.cloud.location`` mixin every Secret Manager client has).
- ``DELETE ...secrets/S?etag=`` and the version verbs' ``{"etag"}`` body are checked; see
  ``_sm_store`` for etags and for ``ttl``/``expire_time`` expiry.

Any other method or path under these prefixes answers 501 UNIMPLEMENTED in Google's error
shape (never 404, which would make ``exists()`` checks lie); paths outside them are left to
the other APIs and the app's fallback.

Errors are Google's: 404 NOT_FOUND (``Secret [NAME] not found or has no versions.``,
``Secret Version [NAME] not found.``), 409 ALREADY_EXISTS, 400 INVALID_ARGUMENT, and
FAILED_PRECONDITION with HTTP 400 as Google sends it (``Secret Version [NAME] is in DISABLED
state.``) for accessing a disabled or destroyed version or changing a destroyed one.
Filters: ``name`` (``=`` full name or id, ``:`` substring of the id), ``labels.KEY``,
``create_time``, and for versions ``state``; see ``_filter`` for the syntax.

Cloud Run resolves ``secret_key_ref`` env vars at instance start with
``resolve_secret_env(state, project, secret, version) -> bytes``, which raises
``SecretAccessError`` when the secret or version is missing, disabled or destroyed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import google_crc32c
import proto  # type: ignore[import-untyped]
from google.cloud import secretmanager_v1 as sm
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from rollsafe.emulator._filter import (
    Term,
    compile_filter,
    ordered_test,
    parse_time,
    string_test,
    unsupported,
)
from rollsafe.emulator._google import (
    GoogleError,
    invalid_argument,
    parse_message,
    to_dict,
    unimplemented,
    wants_int_enums,
)
from rollsafe.emulator._sm_iam import (
    get_iam_policy,
    get_location,
    list_locations,
    set_iam_policy,
    test_iam_permissions,
)
from rollsafe.emulator._sm_store import SecretsStore
from rollsafe.emulator.state import EmulatorState

__all__ = ["SecretAccessError", "resolve_secret_env", "routes", "secrets_store"]

State = sm.SecretVersion.State
X = TypeVar("X")

DEFAULT_PAGE_SIZE = 25  # Google documents none ("the server decides"); small enough to page
MAX_PAGE_SIZE = 25000  # documented cap

_EXTENSION = "secretmanager"
_SWEEPER = "secretmanager.sweeper"
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_SECRET_NAME = re.compile(r"^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}$")
_PATH = re.compile(
    r"^(?P<parent>projects/[^/:]+(?:/locations/[^/:]+)?)/secrets"
    r"(?:/(?P<secret>[^/:]+)(?P<versions>/versions(?:/(?P<version>[^/:]+))?)?)?"
    r"(?::(?P<verb>[A-Za-z]+))?$"
)
_LOCATIONS = re.compile(r"^projects/(?P<project>[^/:]+)/locations(?:/(?P<location>[^/:]+))?$")
_STATE_VERBS = {"enable": State.ENABLED, "disable": State.DISABLED, "destroy": State.DESTROYED}
_IAM_VERBS = {
    ("GET", "getIamPolicy"): get_iam_policy,
    ("POST", "getIamPolicy"): get_iam_policy,
    ("POST", "setIamPolicy"): set_iam_policy,
    ("POST", "testIamPermissions"): test_iam_permissions,
}
#: how often the emulator deletes expired secrets nobody touched (access deletes them too)
SWEEP_SECONDS = 30.0


class SecretAccessError(GoogleError):
    """A secret that a revision's env refers to cannot be read.

    ``code``, ``status`` and ``message`` are what the Secret Manager API would answer:
    404 NOT_FOUND (no such secret or version) or FAILED_PRECONDITION (disabled, destroyed).
    """


def secrets_store(state: EmulatorState) -> SecretsStore:
    """The Secret Manager storage of an emulator state (created on first use)."""
    return state.extension(_EXTENSION, SecretsStore, lambda: SecretsStore(state.db, state.cipher))


def resolve_secret_env(
    state: EmulatorState, project: str, secret: str, version: str = "latest"
) -> bytes:
    """The payload a Cloud Run ``secret_key_ref`` points at, read as Cloud Run does at start.

    ``secret`` is a secret id of ``project`` (``S``) or a full name in any project
    (``projects/P/secrets/S``); ``version`` is a number, ``latest`` (also when empty) or an
    alias. Raises ``SecretAccessError`` when the secret or version is missing (404) or the
    version is disabled or destroyed (FAILED_PRECONDITION); its message names the resource
    and never the payload. Thread-safe; it reads the emulator's database directly.
    """
    if _SECRET_NAME.match(secret):
        secret_name = secret
    elif _SECRET_ID.match(secret):
        secret_name = f"projects/{project}/secrets/{secret}"
    else:
        raise SecretAccessError(
            400, "INVALID_ARGUMENT", f"Invalid secret name {secret!r} in secret_key_ref."
        )
    try:
        _, data = secrets_store(state).access(f"{secret_name}/versions/{version or 'latest'}")
    except GoogleError as exc:
        raise SecretAccessError(exc.code, exc.status, exc.message) from exc
    return data


def routes(state: EmulatorState) -> list[BaseRoute]:
    """Catch-all routes under ``/v1/projects/P/secrets`` and ``/v1/projects/P/locations``:
    the ``:verb`` suffixes and the percent-decoded paths uvicorn hands over are simplest to
    match with one regex. Other ``/v1/projects/...`` paths (IAM Credentials) are not ours."""
    store = secrets_store(state)

    def endpoint(collection: str) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            project, rest = request.path_params["project"], request.path_params["rest"]
            path = f"projects/{project}/{collection}{rest}"
            body = await request.body()
            params = dict(request.query_params)
            # storage is synchronous SQLite + AES; keep it off the event loop the router shares
            result = await run_in_threadpool(_dispatch, store, request.method, path, params, body)
            if result is None:
                return JSONResponse({})
            if isinstance(result, dict):
                return JSONResponse(result)
            int_enums = wants_int_enums(request)
            return JSONResponse(to_dict(result, int_enums=int_enums, defaults=False))

        return serve

    methods = ["GET", "POST", "PATCH", "DELETE", "PUT"]
    return [
        Route(
            f"/v1/projects/{{project}}/{collection}{{rest:path}}",
            endpoint(collection),
            methods=methods,
            name=f"secretmanager-{collection}",
        )
        for collection in ("secrets", "locations")
    ]


async def startup(state: EmulatorState) -> None:
    """Start the sweep that deletes expired secrets even when nobody reads them."""
    store = secrets_store(state)

    async def sweep() -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            await run_in_threadpool(store.sweep_expired)

    state.extensions[_SWEEPER] = asyncio.get_running_loop().create_task(sweep())


async def shutdown(state: EmulatorState) -> None:
    task = state.extensions.pop(_SWEEPER, None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _dispatch(
    store: SecretsStore, method: str, path: str, params: Mapping[str, str], body: bytes
) -> proto.Message | dict[str, Any] | None:
    located = _LOCATIONS.match(path)
    if located is not None and method == "GET":
        project, location = located.group("project", "location")
        return list_locations(project) if location is None else get_location(project, location)
    match = _PATH.match(path)
    if match is None:
        raise unimplemented(method, f"/v1/{path}")
    parent, secret_id, versions, version_id, verb = match.group(
        "parent", "secret", "versions", "version", "verb"
    )
    call = (method, verb)
    if secret_id is None:
        if call == ("GET", None):
            return _list_secrets(store, parent, params)
        if call == ("POST", None):
            return _create_secret(store, parent, params, body)
    elif versions is None:
        name = f"{parent}/secrets/{secret_id}"
        if call == ("GET", None):
            return store.get_secret(name)
        if call == ("DELETE", None):
            store.delete_secret(name, etag=params.get("etag", ""))
            return None
        if call == ("PATCH", None):
            patch = parse_message(sm.Secret, body)
            paths = [_snake(p) for p in params.get("updateMask", "").split(",") if p.strip()]
            return store.update_secret(name, patch, paths)
        if call == ("POST", "addVersion"):
            return _add_version(store, name, body)
        if call in _IAM_VERBS:
            return _IAM_VERBS[call](store, name, body)
    elif version_id is None:
        if call == ("GET", None):
            return _list_versions(store, f"{parent}/secrets/{secret_id}", params)
    else:
        name = f"{parent}/secrets/{secret_id}/versions/{version_id}"
        if call == ("GET", None):
            return store.get_version(name)
        if call == ("GET", "access"):
            version, data = store.access(name)
            payload = sm.SecretPayload(data=data, data_crc32c=google_crc32c.value(data))
            return sm.AccessSecretVersionResponse(name=version.name, payload=payload)
        if method == "POST" and verb in _STATE_VERBS:
            etag = _state_etag(verb, body)
            return store.set_state(name, _STATE_VERBS[verb], etag=etag)
    raise unimplemented(method, f"/v1/{path}")


def _state_etag(verb: str, body: bytes) -> str:
    """The optional ``etag`` of an enable, disable or destroy request body."""
    kind: type[proto.Message] = {
        "enable": sm.EnableSecretVersionRequest,
        "disable": sm.DisableSecretVersionRequest,
        "destroy": sm.DestroySecretVersionRequest,
    }[verb]
    etag: str = parse_message(kind, body).etag
    return etag


def _create_secret(
    store: SecretsStore, parent: str, params: Mapping[str, str], body: bytes
) -> sm.Secret:
    secret_id = params.get("secretId", "")
    if not _SECRET_ID.match(secret_id):
        raise invalid_argument(
            f"Invalid secret id {secret_id!r}: it must be 1 to 255 letters, digits, '-' or '_'."
        )
    secret = parse_message(sm.Secret, body)
    regional = "/locations/" in parent
    # Google refuses both mistakes; mirroring it keeps emulator-tested code honest
    if regional and "replication" in secret:
        raise invalid_argument("Secret.replication should not be provided.")
    if not regional and not (
        "automatic" in secret.replication or "user_managed" in secret.replication
    ):
        raise invalid_argument("Secret.replication must be provided.")
    return store.create_secret(parent, secret_id, secret)


def _add_version(store: SecretsStore, secret_name: str, body: bytes) -> sm.SecretVersion:
    request = parse_message(sm.AddSecretVersionRequest, body)
    if "payload" not in request:
        raise invalid_argument("Field [payload] is required.")
    data = request.payload.data
    checksum = "data_crc32c" in request.payload
    if checksum and request.payload.data_crc32c != google_crc32c.value(data):
        raise invalid_argument(
            "Checksum mismatch: payload.dataCrc32c does not match the CRC32C of payload.data."
        )
    return store.add_version(secret_name, data, checksum=checksum)


def _list_secrets(
    store: SecretsStore, parent: str, params: Mapping[str, str]
) -> sm.ListSecretsResponse:
    matches = compile_filter(params.get("filter", ""), _secret_term)
    secrets = [s for s in store.list_secrets(parent) if matches(s)]
    page, token = _page(secrets, lambda s: _last(s.name), params)
    return sm.ListSecretsResponse(secrets=page, next_page_token=token, total_size=len(secrets))


def _list_versions(
    store: SecretsStore, secret_name: str, params: Mapping[str, str]
) -> sm.ListSecretVersionsResponse:
    matches = compile_filter(params.get("filter", ""), _version_term)
    versions = [v for v in store.list_versions(secret_name) if matches(v)]
    # newest first, so the page position is the negated number
    page, token = _page(versions, lambda v: -int(_last(v.name)), params)
    return sm.ListSecretVersionsResponse(
        versions=page, next_page_token=token, total_size=len(versions)
    )


def _page(
    items: list[X], position: Callable[[X], Any], params: Mapping[str, str]
) -> tuple[list[X], str]:
    """One page of ``items`` (already in order) and the token of the next one.

    The token holds the position of the last item served, not an offset, so secrets created
    or deleted between two calls neither repeat nor skip items.
    """
    try:
        size = int(params.get("pageSize") or 0)
    except ValueError:
        raise invalid_argument("pageSize must be an integer.") from None
    if size < 0:
        raise invalid_argument("pageSize must not be negative.")
    size = min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    token = params.get("pageToken", "")
    if token:
        after = _decode_token(token)
        items = [item for item in items if position(item) > after]
    page = items[:size]
    more = len(items) > size
    return page, _encode_token(position(page[-1])) if more else ""


def _encode_token(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": position}).encode()).decode()


def _decode_token(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid_argument(f"Invalid page token {token!r}.") from None


def _secret_term(term: Term) -> Callable[[sm.Secret], bool]:
    if term.field in ("", "name"):
        return _name_test(term)
    if term.field == "labels" and term.op == ":":
        return lambda secret: term.value in secret.labels
    if term.field.startswith("labels."):
        key = term.field.removeprefix("labels.")
        test = string_test(term)
        return lambda secret: test(secret.labels.get(key, ""))
    if term.field in ("create_time", "createTime"):
        timed = ordered_test(term, parse_time)
        return lambda secret: timed(secret.create_time)
    raise unsupported(term, "the emulator filters secrets on name, labels and create_time")


def _version_term(term: Term) -> Callable[[sm.SecretVersion], bool]:
    if term.field in ("", "name"):
        return _name_test(term)
    if term.field == "state":
        wanted = term.value.upper()
        if wanted not in State.__members__:
            raise unsupported(term, f"unknown state {term.value!r}")
        if term.op in ("=", ":"):
            return lambda version: State(version.state).name == wanted
        if term.op == "!=":
            return lambda version: State(version.state).name != wanted
        raise unsupported(term, f"operator {term.op} is not supported on state")
    if term.field in ("create_time", "createTime"):
        timed = ordered_test(term, parse_time)
        return lambda version: timed(version.create_time)
    raise unsupported(term, "the emulator filters versions on name, state and create_time")


def _name_test(term: Term) -> Callable[[Any], bool]:
    """``name=X`` matches the full name or the last segment; ``name:X`` (and a bare value)
    is a substring of the last segment, as the Secret Manager docs describe it."""
    if term.op in ("=", "!="):
        equal = term.op == "="
        return lambda item: (term.value in (item.name, _last(item.name))) == equal
    if not term.op:
        term = Term("name", ":", term.value, term.text)
    test = string_test(term)
    return lambda item: test(_last(item.name))


def _last(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _snake(field: str) -> str:
    """``versionAliases`` -> ``version_aliases`` (update masks come in JSON form)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", field.strip()).lower()
