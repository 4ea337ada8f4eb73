"""Google's published Secret Manager samples, call for call, against the emulator.

Source: GoogleCloudPlatform/python-docs-samples ``secretmanager/snippets/*.py`` and
``secretmanager/snippets/regional_samples/*.py``. Each test makes the sample's calls with the
sample's request shapes; only client construction differs (``gapic_client``) and ids are
substituted. Where a global sample has a regional twin (same calls, names under
``projects/P/locations/L``, no ``replication`` on create), one test runs both (ids ``global``
and ``regional``): the emulator serves regional secrets on its one endpoint, so the regional
samples' ``secretmanager.L.rep.googleapis.com`` endpoint becomes the emulator too.
Assertions are those of the samples' own tests (``snippets_test.py``) or what the sample
prints.

Not run, and why:

- ``consume_event_notification.py``: decodes a Pub/Sub message; it makes no API call.
- ``create_secret_with_cmek.py`` and ``regional_samples/create_regional_secret_with_cmek.py``:
  need a Cloud KMS key that Google checks exists and that Secret Manager's service agent may
  use; the emulator serves no Cloud KMS.
- ``create_secret_with_tags.py``, ``bind_tags_to_secret.py``, ``list_tag_bindings.py``,
  ``detach_tag_binding.py`` and their regional twins: need Resource Manager tag keys and
  values (``tagKeys/N``), a different API the emulator does not serve.
- ``regional_samples/create_regional_secret_with_cloud_sql_credentials.py``,
  ``enable_regional_secret_managed_rotation.py``,
  ``update_regional_secret_with_managed_rotation_schedule.py`` and
  ``rotate_regional_secret.py``: Cloud SQL managed rotation needs a Cloud SQL instance.
- The top-level ``*_regional_*.py`` files are older copies of ``regional_samples/``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import google_crc32c
import pytest
from google.api_core import exceptions
from google.cloud import secretmanager
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from tests.emulator.conftest import gapic_client
from tests.emulator.samples.conftest import unique

LOCATION = "us-central1"
MEMBER = "serviceAccount:samples@example-project.iam.gserviceaccount.com"
ACCESSOR = "roles/secretmanager.secretAccessor"
SM = "GoogleCloudPlatform/python-docs-samples secretmanager/snippets/"


@dataclass(frozen=True)
class Where:
    """Global (``projects/P``) or regional (``projects/P/locations/L``) names."""

    project: str
    location: str | None

    @property
    def parent(self) -> str:
        base = f"projects/{self.project}"
        return base if self.location is None else f"{base}/locations/{self.location}"

    def secret(self, secret_id: str) -> str:
        return f"{self.parent}/secrets/{secret_id}"

    def version(self, secret_id: str, version_id: str) -> str:
        return f"{self.secret(secret_id)}/versions/{version_id}"

    def body(self, **fields: Any) -> dict[str, Any]:
        """A new secret as the samples write it: global ones set automatic replication,
        regional ones set none (a regional secret has no replication)."""
        if self.location is None:
            return {"replication": {"automatic": {}}, **fields}
        return fields


@dataclass(frozen=True)
class Secret:
    id: str
    name: str
    etag: str


@dataclass(frozen=True)
class Version:
    secret_id: str
    id: str
    name: str
    etag: str


@pytest.fixture(scope="module")
def client(emulator: str) -> Iterator[secretmanager.SecretManagerServiceClient]:
    with gapic_client(secretmanager.SecretManagerServiceClient, emulator) as opened:
        yield opened


@pytest.fixture(params=[None, LOCATION], ids=["global", "regional"])
def where(request: pytest.FixtureRequest, sample_project: str) -> Where:
    return Where(sample_project, request.param)


@pytest.fixture
def global_only(sample_project: str) -> Where:
    return Where(sample_project, None)


def _create(
    client: secretmanager.SecretManagerServiceClient, where: Where, **fields: Any
) -> Secret:
    """The samples' test fixture ``secret``: ttl 300s, one label, one annotation."""
    secret_id = unique("python-secret")
    created = client.create_secret(
        request={"parent": where.parent, "secret_id": secret_id, "secret": where.body(**fields)}
    )
    return Secret(secret_id, created.name, created.etag)


