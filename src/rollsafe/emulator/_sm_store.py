"""Secret Manager's storage: secrets and versions in SQLite, payloads encrypted at rest.

Resources are proto-plus messages of ``google.cloud.secretmanager_v1`` on the way in and out.
A secret's metadata is kept as its own JSON (so every field the client sets survives); a
version is a row whose payload is AES-GCM ciphertext bound to the version's resource name,
and ``NULL`` once destroyed. No checksum of a payload is stored: even 32 bits of one would
help guess a short secret, and the CRC32C is cheap to compute at access time.

Expiry: ``ttl`` becomes ``expire_time`` (now + ttl) and is not kept, as Secret Manager does;
the ``expire_time`` column is indexed, and every read or write first deletes the secrets
whose time has come (with their versions and IAM policy), so an expired secret is 404
whichever call meets it first. ``sweep_expired`` does the same on a timer.

Etags: a secret's changes with every ``UpdateSecret``, a version's with every state change,
even one that changes nothing (Secret Manager's documented rule); a mismatch is
FAILED_PRECONDITION with HTTP 400, as the etags page of the Secret Manager docs says.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from google.cloud import secretmanager_v1 as sm
from google.protobuf import field_mask_pb2  # type: ignore[import-untyped]

from rollsafe.emulator._google import already_exists, invalid_argument, not_found
from rollsafe.emulator._sm_fields import (
    MAX_PAYLOAD,
    UPDATABLE,
    etag_mismatch,
    secret_not_found,
    version_precondition,
)
from rollsafe.emulator._sm_fields import check_rotation as _check_rotation
from rollsafe.emulator._sm_fields import etag as _etag
from rollsafe.emulator._sm_fields import expiry_text as _expiry_text
from rollsafe.emulator._sm_fields import now as _now
from rollsafe.emulator._sm_fields import parse_time as _time
from rollsafe.emulator._sm_fields import replication_status as _replication_status
from rollsafe.emulator._sm_fields import settle_expiry as _settle_expiry
from rollsafe.emulator._sm_fields import sortable as _sortable
from rollsafe.emulator.crypto import PayloadCipher
from rollsafe.emulator.db import EmulatorDB

__all__ = [
    "MAX_PAYLOAD",
    "UPDATABLE",
    "SecretsStore",
    "etag_mismatch",
    "secret_not_found",
    "version_precondition",
]

State = sm.SecretVersion.State

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
CREATE TABLE IF NOT EXISTS sm_policies (
    secret TEXT PRIMARY KEY REFERENCES sm_secrets (name) ON DELETE CASCADE,
    policy BLOB NOT NULL
);
"""

# added after the first release: old state directories gain the column on open
_EXPIRY_COLUMN = "ALTER TABLE sm_secrets ADD COLUMN expire_time TEXT"
_EXPIRY_INDEX = "CREATE INDEX IF NOT EXISTS sm_secrets_by_expiry ON sm_secrets (expire_time)"
_SCHEDULE_COLUMN = "ALTER TABLE sm_versions ADD COLUMN scheduled_destroy_time TEXT"
_SCHEDULE_INDEX = (
    "CREATE INDEX IF NOT EXISTS sm_versions_by_schedule ON sm_versions (scheduled_destroy_time)"
)


