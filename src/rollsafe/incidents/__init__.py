"""``rollsafe incidents`` and ``rollsafe why``: episodes, and a deterministic incident report
in which every claim cites recorded evidence (the deploy journal, Cloud Run, Cloud Logging,
Secret Manager, drift, checks and the monitor's alerts and probes). No LLM is involved.
"""

from __future__ import annotations

from rollsafe.incidents.collect import EvidenceCollector
from rollsafe.incidents.episodes import find_episodes
from rollsafe.incidents.model import (
    Action,
    ActionType,
    Episode,
    Evidence,
    EvidenceKind,
    EvidenceSet,
    Factor,
    FactorType,
    Gap,
    Impact,
    IncidentReport,
    TimelineEntry,
    Why,
)
from rollsafe.incidents.render import render_html, render_json, render_markdown
from rollsafe.incidents.report import build_report
from rollsafe.incidents.schema import REPORT_SCHEMA

__all__ = [
    "REPORT_SCHEMA",
    "Action",
    "ActionType",
    "Episode",
    "Evidence",
    "EvidenceCollector",
    "EvidenceKind",
    "EvidenceSet",
    "Factor",
    "FactorType",
    "Gap",
    "Impact",
    "IncidentReport",
    "TimelineEntry",
    "Why",
    "build_report",
    "find_episodes",
    "render_html",
    "render_json",
    "render_markdown",
]
