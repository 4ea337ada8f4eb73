"""IAM on Cloud Run services: ``:getIamPolicy``, ``:setIamPolicy``, ``:testIamPermissions``.

Policies are ``google.iam.v1.Policy`` messages kept in the emulator's database, so they
outlive a restart, each with an etag (base64 in JSON, as Google's). A service starts with
no bindings, which makes it private: its URLs answer only requests that carry an ID token
for them, unless ``roles/run.invoker`` is granted to ``allUsers`` (what ``gcloud run deploy
--allow-unauthenticated`` does). ``ServiceAccess`` is that check, used by the router.

Emulator specific: every valid ID token counts as one of a caller allowed to invoke (the
holder is taken for a project owner); there is no per-principal check.
"""

from __future__ import annotations

import json
import os
from typing import Any

from google.iam.v1 import iam_policy_pb2, policy_pb2  # type: ignore[import-untyped]
from google.protobuf import json_format  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rollsafe.emulator._google import GoogleError, invalid_argument, not_found, unimplemented
from rollsafe.emulator.db import EmulatorDB
from rollsafe.emulator.state import EmulatorState
from rollsafe.emulator.tokens import DEFAULT_SERVICE_ACCOUNT, TokenVerifier, issuer

__all__ = [
    "ALL_AUTHENTICATED",
    "ALL_USERS",
    "INVOKER",
    "ServiceAccess",
    "ServicePolicies",
    "handle",
    "policies",
]

INVOKER = "roles/run.invoker"
ALL_USERS = "allUsers"
ALL_AUTHENTICATED = "allAuthenticatedUsers"
#: the etag of a resource that never had a policy set: version 1, no bindings
_EMPTY_ETAG = b"\x00\x20\x01"
_EXTENSION = "run_iam"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_iam_policies (
    service TEXT PRIMARY KEY,
    policy BLOB NOT NULL
);
"""
_MEMBER_PREFIXES = (
    "user:",
    "serviceAccount:",
    "group:",
    "domain:",
    "principal://",
    "principalSet://",
    "deleted:",
    "projectOwner:",
    "projectEditor:",
    "projectViewer:",
)
_CONCURRENT = (
    "There were concurrent policy changes. Please retry the whole read-modify-write with "
    "exponential backoff."
)


class ServicePolicies:
    """The stored policies of services, with an in-memory view of who may invoke."""

    def __init__(self, db: EmulatorDB) -> None:
        self._db = db
        db.ensure_schema(_SCHEMA)
        self._levels: dict[str, frozenset[str]] = {}

    def get(self, service: str) -> policy_pb2.Policy:
        """The policy of ``service`` (version 1 and no bindings when none was set)."""
        row = self._db.query_one(
            "SELECT policy FROM run_iam_policies WHERE service = ?", (service,)
        )
        if row is None:
            return policy_pb2.Policy(version=1, etag=_EMPTY_ETAG)
        policy = policy_pb2.Policy()
        policy.ParseFromString(row["policy"])
        return policy

    def put(self, service: str, policy: policy_pb2.Policy) -> None:
        self._db.execute(
            "INSERT INTO run_iam_policies (service, policy) VALUES (?, ?)"
            " ON CONFLICT (service) DO UPDATE SET policy = excluded.policy",
            (service, policy.SerializeToString()),
        )
        self._levels.pop(service, None)

    def delete(self, service: str) -> None:
        """Forget a deleted service's policy (a new service of that name starts private)."""
        self._db.execute("DELETE FROM run_iam_policies WHERE service = ?", (service,))
        self._levels.pop(service, None)

    def invokers(self, service: str) -> frozenset[str]:
        """The members granted ``roles/run.invoker`` on ``service`` (cached until the next
        set), read by the router on every request."""
        found = self._levels.get(service)
        if found is None:
            members: set[str] = set()
            for binding in self.get(service).bindings:
                if binding.role == INVOKER and not binding.HasField("condition"):
                    members.update(binding.members)
            found = self._levels[service] = frozenset(members)
        return found


def policies(state: EmulatorState) -> ServicePolicies:
    """The emulator's service policies, created on first use."""
    return state.extension(_EXTENSION, ServicePolicies, lambda: ServicePolicies(state.db))


class ServiceAccess:
    """The router's check of a request to a service URL: 0 to pass, else 401 or 403.

    No ``Authorization`` header is 403, a bearer token that is not a valid, unexpired ID
    token of ours for one of the service's URLs is 401, as Cloud Run answers. A valid token
    passes when its caller may invoke the service: the emulator's own identity (the
    project's owner, as the default service account of a new project is an Editor), or a
    member granted ``roles/run.invoker`` on the service (``serviceAccount:EMAIL``,
    ``user:EMAIL`` or ``allAuthenticatedUsers``); anyone else gets 403, as on Cloud Run.
    """

    def __init__(self, state: EmulatorState) -> None:
        self._policies = policies(state)
        self._verifier = TokenVerifier(issuer(state))

    def __repr__(self) -> str:
        return "ServiceAccess()"

    def check(self, service: str, audiences: frozenset[str], authorization: bytes | None) -> int:
        invokers = self._policies.invokers(service)
        if ALL_USERS in invokers:
            return 0
        if not authorization:
            return 403
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return 401
        caller = self._verifier.caller(token.strip())
        if caller is None or caller[0] not in audiences:
            return 401
        email = caller[1]
        if (
            email == DEFAULT_SERVICE_ACCOUNT
            or ALL_AUTHENTICATED in invokers
            or (email and f"serviceAccount:{email}" in invokers)
            or (email and f"user:{email}" in invokers)
        ):
            return 0
        return 403


