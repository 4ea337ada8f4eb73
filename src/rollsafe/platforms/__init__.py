"""Deploy targets behind one small interface: Cloud Run (and the emulator), in-memory."""

from rollsafe.platforms.base import (
    Platform,
    PlatformError,
    PlatformUnavailableError,
    RevisionFailedError,
    RevisionInfo,
    RevisionSpec,
    SecretRef,
    ServiceInfo,
    TrafficTarget,
)
from rollsafe.platforms.memory import InMemoryPlatform

__all__ = [
    "InMemoryPlatform",
    "Platform",
    "PlatformError",
    "PlatformUnavailableError",
    "RevisionFailedError",
    "RevisionInfo",
    "RevisionSpec",
    "SecretRef",
    "ServiceInfo",
    "TrafficTarget",
]
