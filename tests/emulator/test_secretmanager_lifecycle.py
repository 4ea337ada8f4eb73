"""Secret Manager lifecycle: ttl/expire_time, update masks, etags, rotation, delayed destroy."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import secretmanager_v1 as sm
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from rollsafe._gcp import client_kwargs

AUTO = {"replication": {"automatic": {}}}
State = sm.SecretVersion.State


@pytest.fixture
def client(emulator: str) -> Iterator[sm.SecretManagerServiceClient]:
    with sm.SecretManagerServiceClient(**client_kwargs(emulator)) as opened:
        yield opened


def _status(exc: exceptions.GoogleAPICallError) -> str:
    assert exc.response is not None
    status: str = exc.response.json()["error"]["status"]
    return status


def test_ttl_becomes_expire_time(client: sm.SecretManagerServiceClient, project: str) -> None:
    before = datetime.now(UTC)
    secret = client.create_secret(
        parent=f"projects/{project}",
        secret_id="ttl",
        secret={**AUTO, "ttl": duration_pb2.Duration(seconds=3600)},
    )
    assert "ttl" not in secret  # input only, as on Google
    expires = secret.expire_time
    assert before + timedelta(seconds=3600) <= expires <= datetime.now(UTC) + timedelta(hours=1)
    assert client.get_secret(name=secret.name).expire_time == expires


def test_expire_time_set_directly_as_the_sample_does(
    client: sm.SecretManagerServiceClient, project: str
) -> None:
    # create_secret_with_expiration.py: a naive local datetime through a Timestamp
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    secret = client.create_secret(
        request={
            "parent": f"projects/{project}",
            "secret_id": "exp",
            "secret": {**AUTO, "expire_time": timestamp},
        }
    )
    assert secret.expire_time.timestamp() == pytest.approx(timestamp.ToDatetime().timestamp())


def test_expire_time_in_the_past_is_refused(
    client: sm.SecretManagerServiceClient, project: str
) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(exceptions.BadRequest, match="expire_time must be in the future"):
        client.create_secret(
            parent=f"projects/{project}", secret_id="past", secret={**AUTO, "expire_time": past}
        )


def test_an_expired_secret_is_deleted(client: sm.SecretManagerServiceClient, project: str) -> None:
    secret = client.create_secret(
        parent=f"projects/{project}",
        secret_id="short",
        secret={**AUTO, "ttl": duration_pb2.Duration(seconds=1)},
    )
    client.add_secret_version(parent=secret.name, payload={"data": b"v"})
    deadline = secret.expire_time + timedelta(milliseconds=50)
    while datetime.now(UTC) < deadline:
        time.sleep(0.1)
    with pytest.raises(exceptions.NotFound) as info:
        client.get_secret(name=secret.name)
    body = info.value.response.json()["error"]
    assert body["message"] == f"Secret [{secret.name}] not found or has no versions."
    with pytest.raises(exceptions.NotFound):
        client.access_secret_version(name=f"{secret.name}/versions/latest")
    assert list(client.list_secrets(parent=f"projects/{project}")) == []
    # the id is free again, with no versions of the old secret
    again = client.create_secret(parent=f"projects/{project}", secret_id="short", secret=AUTO)
    assert list(client.list_secret_versions(parent=again.name)) == []


def test_update_ttl_and_remove_expiration(
    client: sm.SecretManagerServiceClient, project: str
) -> None:
    secret = client.create_secret(parent=f"projects/{project}", secret_id="upd", secret=AUTO)
    assert "expire_time" not in secret
    with_ttl = client.update_secret(
        secret={"name": secret.name, "ttl": duration_pb2.Duration(seconds=7200)},
        update_mask={"paths": ["ttl"]},
    )
    assert with_ttl.expire_time > datetime.now(UTC) + timedelta(seconds=7000)
    # delete_secret_expiration.py: the mask names expire_time, the secret carries none
    cleared = client.update_secret(
        request={
            "secret": {"name": secret.name},
            "update_mask": field_mask_pb2.FieldMask(paths=["expire_time"]),
        }
    )
    assert "expire_time" not in cleared
    assert "expire_time" not in client.get_secret(name=secret.name)


def test_update_masks_for_labels_annotations_aliases(
    client: sm.SecretManagerServiceClient, project: str
) -> None:
    secret = client.create_secret(
        parent=f"projects/{project}",
        secret_id="masks",
        secret={**AUTO, "labels": {"keep": "1"}, "annotations": {"a": "x"}},
    )
    client.add_secret_version(parent=secret.name, payload={"data": b"one"})
    updated = client.update_secret(
        secret={
            "name": secret.name,
            "labels": {"new": "2"},
            "annotations": {"b": "y"},
            "version_aliases": {"current": 1},
        },
        update_mask={"paths": ["annotations", "version_aliases"]},
    )
    assert dict(updated.labels) == {"keep": "1"}  # not in the mask: untouched
    assert dict(updated.annotations) == {"b": "y"}
    assert dict(updated.version_aliases) == {"current": 1}
    assert client.get_secret_version(name=f"{secret.name}/versions/current").name.endswith("/1")


@pytest.mark.parametrize(
    ("path", "wording"),
    [
        ("replication", "cannot be updated"),
        ("create_time", "cannot be updated"),
        ("no_such_field", "not fields of Secret"),
    ],
    ids=["immutable", "output-only", "unknown"],
)
def test_update_mask_refusals(
    client: sm.SecretManagerServiceClient, project: str, path: str, wording: str
) -> None:
    secret = client.create_secret(parent=f"projects/{project}", secret_id="refuse", secret=AUTO)
    with pytest.raises(exceptions.BadRequest, match=wording) as info:
        client.update_secret(secret={"name": secret.name}, update_mask={"paths": [path]})
    assert _status(info.value) == "INVALID_ARGUMENT"


def test_secret_etags(client: sm.SecretManagerServiceClient, project: str) -> None:
    secret = client.create_secret(parent=f"projects/{project}", secret_id="etag", secret=AUTO)
    # update_secret_with_etag.py
    updated = client.update_secret(
        request={
            "secret": {"name": secret.name, "labels": {"x": "1"}, "etag": secret.etag},
            "update_mask": {"paths": ["labels"]},
        }
    )
    assert updated.etag != secret.etag
    with pytest.raises(exceptions.BadRequest) as info:
        client.update_secret(
            request={
                "secret": {"name": secret.name, "labels": {"x": "2"}, "etag": secret.etag},
                "update_mask": {"paths": ["labels"]},
            }
        )
    assert _status(info.value) == "FAILED_PRECONDITION"
    # delete_secret_with_etag.py
    with pytest.raises(exceptions.BadRequest, match="etag"):
        client.delete_secret(request=sm.DeleteSecretRequest(name=secret.name, etag=secret.etag))
    client.delete_secret(request=sm.DeleteSecretRequest(name=secret.name, etag=updated.etag))
    with pytest.raises(exceptions.NotFound):
        client.get_secret(name=secret.name)


def test_version_etags_change_on_every_state_call(
    client: sm.SecretManagerServiceClient, project: str
) -> None:
    secret = client.create_secret(parent=f"projects/{project}", secret_id="vetag", secret=AUTO)
    version = client.add_secret_version(parent=secret.name, payload={"data": b"v"})
    # enabling an enabled version changes nothing but its etag (the documented rule)
    again = client.enable_secret_version(request={"name": version.name, "etag": version.etag})
    assert again.state == State.ENABLED
    assert again.etag != version.etag
    with pytest.raises(exceptions.BadRequest) as info:
        client.disable_secret_version(request={"name": version.name, "etag": version.etag})
    assert _status(info.value) == "FAILED_PRECONDITION"
    disabled = client.disable_secret_version(request={"name": version.name, "etag": again.etag})
    assert disabled.state == State.DISABLED
    destroyed = client.destroy_secret_version(request={"name": version.name, "etag": disabled.etag})
    assert destroyed.state == State.DESTROYED


def test_sweep_deletes_expired_secrets_nobody_reads(tmp_path: Path) -> None:
    from rollsafe.emulator.secretmanager import secrets_store
    from rollsafe.emulator.state import EmulatorState

    state = EmulatorState.open(tmp_path)
    try:
        store = secrets_store(state)
        later = sm.Secret(replication={"automatic": {}}, ttl=timedelta(hours=1))
        kept = store.create_secret("projects/p", "kept", later)
        gone = store.create_secret("projects/p", "gone", sm.Secret(later))
        store.add_version(gone.name, b"v", checksum=False)
        store.put_policy(gone.name, b"")
        # as if its hour had passed: the sweep (the emulator runs it on a timer) deletes it
        state.db.execute(
            "UPDATE sm_secrets SET expire_time = '2000-01-01T00:00:00.000000' WHERE name = ?",
            (gone.name,),
        )
        assert store.sweep_expired() == 1
        assert store.sweep_expired() == 0
        assert [s.name for s in store.list_secrets("projects/p")] == [kept.name]
        assert state.db.query("SELECT * FROM sm_versions") == []
        assert state.db.query("SELECT * FROM sm_policies") == []
    finally:
        state.close()


def test_an_old_state_dir_gains_the_expiry_column(tmp_path: Path) -> None:
    from rollsafe.emulator.secretmanager import secrets_store
    from rollsafe.emulator.state import EmulatorState

    db = sqlite3.connect(tmp_path / "emulator.sqlite3")
    db.execute(
        "CREATE TABLE sm_secrets (name TEXT PRIMARY KEY, parent TEXT NOT NULL,"
        " secret_id TEXT NOT NULL, body TEXT NOT NULL)"
    )
    db.execute(
        "INSERT INTO sm_secrets VALUES ('projects/p/secrets/old', 'projects/p', 'old', ?)",
        ('{"name": "projects/p/secrets/old"}',),
    )
    db.commit()
    db.close()
    state = EmulatorState.open(tmp_path)
    try:
        store = secrets_store(state)
        assert store.get_secret("projects/p/secrets/old").name == "projects/p/secrets/old"
        assert store.sweep_expired() == 0
    finally:
        state.close()


def test_delayed_destruction(client: sm.SecretManagerServiceClient, project: str) -> None:
    # create_secret_with_delayed_destroy.py, then destroy: disabled and scheduled, not gone
    secret = client.create_secret(
        request={
            "parent": f"projects/{project}",
            "secret_id": "delayed",
            "secret": {**AUTO, "version_destroy_ttl": duration_pb2.Duration(seconds=86400)},
        }
    )
    version = client.add_secret_version(parent=secret.name, payload={"data": b"kept"})
    scheduled = client.destroy_secret_version(name=version.name)
    assert scheduled.state == State.DISABLED
    assert "destroy_time" not in scheduled
    assert scheduled.scheduled_destroy_time > datetime.now(UTC) + timedelta(hours=23)
    with pytest.raises(exceptions.BadRequest, match="is in DISABLED state"):
        client.access_secret_version(name=version.name)
    # enabling cancels the destruction and the value is still there
    restored = client.enable_secret_version(name=version.name)
    assert restored.state == State.ENABLED
    assert "scheduled_destroy_time" not in restored
    assert client.access_secret_version(name=version.name).payload.data == b"kept"
    # disable_secret_with_delayed_destroy.py: without the ttl, destroy is at once again
    client.update_secret(
        request={"secret": {"name": secret.name}, "update_mask": {"paths": ["version_destroy_ttl"]}}
    )
    assert client.destroy_secret_version(name=version.name).state == State.DESTROYED


def test_scheduled_destruction_happens_when_due(tmp_path: Path) -> None:
    from rollsafe.emulator.secretmanager import secrets_store
    from rollsafe.emulator.state import EmulatorState

    state = EmulatorState.open(tmp_path)
    try:
        store = secrets_store(state)
        secret = store.create_secret(
            "projects/p",
            "d",
            sm.Secret(replication={"automatic": {}}, version_destroy_ttl=timedelta(days=1)),
        )
        version = store.add_version(secret.name, b"v", checksum=False)
        assert store.set_state(version.name, State.DESTROYED).state == State.DISABLED
        state.db.execute(
            "UPDATE sm_versions SET scheduled_destroy_time = '2000-01-01T00:00:00.000000'"
        )
        destroyed = store.get_version(version.name)
        assert destroyed.state == State.DESTROYED
        assert destroyed.destroy_time.year == 2000
        assert state.db.query("SELECT payload FROM sm_versions")[0]["payload"] is None
    finally:
        state.close()


def test_rotation_as_the_samples_set_and_remove_it(
    client: sm.SecretManagerServiceClient, project: str
) -> None:
    # create_secret_with_rotation.py
    next_time = timestamp_pb2.Timestamp()
    next_time.FromDatetime(datetime.now(UTC) + timedelta(hours=24))
    secret = client.create_secret(
        request={
            "parent": f"projects/{project}",
            "secret_id": "rotating",
            "secret": {
                **AUTO,
                "topics": [{"name": f"projects/{project}/topics/rotation"}],
                "rotation": {
                    "next_rotation_time": next_time,
                    "rotation_period": duration_pb2.Duration(seconds=86400),
                },
            },
        }
    )
    assert secret.rotation.rotation_period == timedelta(days=1)
    # delete_secret_rotation.py
    cleared = client.update_secret(
        request={"secret": {"name": secret.name}, "update_mask": {"paths": ["rotation"]}}
    )
    assert "rotation" not in cleared


@pytest.mark.parametrize(
    ("rotation", "topics", "wording"),
    [
        ({"rotation_period": {"seconds": 86400}}, True, "Next rotation time must be set"),
        (
            {"rotation_period": {"seconds": 60}, "next_rotation_time": "2100-01-01T00:00:00Z"},
            True,
            "at least 3600 seconds",
        ),
        ({"next_rotation_time": "2100-01-01T00:00:00Z"}, False, "at least one topic"),
    ],
    ids=["no-next-time", "short-period", "no-topic"],
)
def test_rotation_refusals(
    client: sm.SecretManagerServiceClient,
    project: str,
    rotation: dict[str, object],
    topics: bool,
    wording: str,
) -> None:
    secret: dict[str, object] = {**AUTO, "rotation": rotation}
    if topics:
        secret["topics"] = [{"name": f"projects/{project}/topics/t"}]
    with pytest.raises(exceptions.BadRequest, match=wording):
        client.create_secret(parent=f"projects/{project}", secret_id="r", secret=secret)


@pytest.mark.parametrize(
    "fields",
    [
        {"annotations": {"owner": "team-a"}},
        {"labels": {"secretmanager": "rocks"}},
        {"topics": [{"name": "projects/p/topics/t"}]},
        {"version_destroy_ttl": duration_pb2.Duration(seconds=86400)},
        {"secret_type": sm.Secret.SecretType.CERTIFICATE},
        {
            "replication": {
                "automatic": {
                    "customer_managed_encryption": {
                        "kms_key_name": "projects/p/locations/global/keyRings/r/cryptoKeys/k"
                    }
                }
            }
        },
    ],
    ids=["annotations", "labels", "topics", "delayed-destroy", "type", "cmek"],
)
def test_fields_the_create_samples_set_come_back(
    client: sm.SecretManagerServiceClient, project: str, fields: dict[str, object]
) -> None:
    created = client.create_secret(
        request={"parent": f"projects/{project}", "secret_id": "f", "secret": {**AUTO, **fields}}
    )
    fetched = client.get_secret(name=created.name)
    assert fetched == created
    expected = sm.Secret({**AUTO, **fields})
    for name in fields:
        assert getattr(fetched, name) == getattr(expected, name)