@pytest.fixture
def secret(client: secretmanager.SecretManagerServiceClient, where: Where) -> Secret:
    return _create(
        client,
        where,
        ttl="300s",
        labels={"googlecloud": "rocks"},
        annotations={"annotationkey": "annotationvalue"},
    )


def _add(client: secretmanager.SecretManagerServiceClient, secret: Secret) -> Version:
    """The samples' test fixture ``secret_version``: payload ``hello world!``."""
    version = client.add_secret_version(
        request={"parent": secret.name, "payload": {"data": b"hello world!"}}
    )
    return Version(secret.id, version.name.rsplit("/", 1)[-1], version.name, version.etag)


@pytest.fixture
def version(client: secretmanager.SecretManagerServiceClient, secret: Secret) -> Version:
    return _add(client, secret)


def _ids_listed(items: Any) -> list[str]:
    return [item.name for item in items]


# -- create ------------------------------------------------------------------------------


def test_quickstart(client: secretmanager.SecretManagerServiceClient, where: Where) -> None:
    # quickstart.py, regional_samples/regional_quickstart.py
    secret = client.create_secret(
        request={
            "parent": where.parent,
            "secret_id": unique("quickstart"),
            "secret": where.body(),
        }
    )
    version = client.add_secret_version(
        request={"parent": secret.name, "payload": {"data": b"hello world!"}}
    )
    response = client.access_secret_version(request={"name": version.name})
    assert f"Plaintext: {response.payload.data.decode('UTF-8')}" == "Plaintext: hello world!"


@pytest.mark.parametrize("ttl", ["300s", None], ids=["ttl", "no-ttl"])
def test_create_secret(
    client: secretmanager.SecretManagerServiceClient, where: Where, ttl: str | None
) -> None:
    # create_secret.py, regional_samples/create_regional_secret.py
    secret_id = unique("python-secret")
    response = client.create_secret(
        request={"parent": where.parent, "secret_id": secret_id, "secret": where.body(ttl=ttl)}
    )
    assert response.name == where.secret(secret_id)
    # snippets_test.py: a ttl becomes expire_time; without one there is none
    assert bool(response.expire_time) is (ttl is not None)


def test_create_secret_with_user_managed_replication(
    client: secretmanager.SecretManagerServiceClient, global_only: Where
) -> None:
    # create_secret_with_user_managed_replication.py (create_ummr_secret)
    locations = ["us-east1", "us-east4", "us-west1"]
    secret_id = unique("python-secret")
    response = client.create_secret(
        request={
            "parent": global_only.parent,
            "secret_id": secret_id,
            "secret": {
                "replication": {"user_managed": {"replicas": [{"location": x} for x in locations]}}
            },
        }
    )
    assert response.name == global_only.secret(secret_id)
    replicas = response.replication.user_managed.replicas
    assert [replica.location for replica in replicas] == locations


@pytest.mark.parametrize(
    ("what", "value"),
    [("labels", {"googlecloud": "rocks"}), ("annotations", {"annotationkey": "annotationvalue"})],
    ids=["labels", "annotations"],
)
def test_create_secret_with_labels_or_annotations(
    client: secretmanager.SecretManagerServiceClient,
    where: Where,
    what: str,
    value: dict[str, str],
) -> None:
    # create_secret_with_{labels,annotations}.py,
    # regional_samples/create_regional_secret_with_{labels,annotations}.py
    secret_id = unique("python-secret")
    response = client.create_secret(
        request={
            "parent": where.parent,
            "secret_id": secret_id,
            "secret": where.body(**{what: value}),
        }
    )
    assert response.name == where.secret(secret_id)
    assert dict(getattr(response, what)) == value


