"""Secret Manager v1 of the emulator, through the official client (and gcloud) over HTTP."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import google_crc32c
import pytest
from google.api_core import exceptions
from google.cloud import secretmanager_v1 as sm

from rollsafe._gcp import client_kwargs
from rollsafe.emulator.secretmanager import SecretAccessError, resolve_secret_env, secrets_store
from rollsafe.emulator.server import start_emulator, stop_emulator
from rollsafe.emulator.state import EmulatorState
from tests.emulator.conftest import configured_gcloud

CANARY = b"Sm7Canary-q9Zx2Lp4Vt8Wb3Nf6Hd1Rs5"
AUTO = {"replication": {"automatic": {}}}
State = sm.SecretVersion.State


@pytest.fixture
def client(emulator: str) -> Iterator[sm.SecretManagerServiceClient]:
    with sm.SecretManagerServiceClient(**client_kwargs(emulator)) as opened:
        yield opened


@pytest.fixture
def make_secret(client: sm.SecretManagerServiceClient, project: str) -> Callable[..., sm.Secret]:
    def make(secret_id: str, *payloads: bytes, labels: dict[str, str] | None = None) -> sm.Secret:
        secret = client.create_secret(
            parent=f"projects/{project}",
            secret_id=secret_id,
            secret={**AUTO, "labels": labels or {}},
        )
        for payload in payloads:
            client.add_secret_version(parent=secret.name, payload={"data": payload})
        return secret

    return make


def _status(exc: exceptions.GoogleAPICallError) -> str:
    """The ``error.status`` of Google's JSON error body."""
    assert exc.response is not None
    status: str = exc.response.json()["error"]["status"]
    return status


# -- secrets --


def test_secret_create_get_patch_delete(
    client: sm.SecretManagerServiceClient, project: str
) -> None:
    created = client.create_secret(
        parent=f"projects/{project}", secret_id="db-password", secret={**AUTO, "labels": {"a": "1"}}
    )
    assert created.name == f"projects/{project}/secrets/db-password"
    assert created.create_time.year >= 2024
    assert "automatic" in created.replication
    assert created.etag

    fetched = client.get_secret(name=created.name)
    assert (fetched.name, dict(fetched.labels), fetched.etag) == (
        created.name,
        {"a": "1"},
        created.etag,
    )

    patched = client.update_secret(
        secret={"name": created.name, "labels": {"env": "prod"}}, update_mask={"paths": ["labels"]}
    )
    assert dict(patched.labels) == {"env": "prod"}
    assert patched.etag != created.etag
    assert dict(client.get_secret(name=created.name).labels) == {"env": "prod"}

    client.delete_secret(name=created.name)
    with pytest.raises(exceptions.NotFound) as info:
        client.get_secret(name=created.name)
    assert f"Secret [{created.name}] not found or has no versions." in str(info.value)
    assert _status(info.value) == "NOT_FOUND"


def test_patch_refuses_immutable_fields(
    make_secret: Callable[..., sm.Secret], client: sm.SecretManagerServiceClient
) -> None:
    secret = make_secret("s")
    with pytest.raises(exceptions.BadRequest, match="cannot be updated"):
        client.update_secret(secret={"name": secret.name}, update_mask={"paths": ["replication"]})


def test_create_twice_is_409_already_exists(
    make_secret: Callable[..., sm.Secret], client: sm.SecretManagerServiceClient, project: str
) -> None:
    secret = make_secret("twice")
    with pytest.raises(exceptions.Conflict) as info:
        client.create_secret(parent=f"projects/{project}", secret_id="twice", secret=AUTO)
    assert info.value.code == 409
    assert _status(info.value) == "ALREADY_EXISTS"
    assert f"Secret [{secret.name}] already exists." in str(info.value)


