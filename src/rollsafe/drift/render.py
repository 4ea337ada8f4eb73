"""Rendering a DriftReport as text (Rich), JSON, SARIF 2.1.0 or GitHub annotations.

SARIF and GitHub output share ``rollsafe check``'s renderers; each drift finding becomes a
common ``Finding`` whose rule is its kind, and SARIF results carry the three sides and the
fix as properties. Renderers build strings and renderables; only the CLI prints them.
"""

from __future__ import annotations

import json
from itertools import groupby
from pathlib import Path

from rich.console import Group, RenderableType
from rich.text import Text

from rollsafe.check.render import github_annotations, sarif_document
from rollsafe.drift.model import DriftFinding, DriftReport, Side
from rollsafe.findings import Severity

__all__ = [
    "describe_deployed",
    "describe_manifest",
    "describe_store",
    "render_github",
    "render_json",
    "render_sarif",
    "render_text",
]

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_PAD = " " * 10


def _line(side: Side) -> str:
    line = side.get("line")
    return f" (manifest line {line})" if line else ""


def describe_manifest(side: Side | None) -> str:
    """What the manifest says, in words."""
    if side is None:
        return "not declared"
    kind = side.get("type")
    if kind == "secret":
        return f"secret {side['secret']}:{side['version']}{_line(side)}"
    if kind == "env":
        return f"plain value, {side['length']} characters{_line(side)}"
    if kind == "contract":
        return "the start-up contract generated from the manifest"
    if kind == "access":
        what = "true (anyone may invoke)" if side["public"] else "false (callers need an ID token)"
        return f"public: {what}{_line(side)}"
    return f"declared{_line(side)}"


def describe_store(side: Side | None) -> str:
    """What the store says about the secret involved, in words."""
    if side is None:
        return ""
    name = side["secret"]
    if not side.get("exists"):
        return f"secret {name} does not exist"
    if "version" not in side:
        return f"secret {name} exists"
    parts = []
    if side["version"] is None:
        parts.append("no such version")
    else:
        parts.append(f"version {side['version']} {str(side['state']).lower()}")
    if side.get("latest") is not None:
        parts.append(f"newest {side['latest']}")
    if side.get("latest_enabled") is not None and side["latest_enabled"] != side.get("latest"):
        parts.append(f"newest enabled {side['latest_enabled']}")
    if side.get("latest") is None:
        parts.append("no versions")
    return f"{name}: {', '.join(parts)}"


def describe_deployed(side: Side | None) -> str:
    """What the serving revision says, in words."""
    if side is None:
        return ""
    revision = side.get("revision", "")
    kind = side.get("type")
    if kind == "access":
        if side["public"]:
            return "allUsers has roles/run.invoker: anyone may invoke"
        return "no allUsers invoker binding: private"
    if kind == "secret":
        return f"{revision} maps {side['secret']}:{side['version']}"
    if kind == "env":
        return f"{revision} sets a plain value, {side['length']} characters"
    return f"{revision} does not set it"


def _finding(f: DriftFinding) -> list[RenderableType]:
    head = Text("  ")
    head.append(f"{f.severity.value:<7}", style=_STYLE[f.severity])
    head.append(f" {f.key} ", style="bold")
    head.append(f"[{f.kind.value}] ", style="magenta")
    head.append(f.message)
    rows = [("manifest", describe_manifest(f.manifest))]
    rows.append(("store", describe_store(f.store)))
    rows.append(("deployed", describe_deployed(f.deployed)))
    detail = Text(style="dim")
    for label, text in rows:
        if text:
            detail.append(f"{_PAD}{label + ':':<10}{text}\n")
    if f.fix is not None:
        commands = [c for c in (f.fix.rollsafe, f.fix.gcloud) if c]
        for i, command in enumerate(commands):
            detail.append(f"{_PAD}{'fix:' if i == 0 else '':<10}{command}\n")
    if f.hint:
        detail.append(f"{_PAD}{'hint:':<10}{f.hint}\n")
    detail.append(f"{_PAD}{'source:':<10}{f.source}")
    return [head, detail]


def render_text(report: DriftReport) -> RenderableType:
    """Findings grouped by service, each with its three sides and fix, then a verdict.

    Print it with ``soft_wrap=True``: fix commands are copied and pasted, so lines are left
    for the terminal to wrap rather than broken.
    """
    strict = "strict" if report.strict else "not strict"
    parts: list[RenderableType] = [
        Text(
            f"rollsafe drift: environment {report.env} ({strict}; {report.platform}, "
            f"project {report.project}, region {report.region})",
            style="bold",
        )
    ]
    by_service = {k: list(g) for k, g in groupby(report.findings, key=lambda f: f.service)}
    for service in report.services:
        found = by_service.get(service, [])
        serving = ", ".join(f"{r} {p}%" for r, p in report.serving.get(service, {}).items())
        where = f" ({serving})" if serving else ""
        if not found:
            parts.append(Text.assemble(("✓ ", "green"), (service, "bold"), f"{where}: no drift"))
            continue
        label = f"{where}: {len(found)} finding(s)"
        parts.append(Text.assemble(("✗ ", "red"), (service, "bold"), label))
        for f in found:
            parts.extend(_finding(f))
    orphans = by_service.get("*", [])
    if orphans:
        parts.append(Text.assemble(("i ", "cyan"), ("store", "bold"), f": {len(orphans)} info"))
        for f in orphans:
            parts.extend(_finding(f))
    counts = report.counts()
    summary = f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
    verdict = "drift" if report.drift else "no drift"
    parts.append(Text(f"{verdict}: {summary}", style="bold red" if report.drift else "bold green"))
    return Group(*parts)


def render_json(report: DriftReport) -> str:
    """The JSON shape of ``DriftReport.to_dict``, indented."""
    return json.dumps(report.to_dict(), indent=2)


def render_sarif(report: DriftReport, manifest: Path) -> str:
    """SARIF 2.1.0: one result per finding, with ``kind``, the three sides and the fix."""
    properties = [
        {
            "kind": f.kind.value,
            "manifest": f.manifest,
            "store": f.store,
            "deployed": f.deployed,
            "fix": f.fix.to_dict() if f.fix else None,
        }
        for f in report.findings
    ]
    return sarif_document([f.as_finding() for f in report.findings], manifest, properties)


def render_github(report: DriftReport, manifest: Path) -> str:
    """GitHub Actions workflow commands, one per finding, then a summary line."""
    counts = report.counts()
    summary = (
        f"rollsafe drift {report.env}: {'drift' if report.drift else 'no drift'} "
        f"({counts['error']} errors, {counts['warning']} warnings, {counts['info']} info)"
    )
    return github_annotations([f.as_finding() for f in report.findings], manifest, summary)