def test_create_secret_with_delayed_destroy(
    client: secretmanager.SecretManagerServiceClient, where: Where
) -> None:
    # create_secret_with_delayed_destroy.py,
    # regional_samples/create_regional_secret_with_delayed_destroy.py
    response = client.create_secret(
        request={
            "parent": where.parent,
            "secret_id": unique("python-secret"),
            "secret": where.body(version_destroy_ttl=timedelta(seconds=604800)),
        }
    )
    assert response.version_destroy_ttl == timedelta(seconds=604800)


def test_create_secret_with_expiration(
    client: secretmanager.SecretManagerServiceClient, where: Where
) -> None:
    # create_secret_with_expiration.py,
    # regional_samples/create_regional_secret_with_expire_time.py
    expire_time = datetime.now() + timedelta(hours=1)
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromDatetime(expire_time)
    secret = client.create_secret(
        request={
            "parent": where.parent,
            "secret_id": unique("python-secret"),
            "secret": where.body(expire_time=timestamp),
        }
    )
    assert secret.expire_time.timestamp() == pytest.approx(timestamp.ToSeconds(), abs=1)


def _rotation(hours: int) -> dict[str, Any]:
    next_rotation_time = timestamp_pb2.Timestamp()
    next_rotation_time.FromDatetime(datetime.now() + timedelta(hours=24))
    rotation_period = duration_pb2.Duration()
    rotation_period.seconds = hours * 3600
    return {"next_rotation_time": next_rotation_time, "rotation_period": rotation_period}


def test_create_secret_with_rotation(
    client: secretmanager.SecretManagerServiceClient, where: Where
) -> None:
    # create_secret_with_rotation.py,
    # regional_samples/create_regional_secret_with_rotation.py
    topic_name = f"projects/{where.project}/topics/rotation"
    secret = client.create_secret(
        request={
            "parent": where.parent,
            "secret_id": unique("python-secret"),
            "secret": where.body(topics=[{"name": topic_name}], rotation=_rotation(24)),
        }
    )
    assert secret.rotation.rotation_period == timedelta(hours=24)
    assert [topic.name for topic in secret.topics] == [topic_name]


def _seconds_from_now(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=int(time.time()) + seconds)


@pytest.mark.parametrize(
    ("topics", "rotation"),
    [
        pytest.param(False, {"next_rotation_time": 86400, "rotation_period": 86400}, id="no-topic"),
        pytest.param(
            True, {"next_rotation_time": 86400, "rotation_period": 60}, id="period-under-1h"
        ),
        pytest.param(
            True, {"next_rotation_time": 60, "rotation_period": 86400}, id="next-under-5min"
        ),
        pytest.param(True, {"rotation_period": 86400}, id="period-without-next"),
    ],
)
def test_create_secret_with_rotation_google_refuses(
    client: secretmanager.SecretManagerServiceClient,
    where: Where,
    topics: bool,
    rotation: dict[str, int],
) -> None:
    # create_secret_with_rotation.py with values the Rotation message's documentation rules
    # out: topics must be set; rotation_period at least 3600s; next_rotation_time at least
    # 300s ahead and set whenever rotation_period is
    fields: dict[str, Any] = {}
    if "next_rotation_time" in rotation:
        fields["next_rotation_time"] = _seconds_from_now(rotation["next_rotation_time"])
    fields["rotation_period"] = duration_pb2.Duration(seconds=rotation["rotation_period"])
    body = where.body(rotation=fields)
    if topics:
        body["topics"] = [{"name": f"projects/{where.project}/topics/rotation"}]
    with pytest.raises(exceptions.BadRequest) as refused:
        client.create_secret(
            request={"parent": where.parent, "secret_id": unique("python-secret"), "secret": body}
        )
    assert refused.value.response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_create_secret_with_topic(
    client: secretmanager.SecretManagerServiceClient, where: Where
) -> None:
    # create_secret_with_topic.py, regional_samples/create_regional_secret_with_topic.py
    topic_name = f"projects/{where.project}/topics/events"
    secret = client.create_secret(
        request={
            "parent": where.parent,
            "secret_id": unique("python-secret"),
            "secret": where.body(topics=[{"name": topic_name}]),
        }
    )
    assert [topic.name for topic in secret.topics] == [topic_name]