@pytest.mark.parametrize(
    ("secret_id", "secret", "message"),
    [
        ("bad.id", AUTO, "Invalid secret id"),
        ("no-replication", {}, "Secret.replication must be provided"),
    ],
)
def test_create_rejects_bad_requests(
    client: sm.SecretManagerServiceClient,
    project: str,
    secret_id: str,
    secret: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(exceptions.BadRequest, match=message) as info:
        client.create_secret(parent=f"projects/{project}", secret_id=secret_id, secret=secret)
    assert _status(info.value) == "INVALID_ARGUMENT"


# -- versions --


def test_versions_add_list_get_access(
    make_secret: Callable[..., sm.Secret], client: sm.SecretManagerServiceClient
) -> None:
    secret = make_secret("api-key", b"one", b"two", CANARY)
    versions = list(client.list_secret_versions(parent=secret.name))
    # Secret Manager lists newest first
    assert [v.name.rsplit("/", 1)[-1] for v in versions] == ["3", "2", "1"]
    assert all(v.state == State.ENABLED for v in versions)
    assert all("automatic" in v.replication_status for v in versions)

    latest = client.get_secret_version(name=f"{secret.name}/versions/latest")
    assert latest.name == f"{secret.name}/versions/3"

    response = client.access_secret_version(name=f"{secret.name}/versions/latest")
    assert response.name == f"{secret.name}/versions/3"
    assert response.payload.data == CANARY
    assert response.payload.data_crc32c == google_crc32c.value(CANARY)
    assert client.access_secret_version(name=f"{secret.name}/versions/1").payload.data == b"one"


def test_add_version_verifies_the_crc32c(
    make_secret: Callable[..., sm.Secret], client: sm.SecretManagerServiceClient
) -> None:
    secret = make_secret("checked")
    good = client.add_secret_version(
        parent=secret.name, payload={"data": b"abc", "data_crc32c": google_crc32c.value(b"abc")}
    )
    assert good.client_specified_payload_checksum
    unchecked = client.add_secret_version(parent=secret.name, payload={"data": b"abc"})
    assert not unchecked.client_specified_payload_checksum
    with pytest.raises(exceptions.BadRequest, match="Checksum mismatch") as info:
        client.add_secret_version(parent=secret.name, payload={"data": b"abc", "data_crc32c": 7})
    assert _status(info.value) == "INVALID_ARGUMENT"
    # the refused payload did not become a version
    assert len(list(client.list_secret_versions(parent=secret.name))) == 2


def test_disabled_version_is_failed_precondition(
    make_secret: Callable[..., sm.Secret], client: sm.SecretManagerServiceClient
) -> None:
    secret = make_secret("rotating", b"old", b"new")
    disabled = client.disable_secret_version(name=f"{secret.name}/versions/2")
    assert disabled.state == State.DISABLED

    # latest is the newest version even when disabled: no fallback to version 1
    with pytest.raises(exceptions.BadRequest) as info:
        client.access_secret_version(name=f"{secret.name}/versions/latest")
    assert _status(info.value) == "FAILED_PRECONDITION"
    assert f"Secret Version [{secret.name}/versions/2] is in DISABLED state." in str(info.value)
    assert client.access_secret_version(name=f"{secret.name}/versions/1").payload.data == b"old"

    enabled = client.enable_secret_version(name=f"{secret.name}/versions/2")
    assert enabled.state == State.ENABLED
    assert (
        client.access_secret_version(name=f"{secret.name}/versions/latest").payload.data == b"new"
    )


def test_destroy_wipes_the_payload_for_good(
    make_secret: Callable[..., sm.Secret], client: sm.SecretManagerServiceClient, emulator_dir: Path
) -> None:
    secret = make_secret("doomed", CANARY)
    name = f"{secret.name}/versions/1"
    destroyed = client.destroy_secret_version(name=name)
    assert destroyed.state == State.DESTROYED
    assert destroyed.destroy_time.year >= 2024

    with pytest.raises(exceptions.BadRequest, match="is in DESTROYED state") as info:
        client.access_secret_version(name=name)
    assert _status(info.value) == "FAILED_PRECONDITION"
    for change in (client.enable_secret_version, client.disable_secret_version):
        with pytest.raises(exceptions.BadRequest, match="is in DESTROYED state"):
            change(name=name)
    # the version stays listed, without payload
    (listed,) = client.list_secret_versions(parent=secret.name)
    assert listed.state == State.DESTROYED
    uri = f"file:{emulator_dir / 'emulator.sqlite3'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        (payload,) = db.execute(
            "SELECT payload FROM sm_versions WHERE secret = ? AND version = 1", (secret.name,)
        ).fetchone()
    assert payload is None


