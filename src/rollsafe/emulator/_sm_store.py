"""Secret Manager's storage: secrets and versions in SQLite, payloads encrypted at rest.

Resources are proto-plus messages of ``google.cloud.secretmanager_v1`` on the way in and out.
A secret's metadata is kept as its own JSON (so every field the client sets survives); a
version is a row whose payload is AES-GCM ciphertext bound to the version's resource name,
and ``NULL`` once destroyed. No checksum of a payload is stored: even 32 bits of one would
help guess a short secret, and the CRC32C is cheap to compute at access time.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from google.cloud import secretmanager_v1 as sm
from google.protobuf import field_mask_pb2  # type: ignore[import-untyped]

from rollsafe.emulator._google import GoogleError, already_exists, invalid_argument, not_found
from rollsafe.emulator.crypto import PayloadCipher
from rollsafe.emulator.db import EmulatorDB

__all__ = ["MAX_PAYLOAD", "SecretsStore", "secret_not_found", "version_precondition"]

State = sm.SecretVersion.State

#: Secret Manager's payload limit (64 KiB)
MAX_PAYLOAD = 65536

#: fields of a Secret that ``UpdateSecret`` may change (the rest are output-only or immutable)
UPDATABLE = frozenset(
    {
        "labels",
        "annotations",
        "topics",
        "expire_time",
        "ttl",
        "rotation",
        "version_aliases",
        "version_destroy_ttl",
        "customer_managed_encryption",
    }
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sm_secrets (
    name TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    secret_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sm_secrets_by_parent ON sm_secrets (parent, secret_id);
CREATE TABLE IF NOT EXISTS sm_versions (
    secret TEXT NOT NULL REFERENCES sm_secrets (name) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    state INTEGER NOT NULL,
    create_time TEXT NOT NULL,
    update_time TEXT NOT NULL,
    destroy_time TEXT,
    client_checksum INTEGER NOT NULL DEFAULT 0,
    payload BLOB,
    PRIMARY KEY (secret, version)
);
"""


def secret_not_found(secret_name: str) -> GoogleError:
    """Google's wording, the same whether the secret is missing or has no versions."""
    return not_found(f"Secret [{secret_name}] not found or has no versions.")


