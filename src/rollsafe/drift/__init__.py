"""``rollsafe drift``: what the manifest declares, what the store holds, what serves.

Each difference is a ``DriftFinding`` of a named ``DriftKind`` with all three sides (names
and version numbers, never values) and a fix.
"""

from rollsafe.drift.engine import (
    GOOGLE_READ_BUDGET,
    default_read_budget,
    naming_patterns,
    run_drift,
)
from rollsafe.drift.model import (
    ApiCalls,
    DriftFinding,
    DriftKind,
    DriftReport,
    DriftUnavailableError,
    Fix,
)
from rollsafe.drift.render import render_github, render_json, render_sarif, render_text

__all__ = [
    "GOOGLE_READ_BUDGET",
    "ApiCalls",
    "DriftFinding",
    "DriftKind",
    "DriftReport",
    "DriftUnavailableError",
    "Fix",
    "default_read_budget",
    "naming_patterns",
    "render_github",
    "render_json",
    "render_sarif",
    "render_text",
    "run_drift",
]