def test_not_found_errors_name_the_resource(
    make_secret: Callable[..., sm.Secret], client: sm.SecretManagerServiceClient, project: str
) -> None:
    empty = make_secret("empty")
    with pytest.raises(
        exceptions.NotFound, match=r"Secret \[.*/empty\] not found or has no versions"
    ):
        client.access_secret_version(name=f"{empty.name}/versions/latest")
    full = make_secret("full", b"x")
    with pytest.raises(exceptions.NotFound) as info:
        client.access_secret_version(name=f"{full.name}/versions/7")
    assert f"Secret Version [{full.name}/versions/7] not found." in str(info.value)
    missing = f"projects/{project}/secrets/missing"
    for call in (
        lambda: client.access_secret_version(name=f"{missing}/versions/1"),
        lambda: list(client.list_secret_versions(parent=missing)),
        lambda: client.add_secret_version(parent=missing, payload={"data": b"x"}),
        lambda: client.delete_secret(name=missing),
    ):
        with pytest.raises(exceptions.NotFound, match=r"Secret \[.*/missing\] not found"):
            call()


def test_version_aliases_resolve(
    make_secret: Callable[..., sm.Secret], client: sm.SecretManagerServiceClient
) -> None:
    secret = make_secret("aliased", b"first", b"second")
    client.update_secret(
        secret={"name": secret.name, "version_aliases": {"stable": 1}},
        update_mask={"paths": ["version_aliases"]},
    )
    response = client.access_secret_version(name=f"{secret.name}/versions/stable")
    assert (response.name, response.payload.data) == (f"{secret.name}/versions/1", b"first")


def test_regional_secrets(client: sm.SecretManagerServiceClient, project: str) -> None:
    parent = f"projects/{project}/locations/us-central1"
    secret = client.create_secret(parent=parent, secret_id="regional", secret={})
    assert secret.name == f"{parent}/secrets/regional"
    client.add_secret_version(parent=secret.name, payload={"data": b"here"})
    assert (
        client.access_secret_version(name=f"{secret.name}/versions/latest").payload.data == b"here"
    )
    assert [s.name for s in client.list_secrets(parent=parent)] == [secret.name]
    with pytest.raises(exceptions.BadRequest, match="replication should not be provided"):
        client.create_secret(parent=parent, secret_id="bad", secret=AUTO)


# -- lists --


@pytest.fixture
def sixty(client: sm.SecretManagerServiceClient, project: str) -> list[str]:
    names = [f"s{i:02d}" for i in range(60)]
    for name in names:
        client.create_secret(parent=f"projects/{project}", secret_id=name, secret=AUTO)
    return names


@pytest.mark.parametrize(("page_size", "sizes"), [(7, [7] * 8 + [4]), (0, [25, 25, 10])])
def test_pagination(
    client: sm.SecretManagerServiceClient,
    project: str,
    sixty: list[str],
    page_size: int,
    sizes: list[int],
) -> None:
    pager = client.list_secrets(request={"parent": f"projects/{project}", "page_size": page_size})
    pages = list(pager.pages)
    assert [len(page.secrets) for page in pages] == sizes
    assert all(page.total_size == 60 for page in pages)
    assert [s.name.rsplit("/", 1)[-1] for page in pages for s in page.secrets] == sixty
    assert pages[-1].next_page_token == ""


def test_page_token_survives_changes_between_pages(
    client: sm.SecretManagerServiceClient, project: str, sixty: list[str]
) -> None:
    parent = f"projects/{project}"
    first = client.list_secrets(request={"parent": parent, "page_size": 10})
    token = next(iter(first.pages)).next_page_token
    client.delete_secret(name=f"{parent}/secrets/s03")  # already served
    second = client.list_secrets(request={"parent": parent, "page_size": 10, "page_token": token})
    assert [s.name.rsplit("/", 1)[-1] for s in next(iter(second.pages)).secrets] == sixty[10:20]


