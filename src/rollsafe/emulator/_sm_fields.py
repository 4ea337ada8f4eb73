"""Secret Manager's field rules and wording, shared by the emulator's storage and routes.

Error constructors with Google's wording, the fields ``UpdateSecret`` may change, expiry
(``ttl`` -> ``expire_time``), rotation checks, etags and the time formats stored in SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.cloud import secretmanager_v1 as sm

from rollsafe.emulator._google import GoogleError, invalid_argument, not_found

__all__ = [
    "MAX_PAYLOAD",
    "UPDATABLE",
    "check_rotation",
    "etag",
    "etag_mismatch",
    "expiry_text",
    "now",
    "parse_time",
    "replication_status",
    "secret_not_found",
    "settle_expiry",
    "sortable",
    "version_precondition",
]

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


def etag_mismatch(resource: str) -> GoogleError:
    """An etag that does not match the resource's: FAILED_PRECONDITION, HTTP 400."""
    return GoogleError(
        400,
        "FAILED_PRECONDITION",
        f"The etag provided in the request does not match the current etag of [{resource}].",
    )


def now() -> datetime:
    return datetime.now(UTC)


def etag(moment: datetime) -> str:
    """A version or secret etag from its last change time."""
    # Google's etags are quoted opaque strings; a microsecond clock is unique enough here
    return f'"{int(moment.timestamp() * 1_000_000):x}"'


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def settle_expiry(secret: sm.Secret, moment: datetime) -> None:
    """Turn ``ttl`` into ``expire_time`` (ttl is input only) and refuse a time passed."""
    pb = sm.Secret.pb(secret)
    if pb.HasField("ttl"):
        seconds = pb.ttl.ToTimedelta()
        pb.ClearField("ttl")
        secret.expire_time = moment + seconds
    if pb.HasField("expire_time") and pb.expire_time.ToDatetime(tzinfo=UTC) <= moment:
        raise invalid_argument("The expire_time must be in the future.")


#: Rotation.next_rotation_time: "Cannot be set to less than 300s (5 min) in the future"
NEXT_ROTATION_MIN_SECONDS = 300


def check_rotation(secret: sm.Secret, moment: datetime | None = None) -> None:
    """Secret Manager's rotation rules: a period needs a next time, at least an hour apart,
    and rotation notifies through Pub/Sub, so it needs a topic. With ``moment`` (the rotation
    is being set now), the next rotation must be at least 5 minutes ahead."""
    pb = sm.Secret.pb(secret)
    if not pb.HasField("rotation"):
        return
    rotation = pb.rotation
    if moment is not None and rotation.HasField("next_rotation_time"):
        ahead = rotation.next_rotation_time.ToDatetime(tzinfo=UTC) - moment
        if ahead.total_seconds() < NEXT_ROTATION_MIN_SECONDS:
            raise invalid_argument(
                "Next rotation time must be at least 300 seconds (5 minutes) in the future."
            )
    if rotation.HasField("rotation_period") and not rotation.HasField("next_rotation_time"):
        raise invalid_argument("Next rotation time must be set while the rotation period is set.")
    if rotation.HasField("rotation_period") and rotation.rotation_period.seconds < 3600:
        raise invalid_argument("Rotation period must be at least 3600 seconds.")
    if (rotation.HasField("next_rotation_time") or rotation.HasField("rotation_period")) and not (
        pb.topics
    ):
        raise invalid_argument("A secret with rotation must have at least one topic.")


def expiry_text(secret: sm.Secret) -> str | None:
    pb = sm.Secret.pb(secret)
    if not pb.HasField("expire_time"):
        return None
    return sortable(pb.expire_time.ToDatetime(tzinfo=UTC))


def sortable(moment: datetime) -> str:
    """A fixed-width UTC time, so SQLite compares expiry times as text correctly."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def replication_status(secret: sm.Secret) -> sm.ReplicationStatus | None:
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
