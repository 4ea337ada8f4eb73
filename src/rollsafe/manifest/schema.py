"""The JSON Schema of the manifest, for editors (yaml-language-server) and CI."""

from __future__ import annotations

from typing import Any

from rollsafe.manifest.models import Manifest

__all__ = ["manifest_json_schema"]

SCHEMA_ID = "https://rollsafe.dev/schema/manifest-v1.json"


def manifest_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of ``rollsafe.yaml`` version 1."""
    schema = Manifest.model_json_schema(mode="validation")
    schema["$id"] = SCHEMA_ID
    schema["title"] = "rollsafe manifest (version 1)"
    return schema