def test_bad_page_token_and_size(client: sm.SecretManagerServiceClient, project: str) -> None:
    with pytest.raises(exceptions.BadRequest, match="Invalid page token"):
        list(client.list_secrets(request={"parent": f"projects/{project}", "page_token": "nope!"}))
    with pytest.raises(exceptions.BadRequest, match="negative"):
        list(client.list_secrets(request={"parent": f"projects/{project}", "page_size": -1}))


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ("name:db", ["db-password", "db-user"]),
        ("name=db-user", ["db-user"]),
        ("labels.env=prod", ["api-key", "db-password"]),
        ("labels.env=prod AND name:db", ["db-password"]),
        ("labels.env=prod name:db", ["db-password"]),
        ("name:api OR name:user", ["api-key", "db-user"]),
        ("NOT labels.env=prod", ["db-user"]),
        ("-labels.env:*", ["db-user"]),
        ('(name:api OR name:user) labels.env="prod"', ["api-key"]),
    ],
)
def test_list_filter(
    make_secret: Callable[..., sm.Secret],
    client: sm.SecretManagerServiceClient,
    project: str,
    filter_: str,
    expected: list[str],
) -> None:
    make_secret("db-password", labels={"env": "prod"})
    make_secret("db-user")
    make_secret("api-key", labels={"env": "prod"})
    listed = client.list_secrets(request={"parent": f"projects/{project}", "filter": filter_})
    assert [s.name.rsplit("/", 1)[-1] for s in listed] == expected


def test_full_name_filter_and_unsupported_terms(
    make_secret: Callable[..., sm.Secret], client: sm.SecretManagerServiceClient, project: str
) -> None:
    secret = make_secret("one")
    make_secret("two")
    parent = f"projects/{project}"
    listed = client.list_secrets(request={"parent": parent, "filter": f"name={secret.name}"})
    assert [s.name for s in listed] == [secret.name]
    with pytest.raises(exceptions.BadRequest, match="Unsupported filter term 'topics:x'"):
        list(client.list_secrets(request={"parent": parent, "filter": "topics:x"}))
    with pytest.raises(exceptions.BadRequest, match="missing '\\)'"):
        list(client.list_secrets(request={"parent": parent, "filter": "(name:x"}))


def test_versions_filter_on_state(
    make_secret: Callable[..., sm.Secret], client: sm.SecretManagerServiceClient
) -> None:
    secret = make_secret("states", b"1", b"2", b"3")
    client.disable_secret_version(name=f"{secret.name}/versions/2")
    enabled = client.list_secret_versions(
        request={"parent": secret.name, "filter": "state:ENABLED"}
    )
    assert [v.name.rsplit("/", 1)[-1] for v in enabled] == ["3", "1"]
    disabled = client.list_secret_versions(
        request={"parent": secret.name, "filter": "state=disabled"}
    )
    assert [v.name.rsplit("/", 1)[-1] for v in disabled] == ["2"]


def test_version_pagination(
    make_secret: Callable[..., sm.Secret], client: sm.SecretManagerServiceClient
) -> None:
    secret = make_secret("many", *[str(i).encode() for i in range(12)])
    pages = list(client.list_secret_versions(request={"parent": secret.name, "page_size": 5}).pages)
    assert [len(p.versions) for p in pages] == [5, 5, 2]
    numbers = [int(v.name.rsplit("/", 1)[-1]) for p in pages for v in p.versions]
    assert numbers == list(range(12, 0, -1))


# -- at rest --


def test_no_payload_in_plaintext_on_disk(
    make_secret: Callable[..., sm.Secret], client: sm.SecretManagerServiceClient, emulator_dir: Path
) -> None:
    secret = make_secret("at-rest", CANARY)
    assert client.access_secret_version(name=f"{secret.name}/versions/1").payload.data == CANARY
    files = [path for path in emulator_dir.rglob("*") if path.is_file()]
    assert any(path.name.startswith("emulator.sqlite3") for path in files)
    for path in files:  # the database, its WAL, the log
        assert CANARY not in path.read_bytes(), path


