"""Rendering a CheckReport as text (Rich), JSON, SARIF 2.1.0 or GitHub annotations.

Renderers build strings and renderables; only the CLI prints them. ``sarif_document`` and
``github_annotations`` take any findings, so ``rollsafe drift`` shares them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from rollsafe import __version__
from rollsafe.check.report import CheckReport
from rollsafe.findings import Finding, Severity

__all__ = [
    "FORMATS",
    "github_annotations",
    "render_github",
    "render_json",
    "render_sarif",
    "render_text",
    "sarif_document",
]

FORMATS = ("text", "json", "sarif", "github")
_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_GITHUB_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def render_text(report: CheckReport) -> RenderableType:
    """Findings grouped by service, then a one-line verdict."""
    parts: list[RenderableType] = []
    strict = "strict" if report.strict else "not strict"
    parts.append(Text(f"rollsafe check: environment {report.env} ({strict})", style="bold"))
    by_service = {k: list(g) for k, g in groupby(report.findings, key=lambda f: f.service)}
    for service in report.services:
        found = by_service.get(service, [])
        if not found:
            parts.append(Text.assemble(("✓ ", "green"), (service, "bold"), ": no findings"))
            continue
        parts.append(Text.assemble(("✗ ", "red"), (service, "bold"), f": {len(found)} finding(s)"))
        for f in found:
            line = Text("  ")
            line.append(f"{f.severity.value:<7}", style=_STYLE[f.severity])
            line.append(f" {f.key} ", style="bold")
            line.append(f"[{f.rule}] ", style="magenta")
            line.append(f.message)
            parts.append(line)
            detail = Text(f"          source: {f.source}", style="dim")
            if f.hint:
                detail.append(f"\n          hint: {f.hint}")
            parts.append(detail)
    counts = report.counts()
    verdict = "ok" if report.ok else "blocked"
    summary = f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
    parts.append(Text(f"{verdict}: {summary}", style="bold green" if report.ok else "bold red"))
    return Group(*parts)


def render_json(report: CheckReport) -> str:
    """The JSON contract, indented."""
    return json.dumps(report.to_dict(), indent=2)


def _location(f: Finding, manifest: Path) -> dict[str, Any]:
    region = {"startLine": f.line} if f.line else {}
    physical: dict[str, Any] = {"artifactLocation": {"uri": manifest.as_posix()}}
    if region:
        physical["region"] = region
    return {"physicalLocation": physical}


def render_sarif(report: CheckReport, manifest: Path) -> str:
    """SARIF 2.1.0, one result per finding, located at the manifest line of its key."""
    return sarif_document(report.findings, manifest)


def sarif_document(
    findings: Sequence[Finding],
    manifest: Path,
    properties: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """SARIF 2.1.0 for any findings (check, drift): one result per finding at its manifest
    line. ``properties``, one mapping per finding, adds to each result's properties."""
    rules = sorted({f.rule for f in findings})
    results = []
    for i, f in enumerate(findings):
        props: dict[str, Any] = {"service": f.service, "key": f.key, "source": f.source}
        if properties is not None:
            props.update(properties[i])
        results.append(
            {
                "ruleId": f.rule,
                "level": _SARIF_LEVEL[f.severity],
                "message": {
                    "text": f"{f.service}.{f.key}: {f.message}" + (f" ({f.hint})" if f.hint else "")
                },
                "locations": [_location(f, manifest)],
                "properties": props,
            }
        )
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "rollsafe",
                        "version": __version__,
                        "informationUri": "https://github.com/rollsafe/rollsafe",
                        "rules": [{"id": r, "name": r} for r in rules],
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(sarif, indent=2)


def _escape(text: str, *, prop: bool = False) -> str:
    # GitHub workflow command escaping
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def render_github(report: CheckReport, manifest: Path) -> str:
    """GitHub Actions workflow commands (``::error file=...,line=...::message``)."""
    counts = report.counts()
    summary = (
        f"rollsafe check {report.env}: {'ok' if report.ok else 'blocked'} "
        f"({counts['error']} errors, {counts['warning']} warnings)"
    )
    return github_annotations(report.findings, manifest, summary)


def github_annotations(findings: Sequence[Finding], manifest: Path, summary: str) -> str:
    """One workflow command per finding (check, drift), then the ``summary`` line."""
    lines = []
    for f in findings:
        props = [f"file={_escape(manifest.as_posix(), prop=True)}"]
        if f.line:
            props.append(f"line={f.line}")
        props.append(f"title={_escape(f'{f.service}.{f.key} [{f.rule}]', prop=True)}")
        body = f.message + (f" (hint: {f.hint})" if f.hint else "")
        lines.append(f"::{_GITHUB_LEVEL[f.severity]} {','.join(props)}::{_escape(body)}")
    lines.append(summary)
    return "\n".join(lines)
