"""Private services as on Cloud Run: service IAM, ID tokens where google-auth finds them, the
router's 403/401, and one ``run.googleapis.com/requests`` entry per request.

Driven by the official clients (``run_v2`` over REST, google-auth) against the session's
emulator over loopback HTTP.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from rollsafe.emulator.tokens import DEFAULT_SERVICE_ACCOUNT, TokenIssuer
from tests.emulator.conftest import (
    FAST,
    IDENTITY_PATH,
    LOCATION,
    IdTokenAuth,
    fetch_id_token,
    make_public,
)
from tests.emulator.test_cloudrun import echo

FLAVOR = {"Metadata-Flavor": "Google"}
FORBIDDEN = (
    '<html><head>\n<meta http-equiv="content-type" content="text/html;charset=utf-8">\n'
    "<title>403 Forbidden</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n"
    "<h1>Error: Forbidden</h1>\n<h2>Your client does not have permission to get URL "
    "<code>/</code> from this server.</h2>\n<h2></h2>\n</body></html>\n"
)


def create(
    client: run_v2.ServicesClient, project: str, service_id: str, **fields: Any
) -> run_v2.Service:
    operation = client.create_service(
        parent=f"projects/{project}/locations/{LOCATION}",
        service_id=service_id,
        service=run_v2.Service(template=echo(), **fields),
    )
    result: run_v2.Service = operation.result(polling=FAST)
    return result


def get(url: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(url, headers=headers, timeout=10)


# -- IAM -----------------------------------------------------------------------------------


def test_new_service_has_an_empty_policy_and_set_keeps_etags(
    services: run_v2.ServicesClient, project: str
) -> None:
    service = create(services, project, "iam")
    empty = services.get_iam_policy(request={"resource": service.name})
    assert list(empty.bindings) == []
    assert empty.version == 1
    assert base64.b64encode(empty.etag) == b"ACAB"  # Google's etag of a policy never set

    policy = services.get_iam_policy(request={"resource": service.name})
    policy.bindings.add(role="roles/run.invoker", members=["allUsers", "allUsers"])
    stored = services.set_iam_policy(request={"resource": service.name, "policy": policy})
    assert [(b.role, list(b.members)) for b in stored.bindings] == [
        ("roles/run.invoker", ["allUsers"])
    ]
    assert stored.etag not in (b"", empty.etag)
    assert services.get_iam_policy(request={"resource": service.name}) == stored

    # a read-modify-write from the old read is refused, as Google does
    with pytest.raises(exceptions.Conflict, match="concurrent policy changes"):
        services.set_iam_policy(request={"resource": service.name, "policy": policy})
    assert services.get_iam_policy(request={"resource": service.name}) == stored


@pytest.mark.parametrize(
    ("role", "member", "match"),
    [
        ("roles/run.invoker", "alice@example.com", "<type>:<value>"),
        ("run.invoker", "allUsers", "not supported"),
    ],
    ids=["member-without-type", "role-without-prefix"],
)
def test_set_refuses_malformed_bindings(
    services: run_v2.ServicesClient, project: str, role: str, member: str, match: str
) -> None:
    service = create(services, project, "bad-binding")
    policy = services.get_iam_policy(request={"resource": service.name})
    policy.bindings.add(role=role, members=[member])
    with pytest.raises(exceptions.BadRequest, match=match):
        services.set_iam_policy(request={"resource": service.name, "policy": policy})


def test_test_iam_permissions_and_missing_service(
    services: run_v2.ServicesClient, project: str
) -> None:
    service = create(services, project, "perms")
    granted = services.test_iam_permissions(
        request={
            "resource": service.name,
            "permissions": ["run.routes.invoke", "run.services.get", "storage.buckets.get"],
        }
    )
    assert list(granted.permissions) == ["run.routes.invoke", "run.services.get"]
    missing = f"projects/{project}/locations/{LOCATION}/services/nope"
    with pytest.raises(exceptions.NotFound, match="'nope' of kind 'SERVICE'"):
        services.get_iam_policy(request={"resource": missing})


def test_a_deleted_service_takes_its_policy_along(
    services: run_v2.ServicesClient, project: str
) -> None:
    service = create(services, project, "again")
    make_public(services, service.name)
    services.delete_service(name=service.name).result(polling=FAST)
    again = create(services, project, "again")
    assert list(services.get_iam_policy(request={"resource": again.name}).bindings) == []
    assert get(again.uri).status_code == 403


# -- the router's check --------------------------------------------------------------------


def test_private_service_is_refused_without_a_valid_token(
    services: run_v2.ServicesClient,
    project: str,
    emulator: str,
    emulator_dir: Path,
    tmp_path: Path,
) -> None:
    service = create(services, project, "private")
    other = create(services, project, "other")

    anonymous = get(service.uri)
    assert anonymous.status_code == 403
    assert anonymous.text == FORBIDDEN
    assert anonymous.headers["content-type"] == "text/html; charset=UTF-8"

    # a token that is present but not valid here is 401, as Cloud Run answers
    expired = TokenIssuer(emulator_dir).id_token(service.uri, now=time.time() - 7200)
    foreign = TokenIssuer(tmp_path).id_token(service.uri)
    for token in (
        fetch_id_token(emulator, other.uri),  # another service's URL
        expired,
        foreign,  # signed by another key
        "not-a-jwt",
    ):
        refused = get(service.uri, token)
        assert refused.status_code == 401, token
        assert "<h1>Error: Unauthorized</h1>" in refused.text
        assert "invalid_token" in refused.headers["www-authenticate"]

    for audience in (service.uri, service.uri + "/"):
        assert get(service.uri, fetch_id_token(emulator, audience)).status_code == 200


def test_tag_urls_accept_tokens_for_any_url_of_the_service(
    services: run_v2.ServicesClient, project: str, emulator: str
) -> None:
    service = create(services, project, "tagged")
    service.traffic = [
        run_v2.TrafficTarget(
            type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST,
            percent=100,
        ),
        run_v2.TrafficTarget(
            type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
            revision=service.latest_ready_revision.rsplit("/", 1)[-1],
            tag="blue",
        ),
    ]
    service = services.update_service(service=service).result(polling=FAST)
    [tag_uri] = [s.uri for s in service.traffic_statuses if s.tag == "blue"]
    assert get(tag_uri).status_code == 403
    assert get(tag_uri, fetch_id_token(emulator, tag_uri)).status_code == 200
    assert get(service.uri, fetch_id_token(emulator, tag_uri)).status_code == 200
    assert get(tag_uri, fetch_id_token(emulator, service.uri)).status_code == 200


def test_all_users_makes_anonymous_requests_pass(
    services: run_v2.ServicesClient, project: str
) -> None:
    service = create(services, project, "public")
    assert get(service.uri).status_code == 403
    make_public(services, service.name)
    assert get(service.uri).status_code == 200
    policy = services.get_iam_policy(request={"resource": service.name})
    del policy.bindings[:]
    services.set_iam_policy(request={"resource": service.name, "policy": policy})
    assert get(service.uri).status_code == 403


_FETCH = """
import sys
from google.auth.transport.requests import Request
from google.oauth2 import id_token
print(id_token.fetch_id_token(Request(), sys.argv[1]))
"""


def test_google_auth_fetches_a_token_from_the_metadata_server(
    services: run_v2.ServicesClient, project: str, emulator: str
) -> None:
    service = create(services, project, "adc")
    host = emulator.removeprefix("http://")
    # google-auth reads GCE_METADATA_HOST when it is imported: a process of its own
    env = {**os.environ, "GCE_METADATA_HOST": host, "GCE_METADATA_IP": host}
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    fetched = subprocess.run(
        [sys.executable, "-c", _FETCH, service.uri],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = fetched.stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == service.uri
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["exp"] == claims["iat"] + 3600
    assert claims["email"] == DEFAULT_SERVICE_ACCOUNT
    assert get(service.uri, token).status_code == 200


def test_generate_id_token_impersonates_a_service_account(
    services: run_v2.ServicesClient, project: str, emulator: str
) -> None:
    service = create(services, project, "impersonated")
    account = "deployer@example-project.iam.gserviceaccount.com"
    url = f"{emulator}/v1/projects/-/serviceAccounts/{account}:generateIdToken"
    body = {"audience": service.uri, "includeEmail": True}
    refused = httpx.post(url, json=body, timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"]["status"] == "UNAUTHENTICATED"

    access = httpx.get(
        f"{emulator}/computeMetadata/v1/instance/service-accounts/default/token",
        headers=FLAVOR,
        timeout=10,
    ).json()
    assert access["token_type"] == "Bearer"
    assert access["expires_in"] == 3600
    answer = httpx.post(
        url, json=body, headers={"Authorization": f"Bearer {access['access_token']}"}, timeout=10
    )
    assert answer.status_code == 200
    token = answer.json()["token"]

    # signed by the key the emulator publishes, naming the impersonated account
    jwks = httpx.get(f"{emulator}/oauth2/v3/certs", timeout=10).json()
    [key] = jwks["keys"]
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=service.uri)
    assert claims["email"] == account
    # a valid token of an account without the invoker role: 403, as on Cloud Run
    assert get(service.uri, token).status_code == 403
    policy = services.get_iam_policy(request={"resource": service.name})
    policy.bindings.add(role="roles/run.invoker", members=[f"serviceAccount:{account}"])
    services.set_iam_policy(request={"resource": service.name, "policy": policy})
    assert get(service.uri, token).status_code == 200


@pytest.mark.parametrize(
    ("path", "headers", "status", "text"),
    [
        (f"{IDENTITY_PATH}?audience=http://x", {}, 403, "Missing Metadata-Flavor:Google header"),
        (IDENTITY_PATH, FLAVOR, 400, "non-empty audience parameter required"),
        ("/computeMetadata/v1/project/project-id", FLAVOR, 200, "rollsafe-emulator"),
        ("/computeMetadata/v1/instance/service-accounts/default/email", FLAVOR, 200, "@"),
        ("/computeMetadata/v1/instance/no-such-thing", FLAVOR, 404, "not found"),
    ],
    ids=["no-flavor", "no-audience", "project-id", "email", "unknown"],
)
def test_metadata_server_answers(
    emulator: str, path: str, headers: dict[str, str], status: int, text: str
) -> None:
    response = httpx.get(f"{emulator}{path}", headers=headers, timeout=10)
    assert response.status_code == status
    assert text in response.text
    assert response.headers["metadata-flavor"] == "Google"


def test_metadata_ping_and_service_account_info(emulator: str) -> None:
    assert httpx.get(emulator, timeout=10).headers["metadata-flavor"] == "Google"
    info = httpx.get(
        f"{emulator}/computeMetadata/v1/instance/service-accounts/default/",
        params={"recursive": "true"},
        headers=FLAVOR,
        timeout=10,
    )
    assert info.headers["content-type"] == "application/json"
    assert info.json()["email"] == DEFAULT_SERVICE_ACCOUNT


# -- request logs --------------------------------------------------------------------------


def request_entries(emulator: str, project: str, count: int) -> list[dict[str, Any]]:
    """The project's request log entries, polled until ``count`` arrived (batches flush
    a moment after the requests)."""
    body = {
        "resourceNames": [f"projects/{project}"],
        "filter": f'logName="projects/{project}/logs/run.googleapis.com%2Frequests"',
        "pageSize": 1000,
    }
    entries: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(entries) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = httpx.post(f"{emulator}/v2/entries:list", json=body, timeout=10)
        answer.raise_for_status()
        entries = answer.json().get("entries", [])
    return entries


def test_each_request_writes_one_request_log_entry(
    services: run_v2.ServicesClient, project: str, emulator: str
) -> None:
    service = create(services, project, "logged")
    revision = service.latest_ready_revision.rsplit("/", 1)[-1]
    trace = "0af7651916cd43dd8448eb211c80319c"
    with httpx.Client(timeout=10, auth=IdTokenAuth(emulator)) as http:
        for i in range(20):
            headers = {"X-Cloud-Trace-Context": f"{trace}/1;o=1"} if i == 0 else {}
            assert http.get(f"{service.uri}/item/{i}?q=1", headers=headers).status_code == 200
    assert get(service.uri).status_code == 403

    entries = request_entries(emulator, project, 21)
    assert len(entries) == 21
    served, refused = entries[:20], entries[20]
    assert [e["httpRequest"]["status"] for e in served] == [200] * 20
    first = served[0]
    assert first["httpRequest"]["requestMethod"] == "GET"
    assert first["httpRequest"]["requestUrl"] == f"{service.uri}/item/0?q=1"
    assert first["httpRequest"]["remoteIp"] == "127.0.0.1"
    assert first["httpRequest"]["userAgent"].startswith("python-httpx/")
    assert first["httpRequest"]["latency"].endswith("s")
    assert int(first["httpRequest"]["responseSize"]) > 0
    assert first["severity"] == "INFO"
    assert first["trace"] == f"projects/{project}/traces/{trace}"
    assert served[1]["trace"].startswith(f"projects/{project}/traces/")
    assert served[1]["trace"] != first["trace"]
    assert first["resource"] == {
        "type": "cloud_run_revision",
        "labels": {
            "project_id": project,
            "service_name": "logged",
            "revision_name": revision,
            "configuration_name": "logged",
            "location": LOCATION,
        },
    }
    assert refused["httpRequest"]["status"] == 403
    assert refused["severity"] == "WARNING"
    assert "not authenticated" in refused["textPayload"]


def test_tokens_appear_in_no_log_and_no_state_file(
    services: run_v2.ServicesClient, project: str, emulator: str, emulator_dir: Path
) -> None:
    service = create(services, project, "canary")
    token = fetch_id_token(emulator, service.uri)
    assert get(service.uri, token).status_code == 200
    assert get(service.uri, token + "x").status_code == 401
    request_entries(emulator, project, 2)
    signature = token.rsplit(".", 1)[1]
    for path in emulator_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert signature.encode() not in data, path
    rows = json.dumps(request_entries(emulator, project, 2))
    assert signature not in rows
    key = emulator_dir / "token-signing-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
