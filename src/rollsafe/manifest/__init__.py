"""The manifest: ``rollsafe.yaml`` parsed with line numbers, validated, resolved per env."""

from rollsafe.manifest.loader import DEFAULT_MANIFEST, LoadedManifest, load_manifest
from rollsafe.manifest.models import Manifest
from rollsafe.manifest.resolved import (
    ResolvedAnalysis,
    ResolvedEnvironment,
    ResolvedHealth,
    ResolvedJwtSecret,
    ResolvedSecret,
    ResolvedService,
    ResolvedStartup,
    ResolvedVar,
)
from rollsafe.manifest.schema import manifest_json_schema

__all__ = [
    "DEFAULT_MANIFEST",
    "LoadedManifest",
    "Manifest",
    "ResolvedAnalysis",
    "ResolvedEnvironment",
    "ResolvedHealth",
    "ResolvedJwtSecret",
    "ResolvedSecret",
    "ResolvedService",
    "ResolvedStartup",
    "ResolvedVar",
    "load_manifest",
    "manifest_json_schema",
]