class SecretsStore:
    """Secrets and their versions for every project of one emulator."""

    def __init__(self, db: EmulatorDB, cipher: PayloadCipher) -> None:
        self.db = db
        self.cipher = cipher
        db.ensure_schema(_SCHEMA)
        columns = {row["name"] for row in db.query("PRAGMA table_info(sm_secrets)")}
        if "expire_time" not in columns:
            db.execute(_EXPIRY_COLUMN)
        db.execute(_EXPIRY_INDEX)
        columns = {row["name"] for row in db.query("PRAGMA table_info(sm_versions)")}
        if "scheduled_destroy_time" not in columns:
            db.execute(_SCHEDULE_COLUMN)
        db.execute(_SCHEDULE_INDEX)

    # -- expiry --
    def sweep_expired(self) -> int:
        """Delete every secret whose ``expire_time`` has passed (returns how many), and
        destroy the versions whose delayed destruction is due."""
        now = _sortable(_now())
        self._destroy_due(now)
        # the common case (nothing due) is one indexed read, without the write lock
        due = self.db.query_one(
            "SELECT 1 FROM sm_secrets WHERE expire_time IS NOT NULL AND expire_time <= ? LIMIT 1",
            (now,),
        )
        if due is None:
            return 0
        with self.db.transaction() as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sm_secrets WHERE expire_time IS NOT NULL"
                    " AND expire_time <= ?",
                    (now,),
                )
            ]
            for name in names:
                conn.execute("DELETE FROM sm_versions WHERE secret = ?", (name,))
                conn.execute("DELETE FROM sm_policies WHERE secret = ?", (name,))
                conn.execute("DELETE FROM sm_secrets WHERE name = ?", (name,))
        return len(names)

    # -- secrets --
    def create_secret(self, parent: str, secret_id: str, secret: sm.Secret) -> sm.Secret:
        self.sweep_expired()
        name = f"{parent}/secrets/{secret_id}"
        moment = _now()
        stored = secret
        stored.name = name
        stored.create_time = moment
        stored.etag = _etag(moment)
        _settle_expiry(stored, moment)
        _check_rotation(stored, moment)
        body = sm.Secret.to_json(stored, indent=None)
        try:
            self.db.execute(
                "INSERT INTO sm_secrets (name, parent, secret_id, body, expire_time)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, parent, secret_id, body, _expiry_text(stored)),
            )
        except sqlite3.IntegrityError:
            raise already_exists(f"Secret [{name}] already exists.") from None
        return stored

    def _destroy_due(self, now: str) -> None:
        due = self.db.query_one(
            "SELECT 1 FROM sm_versions WHERE scheduled_destroy_time IS NOT NULL"
            " AND scheduled_destroy_time <= ? LIMIT 1",
            (now,),
        )
        if due is not None:
            self.db.execute(
                "UPDATE sm_versions SET state = ?, payload = NULL,"
                " destroy_time = scheduled_destroy_time || '+00:00',"
                " update_time = scheduled_destroy_time || '+00:00', scheduled_destroy_time = NULL"
                " WHERE scheduled_destroy_time IS NOT NULL AND scheduled_destroy_time <= ?",
                (int(State.DESTROYED), now),
            )

    def get_secret(self, name: str) -> sm.Secret:
        self.sweep_expired()
        row = self.db.query_one("SELECT body FROM sm_secrets WHERE name = ?", (name,))
        if row is None:
            raise secret_not_found(name)
        secret: sm.Secret = sm.Secret.from_json(row["body"])
        return secret

    def list_secrets(self, parent: str) -> list[sm.Secret]:
        """Secrets of ``parent`` ordered by id (the order pages are cut in)."""
        self.sweep_expired()
        rows = self.db.query(
            "SELECT body FROM sm_secrets WHERE parent = ? ORDER BY secret_id", (parent,)
        )
        return [sm.Secret.from_json(row["body"]) for row in rows]

    def update_secret(self, name: str, patch: sm.Secret, paths: list[str]) -> sm.Secret:
        """Apply the fields of ``patch`` that ``paths`` (the update mask) names.

        ``patch.etag``, when set, must match the stored etag. ``ttl`` in the mask sets
        ``expire_time`` to now + ttl; ``expire_time`` (or ``ttl``) in the mask without a
        value removes the expiry, as the ``delete_secret_expiration`` sample relies on.
        """
        if not paths:
            raise invalid_argument("update_mask is required and must list the fields to update.")
        fields = set(sm.Secret.meta.fields)
        unknown = sorted({p for p in paths if p.split(".", 1)[0] not in fields})
        if unknown:
            raise invalid_argument(
                f"update_mask contains paths that are not fields of Secret: {unknown}"
            )
        bad = sorted({p for p in paths if p.split(".", 1)[0] not in UPDATABLE})
        if bad:
            raise invalid_argument(f"update_mask contains fields that cannot be updated: {bad}")
        stored = self.get_secret(name)
        if patch.etag and patch.etag != stored.etag:
            raise etag_mismatch(name)
        moment = _now()
        expiry = {"ttl", "expire_time"} & {p.split(".", 1)[0] for p in paths}
        rest = [p for p in paths if p.split(".", 1)[0] not in expiry]
        if rest:
            # FieldMask.MergeMessage copies exactly the listed fields, clearing the ones the
            # patch leaves unset, which is what UpdateSecret does
            mask = field_mask_pb2.FieldMask(paths=rest)
            mask.MergeMessage(sm.Secret.pb(patch), sm.Secret.pb(stored), True, True)
        if expiry:
            # expire_time and ttl are one oneof: either path replaces (or clears) the expiry
            if "ttl" in expiry and "ttl" in patch:
                stored.ttl = patch.ttl
            elif "expire_time" in expiry and "expire_time" in patch:
                stored.expire_time = patch.expire_time
            else:
                sm.Secret.pb(stored).ClearField("expire_time")
                sm.Secret.pb(stored).ClearField("ttl")
            _settle_expiry(stored, moment)
        _check_rotation(stored, moment if any(p.startswith("rotation") for p in paths) else None)
        stored.etag = _etag(moment)
        self.db.execute(
            "UPDATE sm_secrets SET body = ?, expire_time = ? WHERE name = ?",
            (sm.Secret.to_json(stored, indent=None), _expiry_text(stored), name),
        )
        return stored

    def delete_secret(self, name: str, *, etag: str = "") -> None:
        """Delete a secret, its versions and its IAM policy (``etag`` checked when given)."""
        if etag and self.get_secret(name).etag != etag:
            raise etag_mismatch(name)
        self.sweep_expired()
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM sm_policies WHERE secret = ?", (name,))
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

    def set_state(self, name: str, state: int, *, etag: str = "") -> sm.SecretVersion:
        """Enable, disable or destroy. DESTROYED is final; destroying wipes the payload.

        Every call changes the version's etag, even one that leaves the state as it was.
        """
        target = State(state)
        row, secret = self._row(name)
        current = State(row["state"])
        resolved = f"{row['secret']}/versions/{row['version']}"
        if etag and etag != _etag(datetime.fromisoformat(row["update_time"])):
            raise etag_mismatch(resolved)
        if current == State.DESTROYED:
            raise version_precondition(resolved, current)
        now = _now()
        moment = now.isoformat()
        delay = sm.Secret.pb(secret).version_destroy_ttl.ToTimedelta()
        if target == State.DESTROYED and delay.total_seconds() > 0:
            # delayed destruction: disabled now, destroyed when the delay is over (unless
            # an enable or disable in between cancels it)
            self.db.execute(
                "UPDATE sm_versions SET state = ?, update_time = ?,"
                " scheduled_destroy_time = COALESCE(scheduled_destroy_time, ?)"
                " WHERE secret = ? AND version = ?",
                (
                    int(State.DISABLED),
                    moment,
                    _sortable(now + delay),
                    row["secret"],
                    row["version"],
                ),
            )
        elif target == State.DESTROYED:
            self.db.execute(
                "UPDATE sm_versions SET state = ?, update_time = ?, destroy_time = ?,"
                " payload = NULL, scheduled_destroy_time = NULL"
                " WHERE secret = ? AND version = ?",
                (int(target), moment, moment, row["secret"], row["version"]),
            )
        else:
            self.db.execute(
                "UPDATE sm_versions SET state = ?, update_time = ?, scheduled_destroy_time = NULL"
                " WHERE secret = ? AND version = ?",
                (int(target), moment, row["secret"], row["version"]),
            )
        return self.get_version(resolved, secret=secret)

    # -- IAM policies (serialized google.iam.v1.Policy) --
    def get_policy(self, secret_name: str) -> bytes | None:
        """The stored policy of a secret (404 if the secret is missing; None if never set)."""
        self.get_secret(secret_name)
        row = self.db.query_one("SELECT policy FROM sm_policies WHERE secret = ?", (secret_name,))
        return None if row is None else bytes(row["policy"])

    def put_policy(self, secret_name: str, policy: bytes) -> None:
        self.get_secret(secret_name)
        self.db.execute(
            "INSERT INTO sm_policies (secret, policy) VALUES (?, ?)"
            " ON CONFLICT (secret) DO UPDATE SET policy = excluded.policy",
            (secret_name, policy),
        )

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
        scheduled = row["scheduled_destroy_time"]
        if scheduled is not None:
            version.scheduled_destroy_time = datetime.fromisoformat(scheduled).replace(tzinfo=UTC)
        replication = _replication_status(secret)
        if replication is not None:
            version.replication_status = replication
        return version