# -- the API --------------------------------------------------------------------------------


def _parse(body: bytes, message: Any) -> Any:
    if body.strip():
        try:
            json_format.Parse(body, message, ignore_unknown_fields=True)
        except json_format.ParseError:
            raise invalid_argument(
                f"Invalid JSON payload received for {type(message).__name__}."
            ) from None
    return message


def _policy_response(policy: policy_pb2.Policy) -> Response:
    return JSONResponse(json_format.MessageToDict(policy))


def _checked(policy: policy_pb2.Policy) -> policy_pb2.Policy:
    """Google's normal form: members deduplicated, roles merged, empty bindings dropped."""
    merged: dict[tuple[str, bytes], list[str]] = {}
    conditions: dict[tuple[str, bytes], Any] = {}
    for binding in policy.bindings:
        if not binding.role.startswith("roles/"):
            raise invalid_argument(f"Role {binding.role} is not supported for this resource.")
        for member in binding.members:
            if member not in (ALL_USERS, ALL_AUTHENTICATED) and (
                not member.startswith(_MEMBER_PREFIXES) or member.endswith(":")
            ):
                raise invalid_argument('Policy members must be of the form "<type>:<value>".')
        key = (binding.role, binding.condition.SerializeToString())
        members = merged.setdefault(key, [])
        for member in binding.members:
            if member not in members:
                members.append(member)
        if binding.HasField("condition"):
            conditions[key] = binding.condition
    result = policy_pb2.Policy(version=policy.version or 1)
    if conditions and result.version < 3:
        raise invalid_argument(
            "Policies with conditional role bindings must set version 3 (requested "
            f"{result.version})."
        )
    for (role, _), members in merged.items():
        if members:
            binding = result.bindings.add(role=role, members=sorted(members))
            condition = conditions.get((role, _))
            if condition is not None:
                binding.condition.CopyFrom(condition)
    result.audit_configs.extend(policy.audit_configs)
    return result


def _set(store: ServicePolicies, name: str, body: bytes) -> Response:
    request = _parse(body, iam_policy_pb2.SetIamPolicyRequest())
    current = store.get(name)
    wanted = request.policy
    if wanted.etag and wanted.etag != current.etag:
        raise GoogleError(409, "ABORTED", _CONCURRENT)
    paths = set(request.update_mask.paths) if request.HasField("update_mask") else set()
    paths = paths or {"bindings", "etag"}
    unknown = paths - {"bindings", "etag", "audit_configs", "auditConfigs", "version"}
    if unknown:
        raise invalid_argument(f"Invalid update_mask path: {sorted(unknown)[0]}")
    merged = policy_pb2.Policy()
    merged.CopyFrom(current)
    if "bindings" in paths:
        del merged.bindings[:]
        merged.bindings.extend(wanted.bindings)
        merged.version = wanted.version or 1
    if paths & {"audit_configs", "auditConfigs"}:
        del merged.audit_configs[:]
        merged.audit_configs.extend(wanted.audit_configs)
    policy = _checked(merged)
    policy.etag = os.urandom(8)
    store.put(name, policy)
    return _policy_response(policy)


def _test(body: bytes) -> Response:
    request = _parse(body, iam_policy_pb2.TestIamPermissionsRequest())
    for permission in request.permissions:
        if "*" in permission:
            raise invalid_argument(
                f"Permissions with wildcards (such as '*' or 'run.*') are not allowed: {permission}"
            )
    # the caller of the emulator holds every Cloud Run permission, and nothing else here
    granted = [p for p in request.permissions if p.startswith("run.")]
    return JSONResponse({"permissions": granted} if granted else {})


async def handle(
    request: Request, state: EmulatorState, name: str, method: str, exists: bool
) -> Response:
    """Answer ``{name}:{method}``; ``exists`` says whether the service is there."""
    verb = request.method
    known = {"getIamPolicy": ("GET", "POST"), "setIamPolicy": ("POST",)}
    known["testIamPermissions"] = ("POST",)
    if verb not in known.get(method, ()):
        raise unimplemented(verb, request.url.path)
    if not exists:
        _, _, rest = name.partition("/locations/")
        location, _, service_id = rest.partition("/services/")
        project = name.split("/")[1]
        raise not_found(
            f"Resource '{service_id}' of kind 'SERVICE' in region '{location}' in project "
            f"'{project}' does not exist."
        )
    store = policies(state)
    body = await request.body()
    if method == "getIamPolicy":
        version = _requested_version(request, body)
        policy = store.get(name)
        if version not in (0, 1, 3):
            raise invalid_argument(f"Invalid requested policy version: {version}")
        return _policy_response(policy)
    if method == "setIamPolicy":
        return _set(store, name, body)
    return _test(body)


def _requested_version(request: Request, body: bytes) -> int:
    raw = request.query_params.get("options.requestedPolicyVersion", "")
    if not raw and body.strip():
        try:
            raw = str(json.loads(body).get("options", {}).get("requestedPolicyVersion", ""))
        except (ValueError, AttributeError):
            raise invalid_argument("Invalid JSON payload received.") from None
    try:
        return int(raw) if raw else 0
    except ValueError:
        raise invalid_argument(f"Invalid requested policy version: {raw}") from None