def test_create_secret_with_type_and_get_secret_type(
    client: secretmanager.SecretManagerServiceClient, where: Where
) -> None:
    # create_secret_with_type.py, get_secret_type.py,
    # regional_samples/get_regional_secret_type.py
    secret_id = unique("python-secret")
    response = client.create_secret(
        request={
            "parent": where.parent,
            "secret_id": secret_id,
            "secret": where.body(secret_type=secretmanager.Secret.SecretType.ACCESS_KEY),
        }
    )
    assert response.secret_type == secretmanager.Secret.SecretType.ACCESS_KEY
    got = client.get_secret(request={"name": where.secret(secret_id)})
    assert got.secret_type.name == "ACCESS_KEY"


# -- read --------------------------------------------------------------------------------


def test_get_secret(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # get_secret.py, regional_samples/get_regional_secret.py
    response = client.get_secret(request={"name": where.secret(secret.id)})
    assert response.name == secret.name
    # get_secret.py prints the replication policy of a global secret
    if where.location is None:
        assert "automatic" in secretmanager.Replication.to_dict(response.replication)


def test_get_secret_version(
    client: secretmanager.SecretManagerServiceClient, where: Where, version: Version
) -> None:
    # get_secret_version.py, regional_samples/get_regional_secret_version.py
    response = client.get_secret_version(
        request={"name": where.version(version.secret_id, version.id)}
    )
    assert response.name == version.name
    assert secretmanager.SecretVersion.State(response.state).name == "ENABLED"


def test_access_secret_version(
    client: secretmanager.SecretManagerServiceClient, where: Where, version: Version
) -> None:
    # access_secret_version.py, regional_samples/access_regional_secret_version.py
    response = client.access_secret_version(
        request={"name": where.version(version.secret_id, version.id)}
    )
    crc32c = google_crc32c.Checksum()
    crc32c.update(response.payload.data)
    assert response.payload.data_crc32c == int(crc32c.hexdigest(), 16), "Data corruption"
    assert response.payload.data.decode("UTF-8") == "hello world!"


@pytest.mark.parametrize("what", ["labels", "annotations"])
def test_view_secret_labels_and_annotations(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret, what: str
) -> None:
    # list_secret_labels.py, view_secret_labels.py, view_secret_annotations.py,
    # regional_samples/view_regional_secret_labels.py, view_regional_secret_annotations.py
    response = client.get_secret(request={"name": where.secret(secret.id)})
    expected = {
        "labels": {"googlecloud": "rocks"},
        "annotations": {"annotationkey": "annotationvalue"},
    }
    assert dict(getattr(response, what)) == expected[what]


def test_list_secrets(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # list_secrets.py, regional_samples/list_regional_secrets.py
    assert secret.name in _ids_listed(client.list_secrets(request={"parent": where.parent}))


def test_list_secrets_with_filter(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # list_secrets_with_filter.py, regional_samples/list_regional_secrets_with_filter.py
    # (snippets_test.py: the secret appears once update_secret.py labelled it)
    filter_str = "labels.secretmanager:rocks"
    listed = client.list_secrets(request={"parent": where.parent, "filter": filter_str})
    assert secret.name not in _ids_listed(listed)
    client.update_secret(
        request={
            "secret": {"name": secret.name, "labels": {"secretmanager": "rocks"}},
            "update_mask": {"paths": ["labels"]},
        }
    )
    listed = client.list_secrets(request={"parent": where.parent, "filter": filter_str})
    assert secret.name in _ids_listed(listed)


def test_list_secret_versions(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # list_secret_versions.py, regional_samples/list_regional_secret_versions.py
    first, second = _add(client, secret), _add(client, secret)
    listed = client.list_secret_versions(request={"parent": where.secret(secret.id)})
    assert _ids_listed(listed) == [second.name, first.name]


def test_list_secret_versions_with_filter(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # list_secret_versions_with_filter.py,
    # regional_samples/list_regional_secret_versions_with_filter.py
    enabled, disabled = _add(client, secret), _add(client, secret)
    client.disable_secret_version(request={"name": disabled.name})
    listed = client.list_secret_versions(
        request={"parent": where.secret(secret.id), "filter": "state:ENABLED"}
    )
    assert _ids_listed(listed) == [enabled.name]


# -- versions ----------------------------------------------------------------------------


def test_add_secret_version(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # add_secret_version.py, regional_samples/add_regional_secret_version.py
    payload_bytes = b"test123"  # the sample encodes "test123" as UTF-8
    crc32c = google_crc32c.Checksum()
    crc32c.update(payload_bytes)
    response = client.add_secret_version(
        request={
            "parent": where.secret(secret.id),
            "payload": {"data": payload_bytes, "data_crc32c": int(crc32c.hexdigest(), 16)},
        }
    )
    assert response.name == where.version(secret.id, "1")


@pytest.mark.parametrize("with_etag", [False, True], ids=["plain", "with-etag"])
def test_disable_enable_secret_version(
    client: secretmanager.SecretManagerServiceClient,
    where: Where,
    version: Version,
    with_etag: bool,
) -> None:
    # disable_secret_version.py, enable_secret_version.py, *_with_etag.py and the
    # regional_samples/ twins
    name = where.version(version.secret_id, version.id)
    etag = {"etag": version.etag} if with_etag else {}
    response = client.disable_secret_version(request={"name": name, **etag})
    assert response.state == secretmanager.SecretVersion.State.DISABLED
    etag = {"etag": response.etag} if with_etag else {}
    response = client.enable_secret_version(request={"name": name, **etag})
    assert response.state == secretmanager.SecretVersion.State.ENABLED


@pytest.mark.parametrize("with_etag", [False, True], ids=["plain", "with-etag"])
def test_destroy_secret_version(
    client: secretmanager.SecretManagerServiceClient,
    where: Where,
    version: Version,
    with_etag: bool,
) -> None:
    # destroy_secret_version.py, destroy_secret_version_with_etag.py and the
    # regional_samples/ twins
    name = where.version(version.secret_id, version.id)
    etag = {"etag": version.etag} if with_etag else {}
    response = client.destroy_secret_version(request={"name": name, **etag})
    assert response.destroy_time
    assert response.state == secretmanager.SecretVersion.State.DESTROYED


# -- update ------------------------------------------------------------------------------


@pytest.mark.parametrize("with_etag", [False, True], ids=["plain", "with-etag"])
def test_update_secret(
    client: secretmanager.SecretManagerServiceClient,
    where: Where,
    secret: Secret,
    with_etag: bool,
) -> None:
    # update_secret.py, update_secret_with_etag.py,
    # regional_samples/update_regional_secret.py, update_regional_secret_with_etag.py
    body: dict[str, Any] = {"name": secret.name, "labels": {"secretmanager": "rocks"}}
    if with_etag:
        body["etag"] = secret.etag
    response = client.update_secret(request={"secret": body, "update_mask": {"paths": ["labels"]}})
    assert response.labels["secretmanager"] == "rocks"
    assert response.etag != secret.etag


def test_update_secret_with_stale_etag_is_refused(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # update_secret_with_etag.py run twice with the etag the first run made stale
    request = {
        "secret": {"name": secret.name, "labels": {"secretmanager": "rocks"}, "etag": secret.etag},
        "update_mask": {"paths": ["labels"]},
    }
    client.update_secret(request=request)
    # docs/etags: "it fails with a FAILED_PRECONDITION error and an HTTP status code 400"
    with pytest.raises(exceptions.BadRequest) as refused:
        client.update_secret(request=request)
    assert refused.value.response.json()["error"]["status"] == "FAILED_PRECONDITION"


def test_update_secret_with_alias(
    client: secretmanager.SecretManagerServiceClient, where: Where, version: Version
) -> None:
    # update_secret_with_alias.py, regional_samples/update_regional_secret_with_alias.py
    name = where.secret(version.secret_id)
    response = client.update_secret(
        request={
            "secret": {"name": name, "version_aliases": {"test": 1}},
            "update_mask": {"paths": ["version_aliases"]},
        }
    )
    assert response.version_aliases["test"] == 1
    # an alias names the version wherever a version id goes
    aliased = client.access_secret_version(request={"name": f"{name}/versions/test"})
    assert aliased.name == version.name


@pytest.mark.parametrize("what", ["labels", "annotations"])
def test_create_update_secret_label_or_annotation(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret, what: str
) -> None:
    # create_update_secret_label.py, edit_secret_labels.py, edit_secret_annotation(s).py,
    # regional_samples/create_update_regional_secret_label.py, edit_regional_secret_label.py,
    # edit_regional_secret_annotation(s).py: get, merge, update with the one-field mask
    key = {"labels": "googlecloud", "annotations": "annotationkey"}[what]
    name = where.secret(secret.id)
    current = getattr(client.get_secret(request={"name": name}), what)
    current.update({key: "vibes"})
    response = client.update_secret(
        request={"secret": {"name": name, what: current}, "update_mask": {"paths": [what]}}
    )
    assert getattr(response, what)[key] == "vibes"


@pytest.mark.parametrize("what", ["labels", "annotations"])
def test_delete_secret_label_or_annotation(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret, what: str
) -> None:
    # delete_secret_label.py, delete_secret_annotation.py,
    # regional_samples/delete_regional_secret_label.py, delete_regional_secret_annotation.py
    key = {"labels": "googlecloud", "annotations": "annotationkey"}[what]
    name = where.secret(secret.id)
    current = getattr(client.get_secret(request={"name": name}), what)
    current.pop(key, None)
    response = client.update_secret(
        request={"secret": {"name": name, what: current}, "update_mask": {"paths": [what]}}
    )
    assert key not in getattr(response, what)


def test_update_secret_expiration(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # update_secret_expiration.py, regional_samples/update_regional_secret_expiration.py
    new_expire = datetime.now() + timedelta(hours=2)
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromDatetime(new_expire)
    response = client.update_secret(
        request={
            "secret": {"name": where.secret(secret.id), "expire_time": timestamp},
            "update_mask": field_mask_pb2.FieldMask(paths=["expire_time"]),
        }
    )
    assert response.expire_time.timestamp() == pytest.approx(timestamp.ToSeconds(), abs=1)


def test_delete_secret_expiration(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # delete_secret_expiration.py, regional_samples/delete_regional_secret_expiration.py
    assert client.get_secret(request={"name": secret.name}).expire_time  # from ttl 300s
    response = client.update_secret(
        request={
            "secret": {"name": where.secret(secret.id)},
            "update_mask": field_mask_pb2.FieldMask(paths=["expire_time"]),
        }
    )
    assert not response.expire_time


@pytest.fixture
def rotating(client: secretmanager.SecretManagerServiceClient, where: Where) -> Secret:
    """A secret made by create_secret_with_rotation.py (24 h)."""
    topics = [{"name": f"projects/{where.project}/topics/rotation"}]
    return _create(client, where, topics=topics, rotation=_rotation(24))


def test_update_secret_rotation(
    client: secretmanager.SecretManagerServiceClient, where: Where, rotating: Secret
) -> None:
    # update_secret_rotation.py, regional_samples/update_regional_secret_rotation.py
    rotation_period = duration_pb2.Duration()
    rotation_period.seconds = 48 * 3600
    result = client.update_secret(
        request={
            "secret": {
                "name": where.secret(rotating.id),
                "rotation": {"rotation_period": rotation_period},
            },
            "update_mask": field_mask_pb2.FieldMask(paths=["rotation.rotation_period"]),
        }
    )
    assert result.rotation.rotation_period.total_seconds() / 3600 == 48
    assert result.rotation.next_rotation_time  # the mask names only the period


def test_delete_secret_rotation(
    client: secretmanager.SecretManagerServiceClient, where: Where, rotating: Secret
) -> None:
    # delete_secret_rotation.py, regional_samples/delete_regional_secret_rotation.py
    secret = client.update_secret(
        request={
            "secret": {"name": where.secret(rotating.id)},
            "update_mask": field_mask_pb2.FieldMask(paths=["rotation"]),
        }
    )
    assert not secret.rotation.rotation_period
    assert not secret.rotation.next_rotation_time


@pytest.fixture
def delayed(client: secretmanager.SecretManagerServiceClient, where: Where) -> Secret:
    """The samples' test fixture ``secret_with_delayed_destroy`` (7 days)."""
    return _create(client, where, version_destroy_ttl=duration_pb2.Duration(seconds=604800))


def test_update_secret_with_delayed_destroy(
    client: secretmanager.SecretManagerServiceClient, where: Where, delayed: Secret
) -> None:
    # update_secret_with_delayed_destroy.py,
    # regional_samples/update_regional_secret_with_delayed_destroy.py
    response = client.update_secret(
        request={
            "secret": {
                "name": where.secret(delayed.id),
                "version_destroy_ttl": timedelta(seconds=118400),
            },
            "update_mask": {"paths": ["version_destroy_ttl"]},
        }
    )
    assert response.version_destroy_ttl == timedelta(seconds=118400)


def test_disable_secret_with_delayed_destroy(
    client: secretmanager.SecretManagerServiceClient, where: Where, delayed: Secret
) -> None:
    # disable_secret_with_delayed_destroy.py,
    # regional_samples/disable_regional_secret_delayed_destroy.py
    response = client.update_secret(
        request={
            "secret": {"name": where.secret(delayed.id)},
            "update_mask": {"paths": ["version_destroy_ttl"]},
        }
    )
    assert response.version_destroy_ttl == timedelta(0)


# -- IAM ---------------------------------------------------------------------------------


def _grant(client: secretmanager.SecretManagerServiceClient, name: str) -> Any:
    policy = client.get_iam_policy(request={"resource": name})
    policy.bindings.add(role=ACCESSOR, members=[MEMBER])
    return client.set_iam_policy(request={"resource": name, "policy": policy})


def test_iam_grant_access(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # iam_grant_access.py, regional_samples/iam_grant_access_with_regional_secret.py
    policy = _grant(client, where.secret(secret.id))
    assert any(MEMBER in b.members for b in policy.bindings)
    assert policy.etag


def test_iam_revoke_access(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # iam_revoke_access.py, regional_samples/iam_revoke_access_with_regional_secret.py
    # (after iam_grant_access.py, so there is something to revoke)
    name = where.secret(secret.id)
    _grant(client, name)
    policy = client.get_iam_policy(request={"resource": name})
    for b in list(policy.bindings):
        if b.role == ACCESSOR and MEMBER in b.members:
            b.members.remove(MEMBER)
    new_policy = client.set_iam_policy(request={"resource": name, "policy": policy})
    assert not any(MEMBER in b.members for b in new_policy.bindings)


# -- delete ------------------------------------------------------------------------------


@pytest.mark.parametrize("with_etag", [False, True], ids=["plain", "with-etag"])
def test_delete_secret(
    client: secretmanager.SecretManagerServiceClient,
    where: Where,
    secret: Secret,
    with_etag: bool,
) -> None:
    # delete_secret.py, delete_secret_with_etag.py,
    # regional_samples/delete_regional_secret.py, delete_regional_secret_with_etag.py
    etag = {"etag": secret.etag} if with_etag else {}
    client.delete_secret(request={"name": where.secret(secret.id), **etag})
    with pytest.raises(exceptions.NotFound):
        client.access_secret_version(request={"name": where.version(secret.id, "latest")})


def test_secret_with_ttl_is_deleted_when_it_expires(
    client: secretmanager.SecretManagerServiceClient, where: Where
) -> None:
    # create_secret.py with a ttl: the secret is deleted once expire_time passes
    created = _create(client, where, ttl="1s")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            client.get_secret(request={"name": created.name})
        except exceptions.NotFound:
            return
        time.sleep(0.2)
    pytest.fail(f"{created.name} still exists 30 s after its 1 s ttl")


# -- the samples run where Google refuses them -------------------------------------------


def test_quickstart_twice_conflicts(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # quickstart.py run a second time with the same secret id
    with pytest.raises(exceptions.Conflict) as refused:
        client.create_secret(
            request={"parent": where.parent, "secret_id": secret.id, "secret": where.body()}
        )
    assert refused.value.response.json()["error"]["status"] == "ALREADY_EXISTS"


@pytest.mark.parametrize(
    ("first", "then"),
    [
        # access_secret_version.py after disable_secret_version.py
        ("disable_secret_version", "access_secret_version"),
        # enable_secret_version.py after destroy_secret_version.py: destroyed is final
        ("destroy_secret_version", "enable_secret_version"),
    ],
    ids=["access-disabled", "enable-destroyed"],
)
def test_version_in_the_wrong_state_is_refused(
    client: secretmanager.SecretManagerServiceClient,
    where: Where,
    version: Version,
    first: str,
    then: str,
) -> None:
    getattr(client, first)(request={"name": version.name})
    with pytest.raises(exceptions.BadRequest) as refused:
        getattr(client, then)(request={"name": version.name})
    assert refused.value.response.json()["error"]["status"] == "FAILED_PRECONDITION"


@pytest.mark.parametrize("verb", ["delete_secret", "disable_secret_version"])
def test_stale_etag_is_refused(
    client: secretmanager.SecretManagerServiceClient,
    where: Where,
    version: Version,
    verb: str,
) -> None:
    # delete_secret_with_etag.py, disable_secret_version_with_etag.py with an etag that a
    # change made since has outdated (docs/etags: FAILED_PRECONDITION, HTTP 400)
    if verb == "delete_secret":
        name = where.secret(version.secret_id)
        stale = client.get_secret(request={"name": name}).etag
        client.update_secret(
            request={
                "secret": {"name": name, "labels": {"a": "b"}},
                "update_mask": {"paths": ["labels"]},
            }
        )
    else:
        name, stale = version.name, version.etag
        client.enable_secret_version(request={"name": name})  # a no-op still changes the etag
    with pytest.raises(exceptions.BadRequest) as refused:
        getattr(client, verb)(request={"name": name, "etag": stale})
    assert refused.value.response.json()["error"]["status"] == "FAILED_PRECONDITION"


def test_get_deleted_secret_is_not_found(
    client: secretmanager.SecretManagerServiceClient, where: Where, secret: Secret
) -> None:
    # get_secret.py after delete_secret.py, and delete_secret.py run a second time
    client.delete_secret(request={"name": secret.name})
    with pytest.raises(exceptions.NotFound):
        client.get_secret(request={"name": secret.name})
    with pytest.raises(exceptions.NotFound):
        client.delete_secret(request={"name": secret.name})
