"""Secret Manager IAM on secrets, locations and 501s, as Google's samples call them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from google.api_core import exceptions
from google.cloud import secretmanager_v1 as sm
from google.cloud.location import locations_pb2

from rollsafe._gcp import client_kwargs
from tests.emulator.conftest import configured_gcloud

AUTO = {"replication": {"automatic": {}}}
ACCESSOR = "roles/secretmanager.secretAccessor"


@pytest.fixture
def client(emulator: str) -> Iterator[sm.SecretManagerServiceClient]:
    with sm.SecretManagerServiceClient(**client_kwargs(emulator)) as opened:
        yield opened


@pytest.fixture
def secret(client: sm.SecretManagerServiceClient, project: str) -> str:
    made = client.create_secret(parent=f"projects/{project}", secret_id="iam-s", secret=AUTO)
    return made.name


def test_new_secret_has_an_empty_policy(client: sm.SecretManagerServiceClient, secret: str) -> None:
    policy = client.get_iam_policy(request={"resource": secret})
    assert list(policy.bindings) == []
    assert policy.etag == b"\x00\x20\x01"


def test_grant_and_revoke_as_the_samples_do(
    client: sm.SecretManagerServiceClient, secret: str
) -> None:
    # iam_grant_access.py
    policy = client.get_iam_policy(request={"resource": secret})
    policy.bindings.add(role=ACCESSOR, members=["user:a@example.com"])
    granted = client.set_iam_policy(request={"resource": secret, "policy": policy})
    assert [(b.role, list(b.members)) for b in granted.bindings] == [
        (ACCESSOR, ["user:a@example.com"])
    ]
    assert granted.etag != policy.etag
    assert client.get_iam_policy(request={"resource": secret}) == granted
    # iam_revoke_access.py
    policy = client.get_iam_policy(request={"resource": secret})
    for binding in policy.bindings:
        if binding.role == ACCESSOR and "user:a@example.com" in binding.members:
            binding.members.remove("user:a@example.com")
    revoked = client.set_iam_policy(request={"resource": secret, "policy": policy})
    assert list(revoked.bindings) == []  # a binding without members is dropped


def test_stale_etag_is_409_aborted(client: sm.SecretManagerServiceClient, secret: str) -> None:
    stale = client.get_iam_policy(request={"resource": secret})
    fresh = client.get_iam_policy(request={"resource": secret})
    fresh.bindings.add(role=ACCESSOR, members=["allUsers"])
    client.set_iam_policy(request={"resource": secret, "policy": fresh})
    stale.bindings.add(role=ACCESSOR, members=["user:b@example.com"])
    with pytest.raises(exceptions.Conflict) as info:
        client.set_iam_policy(request={"resource": secret, "policy": stale})
    assert info.value.response.json()["error"]["status"] == "ABORTED"
    assert "concurrent policy changes" in info.value.message


@pytest.mark.parametrize(
    ("role", "member", "wording"),
    [
        ("roles/run.invoker", "user:a@example.com", "is not supported for this resource"),
        (ACCESSOR, "nobody", "Policy members must be of the form"),
    ],
    ids=["foreign-role", "bad-member"],
)
def test_bad_bindings_are_refused(
    client: sm.SecretManagerServiceClient, secret: str, role: str, member: str, wording: str
) -> None:
    policy = client.get_iam_policy(request={"resource": secret})
    policy.bindings.add(role=role, members=[member])
    with pytest.raises(exceptions.BadRequest, match=wording):
        client.set_iam_policy(request={"resource": secret, "policy": policy})


def test_test_iam_permissions(client: sm.SecretManagerServiceClient, secret: str) -> None:
    wanted = ["secretmanager.versions.access", "run.services.get", "secretmanager.secrets.get"]
    answer = client.test_iam_permissions(request={"resource": secret, "permissions": wanted})
    assert list(answer.permissions) == [
        "secretmanager.versions.access",
        "secretmanager.secrets.get",
    ]
    with pytest.raises(exceptions.BadRequest, match="not valid"):
        client.test_iam_permissions(request={"resource": secret, "permissions": ["nonsense"]})


def test_iam_on_a_missing_secret_is_404(
    client: sm.SecretManagerServiceClient, project: str
) -> None:
    with pytest.raises(exceptions.NotFound, match="not found"):
        client.get_iam_policy(request={"resource": f"projects/{project}/secrets/nope"})


def test_policy_goes_with_the_secret(
    client: sm.SecretManagerServiceClient, secret: str, project: str
) -> None:
    policy = client.get_iam_policy(request={"resource": secret})
    policy.bindings.add(role=ACCESSOR, members=["user:a@example.com"])
    client.set_iam_policy(request={"resource": secret, "policy": policy})
    client.delete_secret(name=secret)
    client.create_secret(parent=f"projects/{project}", secret_id="iam-s", secret=AUTO)
    assert list(client.get_iam_policy(request={"resource": secret}).bindings) == []


def test_get_iam_policy_post_form(emulator: str, secret: str) -> None:
    """gcloud posts ``:getIamPolicy`` with a body; the REST client sends a GET."""
    reply = requests.post(
        f"{emulator}/v1/{secret}:getIamPolicy",
        json={"options": {"requestedPolicyVersion": 3}},
        timeout=5,
    )
    assert reply.status_code == 200
    assert reply.json() == {"etag": "ACAB"}


def test_locations(client: sm.SecretManagerServiceClient, project: str) -> None:
    listed = client.list_locations(
        request=locations_pb2.ListLocationsRequest(name=f"projects/{project}")
    )
    ids = [location.location_id for location in listed.locations]
    assert "us-central1" in ids
    assert ids == sorted(ids)
    one = client.get_location(
        request=locations_pb2.GetLocationRequest(name=f"projects/{project}/locations/us-central1")
    )
    assert (one.name, one.location_id) == (
        f"projects/{project}/locations/us-central1",
        "us-central1",
    )
    with pytest.raises(exceptions.NotFound):
        client.get_location(
            request=locations_pb2.GetLocationRequest(name=f"projects/{project}/locations/mars-1")
        )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "secrets/iam-s:rotateSecret"),
        ("POST", "secrets/iam-s:enableManagedRotation"),
        ("PUT", "secrets/iam-s"),
        ("GET", "secrets/iam-s/versions/1/extra"),
        ("POST", "locations/us-central1:doThings"),
    ],
    ids=["rotate", "managed-rotation", "put", "deeper-path", "location-verb"],
)
def test_methods_the_emulator_lacks_are_501(
    emulator: str, secret: str, project: str, method: str, path: str
) -> None:
    reply = requests.request(method, f"{emulator}/v1/projects/{project}/{path}", timeout=5)
    assert reply.status_code == 501
    assert reply.json()["error"]["status"] == "UNIMPLEMENTED"


def test_iam_on_a_regional_secret(client: sm.SecretManagerServiceClient, project: str) -> None:
    # iam_grant_access_with_regional_secret.py
    parent = f"projects/{project}/locations/us-central1"
    secret = client.create_secret(parent=parent, secret_id="regional", secret={})
    policy = client.get_iam_policy(request={"resource": secret.name})
    policy.bindings.add(role=ACCESSOR, members=["serviceAccount:app@p.iam.gserviceaccount.com"])
    client.set_iam_policy(request={"resource": secret.name, "policy": policy})
    (binding,) = client.get_iam_policy(request={"resource": secret.name}).bindings
    assert list(binding.members) == ["serviceAccount:app@p.iam.gserviceaccount.com"]


@pytest.fixture
def gcloud(emulator: str, project: str, tmp_path: Path) -> Callable[..., str]:
    run = configured_gcloud(emulator, project, tmp_path / "gcloud", "secretmanager")
    return lambda *args: run(*args).stdout


def test_gcloud_iam_expiry_and_locations(gcloud: Callable[..., str]) -> None:
    gcloud("secrets", "create", "g", "--replication-policy=automatic", "--ttl=3600s")
    assert json.loads(gcloud("secrets", "describe", "g", "--format=json"))["expireTime"]
    member, role = "user:a@example.com", ACCESSOR
    gcloud("secrets", "add-iam-policy-binding", "g", f"--member={member}", f"--role={role}")
    policy = json.loads(gcloud("secrets", "get-iam-policy", "g", "--format=json"))
    assert policy["bindings"] == [{"members": [member], "role": role}]
    gcloud("secrets", "remove-iam-policy-binding", "g", f"--member={member}", f"--role={role}")
    assert "bindings" not in json.loads(gcloud("secrets", "get-iam-policy", "g", "--format=json"))
    gcloud("secrets", "update", "g", "--update-labels=team=a", "--remove-expiration")
    described = json.loads(gcloud("secrets", "describe", "g", "--format=json"))
    assert described["labels"] == {"team": "a"}
    assert "expireTime" not in described
    listed = gcloud("secrets", "locations", "list", "--format=value(locationId)").split()
    assert "europe-west1" in listed