def test_secrets_survive_a_restart(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    endpoint = start_emulator(state_dir).endpoint
    try:
        with sm.SecretManagerServiceClient(**client_kwargs(endpoint)) as client:
            secret = client.create_secret(parent="projects/p", secret_id="kept", secret=AUTO)
            client.add_secret_version(parent=secret.name, payload={"data": CANARY})
            client.add_secret_version(parent=secret.name, payload={"data": b"two"})
            client.disable_secret_version(name=f"{secret.name}/versions/2")
        stop_emulator(state_dir)
        endpoint = start_emulator(state_dir).endpoint
        with sm.SecretManagerServiceClient(**client_kwargs(endpoint)) as client:
            assert (
                client.access_secret_version(name=f"{secret.name}/versions/1").payload.data
                == CANARY
            )
            assert (
                client.get_secret_version(name=f"{secret.name}/versions/2").state == State.DISABLED
            )
    finally:
        stop_emulator(state_dir)


# -- the Cloud Run hook --


def test_resolve_secret_env(tmp_path: Path) -> None:
    state = EmulatorState.open(tmp_path)
    try:
        store = secrets_store(state)
        store.create_secret("projects/p", "jwt", sm.Secret(replication={"automatic": {}}))
        store.add_version("projects/p/secrets/jwt", b"v1", checksum=False)
        store.add_version("projects/p/secrets/jwt", b"v2", checksum=False)
        assert resolve_secret_env(state, "p", "jwt", "latest") == b"v2"
        assert resolve_secret_env(state, "p", "jwt", "") == b"v2"
        assert resolve_secret_env(state, "other", "projects/p/secrets/jwt", "1") == b"v1"

        store.set_state("projects/p/secrets/jwt/versions/2", State.DISABLED)
        with pytest.raises(SecretAccessError, match="is in DISABLED state") as info:
            resolve_secret_env(state, "p", "jwt", "latest")
        assert info.value.status == "FAILED_PRECONDITION"
        with pytest.raises(SecretAccessError) as missing:
            resolve_secret_env(state, "p", "nope", "latest")
        assert (missing.value.code, missing.value.status) == (404, "NOT_FOUND")
        with pytest.raises(SecretAccessError, match="Secret Version"):
            resolve_secret_env(state, "p", "jwt", "9")
        with pytest.raises(SecretAccessError, match="Invalid secret name"):
            resolve_secret_env(state, "p", "a/b", "1")
    finally:
        state.close()


# -- gcloud --


@pytest.fixture
def gcloud(
    emulator: str, project: str, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    return configured_gcloud(emulator, project, tmp_path / "gcloud", "secretmanager")


def test_gcloud_lists_and_accesses(
    gcloud: Callable[..., subprocess.CompletedProcess[str]],
    make_secret: Callable[..., sm.Secret],
    client: sm.SecretManagerServiceClient,
) -> None:
    secret = make_secret("from-gcloud", b"first", CANARY)
    make_secret("another")
    listed = gcloud("secrets", "list", "--format=value(name)")
    assert listed.stdout.split() == ["another", "from-gcloud"]
    # gcloud checks the CRC32C the emulator sends
    accessed = gcloud("secrets", "versions", "access", "latest", "--secret=from-gcloud")
    assert accessed.stdout.encode() == CANARY

    client.disable_secret_version(name=f"{secret.name}/versions/2")
    refused = gcloud("secrets", "versions", "access", "latest", "--secret=from-gcloud", ok=False)
    assert refused.returncode != 0
    assert "FAILED_PRECONDITION" in refused.stderr
    assert "is in DISABLED state" in refused.stderr


def test_a_malformed_body_is_refused_without_echoing_values(emulator: str, project: str) -> None:
    import httpx

    canary = "CANARY-not-a-number-7f3a"
    base = f"{emulator}/v1/projects/{project}/secrets"
    bodies = {
        "bad-field": f'{{"payload": {{"data": "eA==", "dataCrc32c": "{canary}"}}}}',
        "not-json": f'{{"payload": {canary}}}',
    }
    with httpx.Client() as client:
        created = client.post(
            base, params={"secretId": "s"}, json={"replication": {"automatic": {}}}
        )
        assert created.status_code == 200, created.text
        answers = {k: client.post(f"{base}/s:addVersion", content=b) for k, b in bodies.items()}
    for answer in answers.values():
        assert answer.status_code == 400
        assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert canary not in answer.text
    assert "payload.dataCrc32c" in answers["bad-field"].json()["error"]["message"]
    assert "not valid JSON" in answers["not-json"].json()["error"]["message"]
