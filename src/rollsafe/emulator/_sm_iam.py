"""Secret Manager IAM on secrets and the ``google.cloud.location`` mixin of the emulator.

IAM (``:getIamPolicy``, ``:setIamPolicy``, ``:testIamPermissions``) speaks
``google.iam.v1`` JSON as the REST transport sends and parses it. A secret nobody set a
policy on has an empty one with the etag ``ACAB`` (what Google answers for an empty
policy). Every successful set gives a new etag; a set whose ``policy.etag`` is not the
current one is 409 ABORTED with IAM's wording, so read-modify-write loops behave as on
Google. Roles must be Secret Manager's, basic or custom; members must have IAM's forms.

The emulator checks no credentials, so ``testIamPermissions`` grants every Secret Manager
permission that applies to a secret and leaves out the rest; a string that is not a
permission is refused.

Locations are the regions Secret Manager offers regional secrets in (a fixed subset).
"""

from __future__ import annotations

import os
import re
from typing import Any

from google.cloud.location import locations_pb2  # type: ignore[import-untyped]
from google.iam.v1 import iam_policy_pb2, policy_pb2  # type: ignore[import-untyped]
from google.protobuf import json_format  # type: ignore[import-untyped]

from rollsafe.emulator._google import GoogleError, invalid_argument, not_found
from rollsafe.emulator._sm_store import SecretsStore

__all__ = [
    "LOCATIONS",
    "get_iam_policy",
    "get_location",
    "list_locations",
    "set_iam_policy",
    "test_iam_permissions",
]

#: Google's etag of a policy with no bindings (base64 of 00 20 01)
EMPTY_ETAG = b"\x00\x20\x01"

#: permissions that apply to a secret (roles/secretmanager.admin on a secret)
SECRET_PERMISSIONS = frozenset(
    {
        "secretmanager.secrets.delete",
        "secretmanager.secrets.get",
        "secretmanager.secrets.getIamPolicy",
        "secretmanager.secrets.setIamPolicy",
        "secretmanager.secrets.update",
        "secretmanager.versions.access",
        "secretmanager.versions.add",
        "secretmanager.versions.destroy",
        "secretmanager.versions.disable",
        "secretmanager.versions.enable",
        "secretmanager.versions.get",
        "secretmanager.versions.list",
    }
)

#: region id -> display name (the regions of regional secrets, a subset)
LOCATIONS = {
    "asia-east1": "Taiwan",
    "asia-northeast1": "Tokyo",
    "asia-south1": "Mumbai",
    "asia-southeast1": "Singapore",
    "australia-southeast1": "Sydney",
    "europe-west1": "Belgium",
    "europe-west2": "London",
    "europe-west3": "Frankfurt",
    "europe-west4": "Netherlands",
    "me-central2": "Dammam",
    "northamerica-northeast1": "Montréal",
    "southamerica-east1": "São Paulo",
    "us-central1": "Iowa",
    "us-east1": "South Carolina",
    "us-east4": "Northern Virginia",
    "us-west1": "Oregon",
    "us-west2": "Los Angeles",
}

_BASIC_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
_CUSTOM_ROLE = re.compile(r"^(projects|organizations)/[^/]+/roles/[A-Za-z0-9_.]+$")
_MEMBER = re.compile(
    r"^(allUsers|allAuthenticatedUsers"
    r"|(user|serviceAccount|group|domain|deleted:user|deleted:serviceAccount|deleted:group)"
    r":[^:\s]+(\?uid=\d+)?"
    r"|principal(Set)?://\S+)$"
)
_PERMISSION = re.compile(r"^[a-z][a-zA-Z0-9]*(\.[a-zA-Z0-9]+){2}$")
_CONCURRENT = (
    "There were concurrent policy changes. Please retry the whole read-modify-write with"
    " exponential backoff."
)


def _json(message: Any) -> dict[str, Any]:
    data: dict[str, Any] = json_format.MessageToDict(message)
    return data


def _parse(cls: type[Any], body: bytes) -> Any:
    message = cls()
    if body.strip():
        try:
            json_format.Parse(body, message, ignore_unknown_fields=True)
        except json_format.ParseError:
            raise invalid_argument(f"Bad Request: invalid JSON body for {cls.__name__}") from None
    return message


