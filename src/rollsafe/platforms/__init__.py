"""Deploy targets behind one small interface: Cloud Run (and the emulator), in-memory."""

from rollsafe.platforms.base import (
    ALL_USERS,
    INVOKER_ROLE,
    Platform,
    PlatformError,
    PlatformUnavailableError,
    RevisionFailedError,
    RevisionInfo,
    RevisionSpec,
    SecretRef,
    ServiceInfo,
    StartupProbe,
    TrafficTarget,
)
from rollsafe.platforms.memory import InMemoryPlatform

__all__ = [
    "ALL_USERS",
    "INVOKER_ROLE",
    "InMemoryPlatform",
    "Platform",
    "PlatformError",
    "PlatformUnavailableError",
    "RevisionFailedError",
    "RevisionInfo",
    "RevisionSpec",
    "SecretRef",
    "ServiceInfo",
    "StartupProbe",
    "TrafficTarget",
]
