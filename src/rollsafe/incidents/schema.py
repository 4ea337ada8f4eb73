"""``REPORT_SCHEMA``: JSON Schema (draft 2020-12) of ``rollsafe why --format json``.

Strict: every key ``IncidentReport.to_dict`` writes is required and no other key is
allowed, so a consumer can rely on the shape. ``docs/why.schema.json`` is this schema,
written by :func:`schema_text` (a test keeps the two equal).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["REPORT_SCHEMA", "SCHEMA_ID", "schema_text"]

SCHEMA_ID = "https://rollsafe.dev/schemas/why.schema.json"

_TIME = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$",
}
_TIME_OR_NULL = {"anyOf": [_TIME, {"type": "null"}]}
_IDS = {
    "type": "array",
    "items": {"$ref": "#/$defs/evidence_id"},
    "uniqueItems": True,
}
_CITED = {**_IDS, "minItems": 1}
_TEXT = {"type": "string", "minLength": 1}
_COUNT = {"type": "integer", "minimum": 0}
_SHARE = {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"type": "null"}]}


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(properties),
        "additionalProperties": False,
        "properties": properties,
        **extra,
    }


_EPISODE = _object(
    {
        "id": {"type": "string", "pattern": r"^INC-\d{8}-\d{6}-.+$"},
        "kinds": {"type": "array", "items": {"type": "string"}},
        "start": _TIME,
        "end": _TIME_OR_NULL,
        "services": {"type": "array", "items": {"type": "string"}},
        "title": {"type": "string"},
        "sources": {"type": "array", "items": {"type": "string"}},
    },
    description="The episode the report is about (rollsafe incidents lists them).",
)

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "rollsafe why report",
    "description": "An incident report built from recorded evidence; every claim cites "
    "evidence ids that appear in evidence[]. Times are RFC 3339 UTC with milliseconds.",
    **_object(
        {
            "schema": {"const": "rollsafe.dev/why/v1"},
            "summary": _object(
                {
                    "title": _TEXT,
                    "text": _TEXT,
                    "env": _TEXT,
                    "services": {"type": "array", "items": {"type": "string"}},
                    "since": _TIME,
                    "until": _TIME,
                    "episode": {"anyOf": [{"$ref": "#/$defs/episode"}, {"type": "null"}]},
                    "generated": _TIME,
                }
            ),
            "impact": _object(
                {
                    "first_bad": _TIME_OR_NULL,
                    "last_bad": _TIME_OR_NULL,
                    "duration_seconds": {
                        "anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}]
                    },
                    "requests": _object(
                        {"total": _COUNT, "failed": _COUNT, "share": _SHARE, "tag_failed": _COUNT},
                        description="Answers on the service URL; tag_failed: failed answers "
                        "on a tag URL (a verification, not users).",
                    ),
                    "probes": _object({"total": _COUNT, "failed": _COUNT, "share": _SHARE}),
                    "statuses": {
                        "type": "object",
                        "description": "HTTP status (>= 500, exactly as logged) -> answers",
                        "propertyNames": {"pattern": r"^[1-5]\d\d$"},
                        "additionalProperties": _COUNT,
                    },
                    "revisions": {"type": "array", "items": {"type": "string"}},
                    "evidence": _IDS,
                }
            ),
            "timeline": {
                "type": "array",
                "items": _object({"time": _TIME, "text": _TEXT, "evidence": _CITED}),
            },
            "whys": {
                "type": "array",
                "items": _object(
                    {
                        "claim": _TEXT,
                        "because": _TEXT,
                        "evidence": _CITED,
                        "rule": {"type": "string", "pattern": r"^[a-z0-9.-]+$"},
                    }
                ),
            },
            "gaps": {
                "type": "array",
                "items": _object({"after": _TEXT, "missing": _TEXT, "how": _TEXT}),
            },
            "factors": {
                "type": "array",
                "items": _object(
                    {"type": {"enum": ["trigger", "latent"]}, "text": _TEXT, "evidence": _CITED}
                ),
            },
            "went_well": {
                "type": "array",
                "items": _object({"time": _TIME, "text": _TEXT, "evidence": _CITED}),
            },
            "actions": {
                "type": "array",
                "items": _object(
                    {
                        "type": {"enum": ["mitigate", "prevent", "process"]},
                        "text": _TEXT,
                        "command": _TEXT,
                        "evidence": _CITED,
                    }
                ),
            },
            "evidence": {
                "type": "array",
                "items": _object(
                    {
                        "id": {"$ref": "#/$defs/evidence_id"},
                        "kind": {
                            "enum": [
                                "deploy",
                                "stage",
                                "revision",
                                "request",
                                "log",
                                "secret_version",
                                "alert",
                                "probe",
                                "drift",
                                "check",
                                "manifest",
                            ]
                        },
                        "time": _TIME_OR_NULL,
                        "source": {
                            "type": "string",
                            "pattern": r"^(journal:|run://|log://|sm://|monitor:|drift:|check:|manifest:)",
                        },
                        "excerpt": {"type": "string"},
                    }
                ),
            },
            "unreadable": {
                "type": "array",
                "items": _object({"what": _TEXT, "why": {"type": "string"}}),
            },
        }
    ),
    "$defs": {
        "evidence_id": {"type": "string", "pattern": r"^E[1-9]\d*$"},
        "episode": _EPISODE,
    },
}


def schema_text() -> str:
    """``REPORT_SCHEMA`` as ``docs/why.schema.json`` holds it (indented, newline-ended)."""
    return json.dumps(REPORT_SCHEMA, indent=2, ensure_ascii=False) + "\n"