def _stored(store: SecretsStore, secret_name: str) -> Any:
    policy = policy_pb2.Policy()
    raw = store.get_policy(secret_name)
    if raw is None:
        policy.etag = EMPTY_ETAG
    else:
        policy.ParseFromString(raw)
    return policy


def get_iam_policy(store: SecretsStore, secret_name: str, body: bytes) -> dict[str, Any]:
    """The secret's policy (``body``: a POST's GetIamPolicyRequest, empty for a GET)."""
    _parse(iam_policy_pb2.GetIamPolicyRequest, body)  # validates a POST body
    return _json(_stored(store, secret_name))


def set_iam_policy(store: SecretsStore, secret_name: str, body: bytes) -> dict[str, Any]:
    """Replace the secret's bindings; 409 ABORTED when ``policy.etag`` is stale."""
    request = _parse(iam_policy_pb2.SetIamPolicyRequest, body)
    if not request.HasField("policy"):
        raise invalid_argument("Field [policy] is required.")
    current = _stored(store, secret_name)
    wanted = request.policy
    if wanted.etag and wanted.etag != current.etag:
        raise GoogleError(409, "ABORTED", _CONCURRENT)
    policy = policy_pb2.Policy()
    for binding in wanted.bindings:
        _check_role(binding.role)
        for member in binding.members:
            if not _MEMBER.match(member):
                # Google's wording for a member without a type prefix
                raise invalid_argument('Policy members must be of the form "<type>:<value>".')
        if binding.members:  # Google drops bindings left without members
            kept = policy.bindings.add()
            kept.CopyFrom(binding)
            del kept.members[:]
            kept.members.extend(sorted(set(binding.members)))
    conditional = any(binding.HasField("condition") for binding in policy.bindings)
    if conditional and wanted.version < 3:
        raise invalid_argument(
            "Policies with conditions must have version 3; set policy.version to 3."
        )
    policy.version = 3 if conditional else 1
    mask = set(request.update_mask.paths)
    if "audit_configs" in mask or "auditConfigs" in mask:
        policy.audit_configs.extend(wanted.audit_configs)
    else:
        policy.audit_configs.extend(current.audit_configs)
    policy.etag = os.urandom(8)
    store.put_policy(secret_name, policy.SerializeToString())
    return _json(policy)


def test_iam_permissions(store: SecretsStore, secret_name: str, body: bytes) -> dict[str, Any]:
    """The permissions of the request that apply to a secret (the emulator grants them)."""
    request = _parse(iam_policy_pb2.TestIamPermissionsRequest, body)
    store.get_secret(secret_name)
    for permission in request.permissions:
        if not _PERMISSION.match(permission):
            raise invalid_argument(f"Permission {permission} is not valid for this resource.")
    granted = [p for p in request.permissions if p in SECRET_PERMISSIONS]
    return _json(iam_policy_pb2.TestIamPermissionsResponse(permissions=granted))


def _check_role(role: str) -> None:
    if role.startswith("roles/secretmanager.") or role in _BASIC_ROLES:
        return
    if _CUSTOM_ROLE.match(role):
        return
    raise invalid_argument(f"Role {role} is not supported for this resource.")


# -- locations --


def _location(project: str, location_id: str) -> Any:
    return locations_pb2.Location(
        name=f"projects/{project}/locations/{location_id}",
        location_id=location_id,
        display_name=LOCATIONS[location_id],
    )


def list_locations(project: str) -> dict[str, Any]:
    """``GET /v1/projects/P/locations``: every location, in one page."""
    locations = [_location(project, location_id) for location_id in sorted(LOCATIONS)]
    return _json(locations_pb2.ListLocationsResponse(locations=locations))


def get_location(project: str, location_id: str) -> dict[str, Any]:
    """``GET /v1/projects/P/locations/L``; 404 for a region Secret Manager does not offer."""
    if location_id not in LOCATIONS:
        raise not_found(f"Location projects/{project}/locations/{location_id} is not found.")
    return _json(_location(project, location_id))
