"""rollsafe: default-safe deploys to Google Cloud Run.

The public API is re-exported here. Names load lazily, so importing one part (the start-up
guard inside a service, say) does not pay for the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "CheckReport": "rollsafe.check",
    "run_check": "rollsafe.check",
    "DriftFinding": "rollsafe.drift",
    "DriftKind": "rollsafe.drift",
    "DriftReport": "rollsafe.drift",
    "DriftUnavailableError": "rollsafe.drift",
    "run_drift": "rollsafe.drift",
    "Finding": "rollsafe.findings",
    "Severity": "rollsafe.findings",
    "LoadedManifest": "rollsafe.manifest",
    "ResolvedEnvironment": "rollsafe.manifest",
    "ResolvedService": "rollsafe.manifest",
    "load_manifest": "rollsafe.manifest",
    "manifest_json_schema": "rollsafe.manifest",
    "ManifestError": "rollsafe.errors",
    "RollsafeError": "rollsafe.errors",
    "StoreError": "rollsafe.errors",
    "StoreUnavailableError": "rollsafe.errors",
    "UsageError": "rollsafe.errors",
    "RuleContext": "rollsafe.rules",
    "RuleFailure": "rollsafe.rules",
    "estimate_secret_strength": "rollsafe.rules",
    "run_rules": "rollsafe.rules",
    "DotenvSecretStore": "rollsafe.stores",
    "InMemorySecretStore": "rollsafe.stores",
    "SecretStore": "rollsafe.stores",
    "SecretValue": "rollsafe.stores",
    "SecretVersionInfo": "rollsafe.stores",
    "WritableSecretStore": "rollsafe.stores",
    "open_store": "rollsafe.stores",
    "DeployJournal": "rollsafe.state.journal",
    "DeployRecord": "rollsafe.state",
    "LockHeldError": "rollsafe.state",
    "LockInfo": "rollsafe.state",
    "MemoryStateStore": "rollsafe.state.memory",
    "PostgresStateStore": "rollsafe.state.postgresql",
    "SQLiteStateStore": "rollsafe.state.sqlite",
    "StateConflictError": "rollsafe.state",
    "StateError": "rollsafe.state",
    "StateStore": "rollsafe.state",
    "StateUnavailableError": "rollsafe.state",
    "CheckResult": "rollsafe.startup",
    "DeterministicStartupError": "rollsafe.startup",
    "JwtSecret": "rollsafe.startup",
    "ServiceContract": "rollsafe.startup",
    "StartupCheckError": "rollsafe.startup",
    "StartupGuard": "rollsafe.startup",
    "StartupProblem": "rollsafe.startup",
    "StartupReport": "rollsafe.startup",
    "StartupSequence": "rollsafe.startup",
    "jwt_secret": "rollsafe.startup",
    "AlertBook": "rollsafe.monitor",
    "AlertEvent": "rollsafe.monitor",
    "MonitorEngine": "rollsafe.monitor",
    "MonitorLine": "rollsafe.monitor",
    "Notifier": "rollsafe.monitor",
    "Observation": "rollsafe.monitor",
    "PassResult": "rollsafe.monitor",
}

__all__ = [
    "AlertBook",
    "AlertEvent",
    "CheckReport",
    "CheckResult",
    "DeployJournal",
    "DeployRecord",
    "DeterministicStartupError",
    "DotenvSecretStore",
    "DriftFinding",
    "DriftKind",
    "DriftReport",
    "DriftUnavailableError",
    "Finding",
    "InMemorySecretStore",
    "JwtSecret",
    "LoadedManifest",
    "LockHeldError",
    "LockInfo",
    "ManifestError",
    "MemoryStateStore",
    "MonitorEngine",
    "MonitorLine",
    "Notifier",
    "Observation",
    "PassResult",
    "PostgresStateStore",
    "ResolvedEnvironment",
    "ResolvedService",
    "RollsafeError",
    "RuleContext",
    "RuleFailure",
    "SQLiteStateStore",
    "SecretStore",
    "SecretValue",
    "SecretVersionInfo",
    "ServiceContract",
    "Severity",
    "StartupCheckError",
    "StartupGuard",
    "StartupProblem",
    "StartupReport",
    "StartupSequence",
    "StateConflictError",
    "StateError",
    "StateStore",
    "StateUnavailableError",
    "StoreError",
    "StoreUnavailableError",
    "UsageError",
    "WritableSecretStore",
    "__version__",
    "estimate_secret_strength",
    "jwt_secret",
    "load_manifest",
    "manifest_json_schema",
    "open_store",
    "run_check",
    "run_drift",
    "run_rules",
]

if TYPE_CHECKING:
    from rollsafe.check import CheckReport, run_check
    from rollsafe.drift import (
        DriftFinding,
        DriftKind,
        DriftReport,
        DriftUnavailableError,
        run_drift,
    )
    from rollsafe.errors import (
        ManifestError,
        RollsafeError,
        StoreError,
        StoreUnavailableError,
        UsageError,
    )
    from rollsafe.findings import Finding, Severity
    from rollsafe.manifest import (
        LoadedManifest,
        ResolvedEnvironment,
        ResolvedService,
        load_manifest,
        manifest_json_schema,
    )
    from rollsafe.monitor import (
        AlertBook,
        AlertEvent,
        MonitorEngine,
        MonitorLine,
        Notifier,
        Observation,
        PassResult,
    )
    from rollsafe.rules import RuleContext, RuleFailure, estimate_secret_strength, run_rules
    from rollsafe.startup import (
        CheckResult,
        DeterministicStartupError,
        JwtSecret,
        ServiceContract,
        StartupCheckError,
        StartupGuard,
        StartupProblem,
        StartupReport,
        StartupSequence,
        jwt_secret,
    )
    from rollsafe.state import (
        DeployRecord,
        LockHeldError,
        LockInfo,
        StateConflictError,
        StateError,
        StateStore,
        StateUnavailableError,
    )
    from rollsafe.state.journal import DeployJournal
    from rollsafe.state.memory import MemoryStateStore
    from rollsafe.state.postgresql import PostgresStateStore
    from rollsafe.state.sqlite import SQLiteStateStore
    from rollsafe.stores import (
        DotenvSecretStore,
        InMemorySecretStore,
        SecretStore,
        SecretValue,
        SecretVersionInfo,
        WritableSecretStore,
        open_store,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rollsafe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