def version_precondition(version_name: str, state: State) -> GoogleError:
    """FAILED_PRECONDITION for a version in the wrong state.

    HTTP 400, not 412: Google maps FAILED_PRECONDITION to 400 (google.rpc.Code), and Secret
    Manager answers ``{"code": 400, "status": "FAILED_PRECONDITION"}``, so the Python REST
    client raises ``BadRequest`` against Google; the emulator must make it raise the same.
    """
    return GoogleError(
        400, "FAILED_PRECONDITION", f"Secret Version [{version_name}] is in {state.name} state."
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _etag(moment: datetime) -> str:
    # Google's etags are quoted opaque strings; a microsecond clock is unique enough here
    return f'"{int(moment.timestamp() * 1_000_000):x}"'


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class SecretsStore:
    """Secrets and their versions for every project of one emulator."""

    def __init__(self, db: EmulatorDB, cipher: PayloadCipher) -> None:
        self.db = db
        self.cipher = cipher
        db.ensure_schema(_SCHEMA)

    # -- secrets --
    def create_secret(self, parent: str, secret_id: str, secret: sm.Secret) -> sm.Secret:
        name = f"{parent}/secrets/{secret_id}"
        moment = _now()
        stored = secret
        stored.name = name
        stored.create_time = moment
        stored.etag = _etag(moment)
        body = sm.Secret.to_json(stored, indent=None)
        try:
            self.db.execute(
                "INSERT INTO sm_secrets (name, parent, secret_id, body) VALUES (?, ?, ?, ?)",
                (name, parent, secret_id, body),
            )
        except sqlite3.IntegrityError:
            raise already_exists(f"Secret [{name}] already exists.") from None
        return stored

    def get_secret(self, name: str) -> sm.Secret:
        row = self.db.query_one("SELECT body FROM sm_secrets WHERE name = ?", (name,))
        if row is None:
            raise secret_not_found(name)
        secret: sm.Secret = sm.Secret.from_json(row["body"])
        return secret

    def list_secrets(self, parent: str) -> list[sm.Secret]:
        """Secrets of ``parent`` ordered by id (the order pages are cut in)."""
        rows = self.db.query(
            "SELECT body FROM sm_secrets WHERE parent = ? ORDER BY secret_id", (parent,)
        )
        return [sm.Secret.from_json(row["body"]) for row in rows]

    def update_secret(self, name: str, patch: sm.Secret, paths: list[str]) -> sm.Secret:
        if not paths:
            raise invalid_argument("update_mask is required and must list the fields to update.")
        bad = sorted(set(paths) - UPDATABLE)
        if bad:
            raise invalid_argument(f"update_mask contains fields that cannot be updated: {bad}")
        stored = self.get_secret(name)
        # FieldMask.MergeMessage copies exactly the listed fields, clearing the ones the
        # patch leaves unset, which is what UpdateSecret does
        mask = field_mask_pb2.FieldMask(paths=paths)
        mask.MergeMessage(sm.Secret.pb(patch), sm.Secret.pb(stored), True, True)
        stored.etag = _etag(_now())
        self.db.execute(
            "UPDATE sm_secrets SET body = ? WHERE name = ?",
            (sm.Secret.to_json(stored, indent=None), name),
        )
        return stored

    def delete_secret(self, name: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM sm_versions WHERE secret = ?", (name,))
            deleted = conn.execute("DELETE FROM sm_secrets WHERE name = ?", (name,)).rowcount
        if not deleted:
            raise secret_not_found(name)

    # -- versions --
    def add_version(self, secret_name: str, data: bytes, *, checksum: bool) -> sm.SecretVersion:
        if len(data) > MAX_PAYLOAD:
            raise invalid_argument(
                f"Secret payload of {len(data)} bytes exceeds the limit of {MAX_PAYLOAD} bytes."
            )
        secret = self.get_secret(secret_name)
        moment = _now().isoformat()
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM sm_versions WHERE secret = ?",
                (secret_name,),
            ).fetchone()
            number = int(row[0])
            name = f"{secret_name}/versions/{number}"
            blob = self.cipher.encrypt(data, context=name.encode())
            conn.execute(
                "INSERT INTO sm_versions (secret, version, state, create_time, update_time,"
                " client_checksum, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (secret_name, number, int(State.ENABLED), moment, moment, int(checksum), blob),
            )
        return self.get_version(name, secret=secret)

    def list_versions(self, secret_name: str) -> list[sm.SecretVersion]:
        """Versions of a secret, newest first (as Secret Manager lists them)."""
        secret = self.get_secret(secret_name)
        rows = self.db.query(
            "SELECT * FROM sm_versions WHERE secret = ? ORDER BY version DESC", (secret_name,)
        )
        return [self._render(row, secret) for row in rows]

    def get_version(self, name: str, *, secret: sm.Secret | None = None) -> sm.SecretVersion:
        """A version by name; ``latest`` and aliases resolve to the version they point at."""
        row, secret = self._row(name, secret)
        return self._render(row, secret)

    def access(self, name: str) -> tuple[sm.SecretVersion, bytes]:
        """The version and its payload; only an ENABLED version gives its payload."""
        row, secret = self._row(name)
        version = self._render(row, secret)
        if version.state != State.ENABLED or row["payload"] is None:
            raise version_precondition(version.name, State(version.state))
        data = self.cipher.decrypt(row["payload"], context=version.name.encode())
        return version, data

    def set_state(self, name: str, state: int) -> sm.SecretVersion:
        """Enable, disable or destroy. DESTROYED is final; destroying wipes the payload."""
        target = State(state)
        row, secret = self._row(name)
        current = State(row["state"])
        resolved = f"{row['secret']}/versions/{row['version']}"
        if current == State.DESTROYED:
            raise version_precondition(resolved, current)
        moment = _now().isoformat()
        if target == State.DESTROYED:
            self.db.execute(
                "UPDATE sm_versions SET state = ?, update_time = ?, destroy_time = ?,"
                " payload = NULL WHERE secret = ? AND version = ?",
                (int(target), moment, moment, row["secret"], row["version"]),
            )
        elif target != current:
            self.db.execute(
                "UPDATE sm_versions SET state = ?, update_time = ?"
                " WHERE secret = ? AND version = ?",
                (int(target), moment, row["secret"], row["version"]),
            )
        return self.get_version(resolved, secret=secret)

    def _row(self, name: str, secret: sm.Secret | None = None) -> tuple[sqlite3.Row, sm.Secret]:
        secret_name, _, version_id = name.rpartition("/versions/")
        secret = secret or self.get_secret(secret_name)
        if version_id == "latest":
            row = self.db.query_one(
                "SELECT * FROM sm_versions WHERE secret = ? ORDER BY version DESC LIMIT 1",
                (secret_name,),
            )
            if row is None:
                raise secret_not_found(secret_name)
            return row, secret
        if version_id.isdigit():
            number = int(version_id)
        elif version_id in secret.version_aliases:
            number = int(secret.version_aliases[version_id])
        else:
            raise not_found(f"Secret Version [{name}] not found.")
        row = self.db.query_one(
            "SELECT * FROM sm_versions WHERE secret = ? AND version = ?", (secret_name, number)
        )
        if row is None:
            raise not_found(f"Secret Version [{secret_name}/versions/{number}] not found.")
        return row, secret

    @staticmethod
    def _render(row: sqlite3.Row, secret: sm.Secret) -> sm.SecretVersion:
        version = sm.SecretVersion(
            name=f"{row['secret']}/versions/{row['version']}",
            create_time=_time(row["create_time"]),
            state=State(row["state"]),
            etag=_etag(datetime.fromisoformat(row["update_time"])),
            client_specified_payload_checksum=bool(row["client_checksum"]),
        )
        destroyed = _time(row["destroy_time"])
        if destroyed is not None:
            version.destroy_time = destroyed
        replication = _replication_status(secret)
        if replication is not None:
            version.replication_status = replication
        return version


def _replication_status(secret: sm.Secret) -> sm.ReplicationStatus | None:
    """What a version reports of its secret's replication (nothing for regional secrets)."""
    status = sm.ReplicationStatus
    if "automatic" in secret.replication:
        return status(automatic=status.AutomaticStatus())
    if "user_managed" in secret.replication:
        replicas = [
            status.UserManagedStatus.ReplicaStatus(location=replica.location)
            for replica in secret.replication.user_managed.replicas
        ]
        return status(user_managed=status.UserManagedStatus(replicas=replicas))
    return None
